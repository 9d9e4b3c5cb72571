"""Data-parallel training with gluon_amp: MXNet's parameter server (dist_sync) or Horovod.

The same script runs three ways (see README.md next to it):

    python -m gluon_amp.launch -n 2 -s 1 -- python examples/distributed/train.py
    python -m gluon_amp.launch --horovod -n 2 -- python examples/distributed/train.py
    horovodrun -np 2 -H localhost:2 --gloo python examples/distributed/train.py
    python examples/distributed/train.py                # one process, no kvstore

An MLP learns scikit-learn's bundled digits (nothing is downloaded). Each worker trains on its
slice of every global batch; gradients are summed across workers, then gluon_amp checks them
for inf/NaN once, so every worker makes the same skip/update decision and the same loss-scale
change. At the end each worker prints its test accuracy, its scaler state and a checksum of its
parameters: on every worker they are identical.
"""

from __future__ import annotations

import argparse
import os
import sys

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import gluon_amp as amp
from gluon_amp.emulate import ENV_VAR as EMULATE


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--engine",
        choices=["auto", "kvstore", "horovod", "local"],
        default="auto",
        help="auto: kvstore when DMLC_ROLE is set (gluon_amp.launch, a cluster launcher), "
        "horovod when HOROVOD_RANK is set (launch --horovod, horovodrun), else one local process",
    )
    parser.add_argument("--kvstore", default="dist_sync", help="kvstore type for --engine kvstore")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64, help="global batch, all workers")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument(
        "--dtype",
        choices=["bfloat16", "float16"],
        default=None,
        help=f"default: what amp.init() picks, float16 with a GPU or with {EMULATE}=1 (float16 "
        f"emulated on a CPU), else bfloat16; float16 on a CPU needs {EMULATE}=1, bfloat16 needs "
        f"it off",
    )
    return parser.parse_args()


def pick_engine(choice: str) -> str:
    if choice != "auto":
        return choice
    if "DMLC_ROLE" in os.environ:
        return "kvstore"
    if "HOROVOD_RANK" in os.environ or "OMPI_COMM_WORLD_RANK" in os.environ:
        return "horovod"
    return "local"


def build_net() -> gluon.nn.HybridSequential:
    net = gluon.nn.HybridSequential()
    net.add(
        gluon.nn.Dense(128, activation="relu", in_units=64),
        gluon.nn.Dense(128, activation="relu", in_units=128),
        gluon.nn.Dense(16, in_units=128),  # 10 digits, padded to a multiple of 8
    )
    mx.random.seed(0)
    net.initialize(mx.init.Xavier())
    net.hybridize()
    return net


def make_trainer(engine: str, net: gluon.Block, kvstore_type: str, lr: float):
    """The trainer of this worker, its rank and the number of workers."""
    optimizer = ("sgd", {"learning_rate": lr, "momentum": 0.9})
    if engine == "horovod":
        import horovod.mxnet as hvd

        hvd.init()
        params = net.collect_params()
        hvd.broadcast_parameters(params, root_rank=0)
        # Horovod averages the gradients: step() takes the per-worker batch size.
        return hvd.DistributedTrainer(params, *optimizer), hvd.rank(), hvd.size()
    if engine == "kvstore":
        kvstore = mx.kv.create(kvstore_type)
        # gluon_amp turns update_on_kvstore off anyway (the servers would update before the
        # inf/NaN check); saying so here avoids its warning.
        trainer = gluon.Trainer(
            net.collect_params(), *optimizer, kvstore=kvstore, update_on_kvstore=False
        )
        return trainer, kvstore.rank, kvstore.num_workers
    return gluon.Trainer(net.collect_params(), *optimizer, kvstore=None), 0, 1


def say(line: str) -> None:
    """One line in one write: every worker shares the launcher's stdout, and print() writes the
    text and its newline separately, so two workers' lines could run together."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> None:
    args = parse_args()
    engine = pick_engine(args.engine)
    amp.init(args.dtype)
    images, labels = load_digits(return_X_y=True)
    images = (images / 16.0).astype("float32")
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels.astype("float32"), test_size=0.2, random_state=0, stratify=labels
    )
    net = build_net()
    trainer, rank, num_workers = make_trainer(engine, net, args.kvstore, args.lr)
    amp.init_trainer(trainer)
    scaler = amp.loss_scaler(trainer)
    if args.batch_size % num_workers:
        raise SystemExit(f"--batch-size {args.batch_size} must be divisible by {num_workers}")
    local_batch = args.batch_size // num_workers
    # Horovod averages gradients itself; Gluon's own kvstores sum them.
    step_batch = local_batch if engine == "horovod" else args.batch_size
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    steps_per_epoch = len(x_train) // args.batch_size  # the same on every worker
    rng = np.random.RandomState(0)  # the same shuffle on every worker
    for epoch in range(args.epochs):
        order = rng.permutation(len(x_train))
        losses = []
        for step in range(steps_per_epoch):
            start = step * args.batch_size + rank * local_batch
            rows = order[start : start + local_batch]
            x, y = mx.nd.array(x_train[rows]), mx.nd.array(y_train[rows])
            with autograd.record():
                loss = loss_fn(net(x), y)
            with amp.scale_loss(loss, trainer) as scaled:
                scaled.backward()
            trainer.step(step_batch)
            losses.append(loss.mean().asscalar())
        if rank == 0:
            say(
                f"epoch {epoch + 1}: loss {np.mean(losses):.4f}, loss scale {scaler.scale:g}, "
                f"skipped {scaler.num_skipped}/{scaler.num_steps}"
            )
    predictions = net(mx.nd.array(x_test)).argmax(axis=1).asnumpy()
    accuracy = float((predictions == y_test).mean())
    checksum = sum(float(np.abs(p.data().asnumpy()).sum()) for p in net.collect_params().values())
    say(
        f"worker {rank}/{num_workers} ({engine}): test accuracy {accuracy:.3f}, "
        f"scaler {scaler.state_dict()}, parameter checksum {checksum:.9e}"
    )


if __name__ == "__main__":
    main()
