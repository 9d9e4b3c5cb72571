"""Training runs for the distributed tests: a small MLP, SGD with momentum, fixed data.

As a worker of a ``dist_sync`` job (started by ``gluon_amp.launch``) or of a Horovod job
(``--horovod``) it trains on its half of every global batch and writes ``worker<rank>.npz``
(parameters) and ``worker<rank>.json`` (the loss scaler's step log and state) into ``--out``.
With ``--reference`` it is the single-process run on the union of both halves, without a
kvstore, written twice:

- ``halves``: one backward per half, gradients accumulated (``grad_req='add'``): float32 sums
  of the same two half-batch gradients the kvstore sums across the workers;
- ``full``: one backward on the whole batch (in low precision this differs from the sum of
  the halves by the rounding of the gradients).

The scheduler and server processes of a job never get past ``import mxnet``: the pid of every
process is recorded first (``pids/``), so the tests can check that none outlives the job.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

if os.environ.get("DIST_TEST_PID_DIR"):
    pid_dir = Path(os.environ["DIST_TEST_PID_DIR"])
    (pid_dir / f"{os.environ.get('DMLC_ROLE', 'local')}-{os.getpid()}").touch()

import mxnet as mx  # noqa: E402  (the pid is recorded before a server role blocks in here)
import numpy as np  # noqa: E402
from mxnet import autograd, gluon  # noqa: E402

NUM_WORKERS = 2
HALF_BATCH = 4
GLOBAL_BATCH = NUM_WORKERS * HALF_BATCH


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--reference", action="store_true", help="single process, no kvstore")
    parser.add_argument("--horovod", action="store_true", help="a worker of a Horovod job")
    parser.add_argument(
        "--amp",
        nargs="?",
        choices=["bfloat16", "float16"],
        const="bfloat16",
        default=None,
        help="gluon_amp in this dtype (default bfloat16; float16 emulated on CPU) + "
        "DynamicLossScaler",
    )
    parser.add_argument("--init-scale", type=float, default=2.0**10, help="of the loss scaler")
    parser.add_argument("--inf-step", type=int, default=None, help="worker 0 injects an inf here")
    parser.add_argument("--update-on-kvstore", action="store_true", help="request it (dist only)")
    parser.add_argument("--crash-step", type=int, default=None, help="worker 1 dies here")
    return parser.parse_args()


def global_batches(steps: int):
    """The same data in every process: (x, y) of GLOBAL_BATCH rows per step."""
    rng = np.random.RandomState(0)
    for _ in range(steps):
        x = rng.uniform(-1, 1, size=(GLOBAL_BATCH, 6)).astype("float32")
        y = rng.randint(0, 3, size=(GLOBAL_BATCH,)).astype("float32")
        yield mx.nd.array(x), mx.nd.array(y)


def build_net() -> gluon.nn.HybridSequential:
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(16, activation="relu", in_units=6), gluon.nn.Dense(3, in_units=16))
    net.initialize(ctx=mx.cpu())
    rng = np.random.RandomState(1)  # the same initial weights in every process
    for param in net.collect_params().values():
        param.set_data(rng.uniform(-0.5, 0.5, size=param.shape).astype("float32"))
    net.hybridize()
    return net


def broadcast_before_first_step(trainer: gluon.Trainer) -> None:
    """Work around an MXNet race: with ``dist_sync`` and ``update_on_kvstore=False`` the first
    ``step()`` pulls worker 0's weights and pushes the gradients under the same keys, and the
    pull may be served after the pushes, returning the summed gradients as the weights.
    ``amp.init_trainer`` closes the race itself: only the plain-MXNet runs need this."""
    trainer._init_kvstore()
    trainer._init_params()
    mx.nd.waitall()


class Run:
    """One network, its trainer and (with --amp) its loss scaler, trained step by step."""

    def __init__(
        self, args: argparse.Namespace, kvstore: mx.kv.KVStore | None, accumulate: bool = False
    ) -> None:
        self.net = build_net()
        self.accumulate = accumulate
        if accumulate:
            self.net.collect_params().setattr("grad_req", "add")
        optimizer = ("sgd", {"learning_rate": 0.1, "momentum": 0.9})
        # Horovod averages (divides by the number of workers), so its step takes the local batch.
        self.batch_size = HALF_BATCH if args.horovod else GLOBAL_BATCH
        if args.horovod:
            import horovod.mxnet as hvd

            hvd.broadcast_parameters(self.net.collect_params(), root_rank=0)
            self.trainer = hvd.DistributedTrainer(self.net.collect_params(), *optimizer)
        else:
            self.trainer = gluon.Trainer(
                self.net.collect_params(),
                *optimizer,
                kvstore=kvstore,
                # With --amp, Gluon's default (True for dist kvstores) is gluon_amp's to turn off.
                update_on_kvstore=True if args.update_on_kvstore else (None if args.amp else False),
            )
        self.scaler = None
        self.log: dict = {"steps": []}
        self.loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
        if args.amp:
            import gluon_amp as amp

            self.amp = amp
            scaler = amp.DynamicLossScaler(init_scale=args.init_scale, growth_interval=3)
            amp.init_trainer(self.trainer, scaler)
            self.scaler = amp.loss_scaler(self.trainer)

    def backward(self, x: mx.nd.NDArray, y: mx.nd.NDArray) -> None:
        with autograd.record():
            loss = self.loss_fn(self.net(x), y)
        if self.scaler is None:
            loss.backward()
        else:
            with self.amp.scale_loss(loss, self.trainer) as scaled:
                scaled.backward()

    def step(self, parts: list[tuple[mx.nd.NDArray, mx.nd.NDArray]], inject: bool) -> None:
        """One step on the parts' gradients (accumulated when there are several);
        ``inject`` puts an inf into the first part's gradient."""
        for index, (x, y) in enumerate(parts):
            self.backward(x, y)
            if inject and index == 0:
                self.net[0].weight.grad()[0, 0] = float("inf")
        entry = {"scale": self.scaler.scale if self.scaler else None}
        self.trainer.step(self.batch_size)
        if self.scaler is not None:
            entry.update(skipped=self.scaler.last_skipped, scale_after=self.scaler.scale)
        self.log["steps"].append(entry)
        if self.accumulate:
            self.net.collect_params().zero_grad()

    def save(self, out: Path, name: str) -> None:
        # By position: a second network in the same process gets other parameter names.
        params = {
            f"p{i}": v.data().asnumpy() for i, v in enumerate(self.net.collect_params().values())
        }
        np.savez(out / f"{name}.npz", **params)
        if self.scaler is not None:
            self.log["state"] = self.scaler.state_dict()
        self.log["update_on_kvstore"] = self.trainer._update_on_kvstore
        (out / f"{name}.json").write_text(json.dumps(self.log))


