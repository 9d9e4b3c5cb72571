"""The main job: train one small CNN in float32, bfloat16 and float16, then lint the examples.

Data: scikit-learn's bundled handwritten digits (1,797 8×8 images; nothing is downloaded).
The same network, initialised from the same seed, is trained three times: in float32, then with
``gluon_amp`` in bfloat16 (on the CPU; skipped, with the reason, on a CPU without bfloat16
kernels) and in float16 (on a GPU when one is visible, else on the CPU with gluon_amp's float16
emulation, which gives a GPU's float16 numerics). The float16 run's dynamic loss scaler meets
real overflows: its scale backs off and grows again. Each gluon_amp run trains inside
``amp.recording`` and prints the report's summary (what ran in which precision, casts, steps
taken and skipped, the loss scale, findings). The job then prints each run's test accuracy,
skipped steps, final loss scale and step time, writes a per-step log (CSV and JSON) and a PNG
plot of the losses and the float16 loss scale, and finishes by running ``amplint`` over
``examples/``; the findings in ``examples/hazards/`` are deliberate, so the job exits 0 all the
same.

    python -m examples.main [--epochs 8] [--out examples/output]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no screen needed: the plot goes to a file

import matplotlib.pyplot as plt  # noqa: E402
import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
from mxnet import autograd, gluon  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from tqdm import tqdm  # noqa: E402

import gluon_amp as amp  # noqa: E402
from gluon_amp.device import cpu_bfloat16_problem  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent
# Ten digit classes, padded to 16 logits: Tensor Cores want every dimension a multiple of 8
# (nanoGPT pads its vocabulary for the same reason). The spare logits simply learn to lose.
NUM_LOGITS = 16
BATCH_SIZE = 64
# Small enough for the float16 scale to grow (and overflow again) several times in a short run.
GROWTH_INTERVAL = 20


@dataclass
class StepRecord:
    """One training step of one run, as written to the logs."""

    run: str
    step: int
    loss: float
    loss_scale: float  # the scale this step's loss was multiplied by
    skipped: bool
    seconds: float


def load_data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The digits as (N, 1, 8, 8) float32 images in [0, 1], split 80/20 with stratification."""
    images, labels = load_digits(return_X_y=True)
    images = (images / 16.0).reshape(-1, 1, 8, 8).astype("float32")
    return train_test_split(
        images, labels.astype("float32"), test_size=0.2, random_state=seed, stratify=labels
    )


def build_net() -> gluon.nn.HybridSequential:
    """A small CNN whose every channel and unit count is a multiple of 8."""
    net = gluon.nn.HybridSequential()
    net.add(
        gluon.nn.Conv2D(32, kernel_size=3, padding=1, in_channels=1),
        gluon.nn.BatchNorm(),
        gluon.nn.Activation("relu"),
        gluon.nn.Conv2D(64, kernel_size=3, padding=1, in_channels=32),
        gluon.nn.Activation("relu"),
        gluon.nn.MaxPool2D(pool_size=2),
        gluon.nn.Flatten(),
        gluon.nn.Dense(128, activation="relu", in_units=64 * 4 * 4),
        gluon.nn.Dense(NUM_LOGITS, in_units=128),
    )
    return net


@dataclass
class Run:
    """One training run: its precision, where it runs, or why it cannot run here."""

    name: str
    ctx: mx.Context
    skip_reason: str | None = None

    @property
    def uses_amp(self) -> bool:
        return self.name != "float32"

    @property
    def emulated(self) -> bool:
        return self.name == "float16" and self.ctx.device_type == "cpu"


def plan_runs(gpu: bool) -> list[Run]:
    """float32 and float16 where the work runs (GPU or CPU); bfloat16 on the CPU if it can."""
    ctx = mx.gpu(0) if gpu else mx.cpu()
    return [
        Run("float32", ctx),
        Run("bfloat16", mx.cpu(), cpu_bfloat16_problem()),
        Run("float16", ctx),
    ]


