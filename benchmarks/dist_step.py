"""Per-step time of a 2-worker ``dist_sync`` job on this machine: what gluon_amp adds.

    python -m benchmarks.dist_step [--steps 20] [--repeats 2]

Each variant is a real job started by ``gluon_amp.launch`` (1 scheduler, 1 server, 2 workers,
127.0.0.1), training the same MLP (512-1024-1024-16, global batch 128) with SGD:

- ``float32``: plain Gluon, no gluon_amp;
- ``float32 + scaler``: float32 compute, ``amp.init_trainer(trainer, DynamicLossScaler())``, so
  the difference to ``float32`` is gluon_amp's loss scaling and its one finite-check per step
  on the allreduced gradients;
- ``bfloat16 (gluon_amp)``: ``amp.init('bfloat16')`` with its default trainer.

Variants are interleaved (ABCABC…) so that load from other processes hits them alike; each job
reports the median of its timed steps (after warm-up), and the table shows the median over
repeats. Worker mode (``--worker``) is what the launcher runs in every process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

VARIANTS = ("float32", "float32 + scaler", "bfloat16 (gluon_amp)")
GLOBAL_BATCH = 128
WARMUP = 5


def worker(variant: str, steps: int) -> None:
    """One process of the job; as scheduler or server it never gets past ``import mxnet``."""
    import mxnet as mx
    import numpy as np
    from mxnet import autograd, gluon

    import gluon_amp as amp

    if variant == "bfloat16 (gluon_amp)":
        amp.init("bfloat16")
    kvstore = mx.kv.create("dist_sync")
    net = gluon.nn.HybridSequential()
    net.add(
        gluon.nn.Dense(1024, activation="relu", in_units=512),
        gluon.nn.Dense(1024, activation="relu", in_units=1024),
        gluon.nn.Dense(16, in_units=1024),
    )
    net.initialize(mx.init.Xavier())
    net.hybridize()
    trainer = gluon.Trainer(
        net.collect_params(), "sgd", {"learning_rate": 0.01}, kvstore=kvstore,
        update_on_kvstore=False,
    )  # fmt: skip
    trainer._init_kvstore()  # broadcast before the first step: see examples/distributed
    trainer._init_params()
    mx.nd.waitall()
    use_amp = variant != "float32"
    if variant == "float32 + scaler":
        amp.init_trainer(trainer, amp.DynamicLossScaler())
    elif use_amp:
        amp.init_trainer(trainer)
    local = GLOBAL_BATCH // kvstore.num_workers
    rng = np.random.RandomState(kvstore.rank)
    x = mx.nd.array(rng.uniform(-1, 1, size=(local, 512)))
    y = mx.nd.array(rng.randint(0, 16, size=local))
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    times = []
    for step in range(WARMUP + steps):
        start = time.perf_counter()
        with autograd.record():
            loss = loss_fn(net(x), y)
        if use_amp:
            with amp.scale_loss(loss, trainer) as scaled:
                scaled.backward()
        else:
            loss.backward()
        trainer.step(GLOBAL_BATCH)
        mx.nd.waitall()
        if step >= WARMUP:
            times.append(time.perf_counter() - start)
    if kvstore.rank == 0:
        print(json.dumps({"variant": variant, "median_ms": 1e3 * statistics.median(times)}))


def run_job(variant: str, steps: int) -> float:
    command = [
        *(sys.executable, "-m", "gluon_amp.launch", "-n", "2", "-s", "1", "--timeout", "600"),
        *("--", sys.executable, "-m", "benchmarks.dist_step", "--worker", variant),
        *("--steps", str(steps)),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"job {variant!r} failed:\n{result.stderr}")
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("{"))
    return json.loads(line)["median_ms"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.steps)
        return
    results: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(args.repeats):
        for variant in VARIANTS:
            results[variant].append(run_job(variant, args.steps))
    base = statistics.median(results["float32"])
    print("| variant | median step (ms), 2 workers | vs float32 | each run (ms) |")
    print("|---|---|---|---|")
    for variant, values in results.items():
        median = statistics.median(values)
        runs = ", ".join(f"{v:.1f}" for v in values)
        print(f"| {variant} | {median:.1f} | {median / base:.2f}x | {runs} |")


if __name__ == "__main__":
    main()