def main() -> None:
    args = parse_args()
    if args.amp:
        import gluon_amp as amp

        amp.init(args.amp, emulate=args.amp == "float16")
    if args.reference:
        runs = {
            "reference_halves": Run(args, None, accumulate=True),
            "reference_full": Run(args, None),
        }
        rank = 0
    elif args.horovod:
        import horovod.mxnet as hvd

        hvd.init()
        rank = hvd.rank()
        runs = {f"worker{rank}": Run(args, None)}
    else:
        kvstore = mx.kv.create("dist_sync")
        rank = kvstore.rank
        runs = {f"worker{rank}": Run(args, kvstore)}
        if not args.amp:
            broadcast_before_first_step(runs[f"worker{rank}"].trainer)
    for step, (x, y) in enumerate(global_batches(args.steps)):
        if args.crash_step == step and rank == 1:
            os._exit(3)
        halves = [
            (x[i * HALF_BATCH : (i + 1) * HALF_BATCH], y[i * HALF_BATCH : (i + 1) * HALF_BATCH])
            for i in range(NUM_WORKERS)
        ]
        for name, run in runs.items():
            if name == "reference_full":
                parts = [(x, y)]
            elif name == "reference_halves":
                parts = halves
            else:
                parts = [halves[rank]]
            run.step(parts, inject=args.inf_step == step and rank == 0)
    mx.nd.waitall()
    for name, run in runs.items():
        run.save(args.out, name)


if __name__ == "__main__":
    main()