def train(
    run: Run,
    data: tuple[np.ndarray, ...],
    epochs: int,
    seed: int,
    max_steps: int | None,
) -> tuple[float, list[StepRecord], float]:
    """Train a fresh network; return its test accuracy, one record per step and the final
    loss scale."""
    x_train, x_test, y_train, y_test = data
    ctx = run.ctx
    if run.uses_amp:  # from here on, operators autocast to the reduced precision
        amp.init(run.name, emulate=run.emulated)
    mx.random.seed(seed)
    np.random.seed(seed)
    net = build_net()
    net.initialize(mx.init.Xavier(), ctx=ctx)
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 2e-3})
    if run.name == "float16":
        amp.init_trainer(trainer, amp.DynamicLossScaler(growth_interval=GROWTH_INTERVAL))
    elif run.uses_amp:
        amp.init_trainer(trainer)  # bfloat16: no scaling, inf/NaN steps still skipped
    try:
        watch = amp.recording(net, trainer) if run.uses_amp else contextlib.nullcontext()
        with watch as report:  # what ran in which precision, and every step's loss scale
            records = _train_steps(run.name, net, trainer, data, ctx, epochs, max_steps)
        if report is not None:
            print(report.summary())
        final_scale = amp.loss_scaler(trainer).scale if run.uses_amp else 1.0
        return accuracy(net, x_test, y_test, ctx), records, final_scale
    finally:
        amp.reset()


def _train_steps(name, net, trainer, data, ctx, epochs, max_steps) -> list[StepRecord]:
    """The training loop of one run; one record per step."""
    x_train, _, y_train, _ = data
    use_amp = name != "float32"
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    loader = gluon.data.DataLoader(
        gluon.data.ArrayDataset(x_train, y_train),
        batch_size=BATCH_SIZE,
        shuffle=True,
        last_batch="discard",
    )
    total = epochs * len(loader)
    if max_steps is not None:
        total = min(total, max_steps)
    records: list[StepRecord] = []
    with tqdm(total=total, desc=f"{name:>8}", unit="step", leave=True) as bar:
        while len(records) < total:
            for x, y in loader:
                if len(records) == total:
                    break
                x, y = x.as_in_context(ctx), y.as_in_context(ctx)
                scaler = amp.loss_scaler(trainer) if use_amp else None
                used_scale = scaler.scale if scaler else 1.0
                start = time.perf_counter()
                with autograd.record():
                    loss = loss_fn(net(x), y)
                    if use_amp:
                        with amp.scale_loss(loss, trainer) as scaled:
                            autograd.backward(scaled)
                    else:
                        loss.backward()
                trainer.step(BATCH_SIZE)
                mean_loss = float(loss.mean().asscalar())  # also waits for the step to finish
                seconds = time.perf_counter() - start
                records.append(
                    StepRecord(
                        run=name,
                        step=len(records) + 1,
                        loss=mean_loss,
                        loss_scale=used_scale,
                        skipped=bool(scaler and scaler.last_skipped),
                        seconds=seconds,
                    )
                )
                bar.set_postfix(loss=f"{mean_loss:.3f}")
                bar.update()
    return records


def accuracy(net: gluon.Block, images: np.ndarray, labels: np.ndarray, ctx: mx.Context) -> float:
    """Fraction of test images whose highest logit is the right digit."""
    logits = net(mx.nd.array(images, ctx=ctx)).asnumpy()  # float32 under gluon_amp too
    return float((logits.argmax(axis=1) == labels).mean())


def write_logs(records: list[StepRecord], out: Path) -> tuple[Path, Path]:
    """Write the per-step records as CSV and JSON; return both paths."""
    rows = [asdict(r) for r in records]
    csv_path, json_path = out / "steps.csv", out / "steps.json"
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    json_path.write_text(json.dumps(rows, indent=1))
    return csv_path, json_path


