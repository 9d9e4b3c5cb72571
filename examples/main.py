"""The main job: train one small CNN in float32 and with gluon_amp, then lint the examples.

Data: scikit-learn's bundled handwritten digits (1,797 8×8 images; nothing is downloaded).
The same network, initialised from the same seed, is trained twice: in float32, then with
``gluon_amp`` (float16 when a GPU is visible, bfloat16 on the CPU). The job prints both test
accuracies and the step-time ratio, writes a per-step log (CSV and JSON) and a PNG plot of the
loss and the loss scale, and finishes by running ``amplint`` over ``examples/``; the findings in
``examples/hazards/`` are deliberate, so the job exits 0 all the same.

    python -m examples.main [--epochs 8] [--out examples/output]
"""

from __future__ import annotations

import argparse
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


@dataclass
class StepRecord:
    """One training step of one run, as written to the logs."""

    run: str
    step: int
    loss: float
    loss_scale: float
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


def train(
    run: str,
    data: tuple[np.ndarray, ...],
    ctx: mx.Context,
    epochs: int,
    seed: int,
    max_steps: int | None,
    use_amp: bool,
) -> tuple[float, list[StepRecord]]:
    """Train a fresh network; return its test accuracy and one record per step."""
    x_train, x_test, y_train, y_test = data
    mx.random.seed(seed)
    np.random.seed(seed)
    net = build_net()
    net.initialize(mx.init.Xavier(), ctx=ctx)
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 2e-3})
    if use_amp:
        amp.init_trainer(trainer)
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
    with tqdm(total=total, desc=f"{run:>8}", unit="step", leave=True) as bar:
        while len(records) < total:
            for x, y in loader:
                if len(records) == total:
                    break
                x, y = x.as_in_context(ctx), y.as_in_context(ctx)
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
                scaler = amp.loss_scaler(trainer) if use_amp else None
                records.append(
                    StepRecord(
                        run=run,
                        step=len(records) + 1,
                        loss=mean_loss,
                        loss_scale=scaler.scale if scaler else 1.0,
                        skipped=bool(scaler and scaler.last_skipped),
                        seconds=seconds,
                    )
                )
                bar.set_postfix(loss=f"{mean_loss:.3f}")
                bar.update()
    return accuracy(net, x_test, y_test, ctx), records


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


def plot(records: list[StepRecord], amp_run: str, out: Path) -> Path:
    """Loss of both runs, and the loss scale of the AMP run, per step."""
    fig, (ax_loss, ax_scale) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for run in dict.fromkeys(r.run for r in records):
        steps = [r for r in records if r.run == run]
        ax_loss.plot([r.step for r in steps], [r.loss for r in steps], label=run)
    amp_steps = [r for r in records if r.run == amp_run]
    ax_scale.step([r.step for r in amp_steps], [r.loss_scale for r in amp_steps], where="post")
    skipped = [r.step for r in amp_steps if r.skipped]
    if skipped:
        ax_scale.plot(skipped, [amp_steps[s - 1].loss_scale for s in skipped], "rx", label="skip")
        ax_scale.legend()
    ax_loss.set(ylabel="training loss", yscale="log", title="Digits CNN: float32 vs gluon_amp")
    ax_loss.legend()
    scales = {r.loss_scale for r in amp_steps}
    note = f" (constant: {amp_run} needs no scaling)" if len(scales) == 1 else ""
    if not amp_steps:
        note = f" (no {amp_run} run on this machine)"
    scale_axis = "log" if amp_steps else "linear"
    ax_scale.set(xlabel="step", ylabel="loss scale", yscale=scale_axis, title=f"loss scale{note}")
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
    ctx = mx.gpu(0) if gpu else mx.cpu()
    dtype = "float16" if gpu else "bfloat16"
    data = load_data(args.seed)
    print(f"digits: {len(data[0])} training / {len(data[1])} test images on {ctx}")

    run_kwargs = dict(data=data, ctx=ctx, epochs=args.epochs, seed=args.seed)
    fp32_acc, records = train("float32", **run_kwargs, max_steps=args.max_steps, use_amp=False)
    problem = None if gpu else cpu_bfloat16_problem()
    if problem is None:
        amp.init(dtype)  # from here on, operators autocast to the reduced precision
        try:
            amp_acc, amp_records = train(
                dtype, **run_kwargs, max_steps=args.max_steps, use_amp=True
            )
        finally:
            amp.reset()
        records += amp_records
    csv_path, json_path = write_logs(records, args.out)
    png_path = plot(records, dtype, args.out)

    print(f"\nfloat32   test accuracy: {fp32_acc:.2%}")
    if problem is not None:
        print(f"{dtype} run skipped: {problem}")
    else:
        skipped = sum(r.skipped for r in amp_records)
        ratio = median_step(records, dtype) / median_step(records, "float32")
        print(f"{dtype:<9} test accuracy: {amp_acc:.2%} ({skipped} steps skipped for overflow)")
        print(f"step time {dtype} / float32: {ratio:.2f}x (median per step on {ctx})")
    if not gpu:
        print("  (bfloat16 speed on a CPU depends on the CPU's oneDNN kernels: faster than float32")
        print("   on some, slower on others; float16 on GPU Tensor Cores is where AMP pays most)")
    print(f"plot: {png_path}\nlogs: {csv_path}, {json_path}")
    if not args.no_lint:
        run_amplint(EXAMPLES)
        print("(the findings above are the deliberate mistakes in examples/hazards/)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
