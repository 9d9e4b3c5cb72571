"""Per-step training time: float32, mxnet.contrib.amp bfloat16, gluon_amp bfloat16, casts only,
and gluon_amp's float16 emulation on the CPU.

Run: ``python -m benchmarks.amp_step [--rounds 8] [--steps 2]``

``mxnet.contrib.amp.init`` patches MXNet for the rest of a process and cannot be undone, so
float32, contrib and gluon_amp each live in their own worker process, set up once; the three
gluon_amp bfloat16 variants (default trainer, dynamic scaler, casts only) share one process and
alternate step by step. On a CPU without bfloat16 kernels (no AVX-512) the bfloat16 variants are
left out, with the reason. The float16 emulation runs twice, each in its own process: as shipped
(BatchNorm computed in float32 between float16 input and output, as cuDNN does) and with MXNet's
own CPU float16 BatchNorm kernel instead, the measurement behind that choice.
The coordinator asks the workers in turn, round after round (rotating the order, pausing between
turns), for a few timed steps (one worker computes at a time, so the variants share the
machine's noise alike) and reports medians and minima.
The overflow check alone is timed in one process per model on its gradients, alternating ours
and contrib's.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
import statistics
import time

VARIANTS = {
    "float32": "float32, no AMP",
    "contrib": "mxnet.contrib.amp bfloat16 (init_trainer, scale_loss)",
    "ours": "gluon_amp bfloat16, default trainer (no scaling, skips inf/NaN)",
    "ours_dynamic": "gluon_amp bfloat16 + DynamicLossScaler",
    "casts_only": "casts only: gluon_amp autocast, plain Trainer (floor)",
    "fp16_emulated": "gluon_amp float16 emulated on CPU + DynamicLossScaler",
    "fp16_native_bn": "the same, BatchNorm on MXNet's CPU float16 kernel (not shipped)",
}
_BFLOAT16 = ("contrib", "ours", "ours_dynamic", "casts_only")
_SETTLE = 0.5  # seconds between two workers' turns
_WARM_UP = 4  # untimed steps per variant
# contrib's init cannot be undone and float32 must stay unpatched: each gets its own process;
# the gluon_amp variants share one, interleaved step by step (the fairest comparison).
_PROCESSES = [
    ("float32",),
    ("contrib",),
    ("ours", "ours_dynamic", "casts_only"),
    ("fp16_emulated",),
    ("fp16_native_bn",),
]
MODELS = {
    "resnet18": "resnet18_v1(thumbnail=True), 32x32, batch 32, hybridized",
    "mlp": "MLP 1024-2048-2048-2048-10, batch 256, hybridized",
}


def _model(name: str):
    import mxnet as mx
    from mxnet.gluon import nn
    from mxnet.gluon.model_zoo import vision

    mx.random.seed(0)
    if name == "resnet18":
        net = vision.resnet18_v1(thumbnail=True, classes=10)
        x = mx.nd.random.uniform(shape=(32, 3, 32, 32))
    else:
        net = nn.HybridSequential()
        for units in (2048, 2048, 2048):
            net.add(nn.Dense(units, activation="relu"))
        net.add(nn.Dense(10))
        x = mx.nd.random.uniform(shape=(256, 1024))
    net.initialize(mx.init.Xavier())
    net.hybridize()
    y = mx.nd.random.randint(0, 10, shape=(x.shape[0],)).astype("float32")
    return net, x, y


def _setup(variant: str, model: str):
    """Build the model and return a function doing one training step."""
    import mxnet as mx
    from mxnet import autograd, gluon

    if variant == "contrib":
        from mxnet.contrib import amp
    elif variant != "float32":
        import gluon_amp as amp
    if variant == "fp16_native_bn":
        from gluon_amp import emulate

        emulate.AS_ON_A_GPU = ()  # BatchNorm left to MXNet's float16 CPU kernel
    if variant.startswith("fp16"):
        amp.init("float16", emulate=True)
    elif variant != "float32":
        amp.init("bfloat16")
    net, x, y = _model(model)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.01, "momentum": 0.9})
    if variant == "contrib":
        amp.init_trainer(trainer)
    elif variant == "ours":
        amp.init_trainer(trainer)
    elif variant in ("ours_dynamic", "fp16_emulated", "fp16_native_bn"):
        amp.init_trainer(trainer, amp.DynamicLossScaler())
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    scaled = variant not in ("float32", "casts_only")

    def step() -> None:
        with autograd.record():  # scale_loss inside record: contrib fails outside it
            loss = loss_fn(net(x), y)
            if scaled:
                with amp.scale_loss(loss, trainer) as scaled_loss:
                    autograd.backward(scaled_loss)
            else:
                autograd.backward(loss)
        trainer.step(x.shape[0])
        mx.nd.waitall()

    return step


def _rotated(items: list, shift: int) -> list:
    shift %= len(items)
    return items[shift:] + items[:shift]


def _worker(variants: tuple[str, ...], model: str, conn) -> None:
    """Set the variants up in this process; on request, time steps of each, interleaved."""
    steps = {variant: _setup(variant, model) for variant in variants}
    for step in steps.values():
        for _ in range(_WARM_UP):  # graph building, oneDNN primitives, float16's first backoffs
            step()
    conn.send("ready")
    turn = 0
    while True:
        command = conn.recv()
        if command is None:
            return
        times: dict[str, list[float]] = {variant: [] for variant in variants}
        for _ in range(command):
            for variant in _rotated(list(variants), turn):
                start = time.perf_counter()
                steps[variant]()
                times[variant].append(time.perf_counter() - start)
            turn += 1
        conn.send(times)


def _check_worker(model: str, repeats: int, conn) -> None:
    """Time the overflow check alone on the model's gradients: ours vs contrib's."""
    import mxnet as mx
    from mxnet import autograd
    from mxnet.contrib.amp.loss_scaler import LossScaler

    from gluon_amp.overflow import gradients, has_nonfinite

    net, x, y = _model(model)
    with autograd.record():
        loss = mx.gluon.loss.SoftmaxCrossEntropyLoss()(net(x), y)
    loss.backward()
    mx.nd.waitall()
    params = list(net.collect_params().values())
    contrib = LossScaler()
    checks = {
        "ours": lambda: has_nonfinite(gradients(params)),
        "contrib": lambda: contrib.has_overflow(params),
    }
    results = {name: [] for name in checks}
    for _ in range(repeats + 2):
        for name, check in checks.items():
            start = time.perf_counter()
            assert check() is False
            results[name].append(time.perf_counter() - start)
    conn.send({name: times[2:] for name, times in results.items()})  # drop warm-up


def _spawn(target, *args):
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=target, args=(*args, child), daemon=True)
    process.start()
    return process, parent


def bench_model(
    model: str, rounds: int, steps: int, variants: list[str]
) -> dict[str, tuple[float, float]]:
    groups = [g for g in _PROCESSES if all(v in variants for v in g)]
    workers = [_spawn(_worker, group, model) for group in groups]
    try:
        for _, conn in workers:
            assert conn.recv() == "ready"
        times: dict[str, list[float]] = {v: [] for v in variants}
        for round_index in range(rounds):
            # Rotate who goes first, and let the previous worker's OpenMP threads stop spinning.
            for _, conn in _rotated(workers, round_index):
                time.sleep(_SETTLE)
                conn.send(steps)
                for variant, measured in conn.recv().items():
                    times[variant] += measured
        return {v: (statistics.median(t) * 1000, min(t) * 1000) for v, t in times.items()}
    finally:
        for process, conn in workers:
            conn.send(None)
            process.join(timeout=30)


def bench_check(model: str, repeats: int) -> dict[str, float]:
    process, conn = _spawn(_check_worker, model, repeats)
    try:
        return {k: statistics.median(v) * 1000 for k, v in conn.recv().items()}
    finally:
        process.join(timeout=30)


def _machine() -> str:
    import mxnet as mx

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}, {mp.cpu_count()} CPUs, mxnet {mx.__version__}, Python {platform.python_version()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8, help="interleaved rounds per model")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per round")
    parser.add_argument("--check-repeats", type=int, default=20)
    args = parser.parse_args()

    from gluon_amp.device import cpu_bfloat16_problem

    print(f"machine: {_machine()}")
    problem = cpu_bfloat16_problem()
    variants = [v for v in VARIANTS if problem is None or v not in _BFLOAT16]
    if problem is not None:
        print(f"bfloat16 variants left out: {problem}")
    for model, label in MODELS.items():
        results = bench_model(model, args.rounds, args.steps, variants)
        fp32 = results["float32"][0]
        floor = results["casts_only"][0] if "casts_only" in results else None
        print(f"\n{label}: ms/step over {args.rounds}x{args.steps} interleaved steps")
        print("| variant | median | min | median vs float32 | median vs bfloat16 casts-only |")
        print("|---|---:|---:|---:|---:|")
        for variant in variants:
            median, fastest = results[variant]
            versus_floor = (
                f"{100 * (median / floor - 1):+.1f}%"
                if floor is not None and variant not in ("fp16_emulated", "fp16_native_bn")
                else "—"
            )
            print(
                f"| {VARIANTS[variant]} | {median:.0f} | {fastest:.0f} | {median / fp32:.2f}x "
                f"| {versus_floor} |"
            )
    print(f"\noverflow check alone (inf/NaN over all gradients), median ms of {args.check_repeats}")
    print("| gradients of | mxnet.contrib.amp (multi_all_finite) | gluon_amp | ratio |")
    print("|---|---:|---:|---:|")
    for model in MODELS:
        check = bench_check(model, args.check_repeats)
        print(
            f"| {model} | {check['contrib']:.1f} | {check['ours']:.1f} "
            f"| {check['contrib'] / check['ours']:.0f}x cheaper |"
        )


if __name__ == "__main__":
    main()