def plot(records: list[StepRecord], out: Path) -> Path:
    """The loss of every run, and the float16 run's loss scale, per step."""
    fig, (ax_loss, ax_scale) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True)
    for run in dict.fromkeys(r.run for r in records):
        steps = [r for r in records if r.run == run]
        ax_loss.plot([r.step for r in steps], [r.loss for r in steps], label=run, linewidth=1)
    ax_loss.set(ylabel="training loss", yscale="log", title="Digits CNN: float32 vs gluon_amp")
    ax_loss.legend()
    fp16 = [r for r in records if r.run == "float16"]
    if fp16:
        ax_scale.step(
            [r.step for r in fp16],
            [r.loss_scale for r in fp16],
            where="post",
            label=f"float16 scale: DynamicLossScaler(growth_interval={GROWTH_INTERVAL}): "
            f"halves on overflow, doubles after {GROWTH_INTERVAL} clean steps",
        )
        skipped = [r for r in fp16 if r.skipped]
        ax_scale.plot(
            [r.step for r in skipped],
            [r.loss_scale for r in skipped],
            "rx",
            label=f"step skipped: float16 gradients overflowed ({len(skipped)})",
        )
        ax_scale.set_yscale("log", base=2)
        ax_scale.set_ylim(top=max(r.loss_scale for r in fp16) * 16)  # room for the legend
        ax_scale.legend(fontsize="small", loc="upper right")
    title = "float16 loss scale" if fp16 else "loss scale (no float16 run)"
    ax_scale.set(xlabel="step", ylabel="loss scale", title=title)
    fig.tight_layout()
    path = out / "training.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def median_step(records: list[StepRecord], run: str) -> float:
    """Median seconds per step of one run, leaving out the first steps (graph building)."""
    times = [r.seconds for r in records if r.run == run]
    return statistics.median(times[min(5, len(times) - 1) :])


def run_amplint(target: Path) -> int:
    """Show amplint's findings over ``target``; return its exit code (1 means findings)."""
    shown = os.path.relpath(target)  # paths in the findings read as the user would type them
    print(f"\n$ amplint check {shown}", flush=True)
    return subprocess.run([sys.executable, "-m", "amplint", "check", shown]).returncode


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=8, help="epochs per run (default 8)")
    parser.add_argument("--max-steps", type=int, default=None, help="cap on steps per run")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--out", type=Path, default=EXAMPLES / "output", help="where logs and plot go"
    )
    parser.add_argument("--no-lint", action="store_true", help="skip the amplint step")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.epochs < 1 or (args.max_steps is not None and args.max_steps < 1):
        sys.exit("error: --epochs and --max-steps must be at least 1")
    args.out.mkdir(parents=True, exist_ok=True)
    gpu = mx.context.num_gpus() > 0
    data = load_data(args.seed)
    print(f"digits: {len(data[0])} training / {len(data[1])} test images")

    runs = plan_runs(gpu)
    results: dict[str, tuple[float, list[StepRecord], float]] = {}
    for run in runs:
        if run.skip_reason is None:
            results[run.name] = train(run, data, args.epochs, args.seed, args.max_steps)
    records = [record for _, run_records, _ in results.values() for record in run_records]
    csv_path, json_path = write_logs(records, args.out)
    png_path = plot(records, args.out)

    print()
    for run in runs:
        print(summary_line(run, results.get(run.name), records, runs[0].ctx))
    print(f"plot: {png_path}\nlogs: {csv_path}, {json_path}")
    if not args.no_lint:
        run_amplint(EXAMPLES)
        print("(the findings above are the deliberate mistakes in examples/hazards/)")
    return 0


def summary_line(
    run: Run,
    result: tuple[float, list[StepRecord], float] | None,
    records: list[StepRecord],
    float32_ctx: mx.Context,
) -> str:
    """One run's accuracy, skipped steps, final loss scale and step time (or why it was skipped)."""
    if result is None:
        return f"{run.name:<9} skipped: {run.skip_reason}"
    acc, run_records, final_scale = result
    line = f"{run.name:<9} test accuracy {acc:.2%} on {run.ctx}"
    if run.uses_amp:
        skipped = sum(r.skipped for r in run_records)
        line += (
            f", {skipped} of {len(run_records)} steps skipped for overflow, "
            f"final loss scale {final_scale:g}"
        )
    if run.uses_amp and run.ctx == float32_ctx:
        ratio = median_step(records, run.name) / median_step(records, "float32")
        line += f", step time {ratio:.2f}x float32"
    if run.emulated:
        line += " (float16 emulated on the CPU: a GPU's numerics, not its speed)"
    return line


if __name__ == "__main__":
    sys.exit(main())
