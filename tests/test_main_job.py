"""The main job (examples/main.py) runs end to end on a tiny budget, so the example cannot rot."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import mxnet as mx
import pytest

from gluon_amp.device import cpu_bfloat16_problem

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("demo")
    proc = subprocess.run(
        [sys.executable, "-m", "examples.main", "--epochs", "1", "--max-steps", "6", "--out", out],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return proc, out


def test_demo_exits_zero_and_reports_every_run(demo):
    proc, out = demo
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "float32   test accuracy" in proc.stdout
    if cpu_bfloat16_problem() is None:
        assert "bfloat16  test accuracy" in proc.stdout
    else:  # a CPU without AVX-512: the bfloat16 run is skipped, and the job says why
        assert f"bfloat16  skipped: {cpu_bfloat16_problem()}" in proc.stdout
    fp16 = next(line for line in proc.stdout.splitlines() if line.startswith("float16 "))
    assert "test accuracy" in fp16 and "steps skipped for overflow, final loss scale" in fp16
    assert "step time" in fp16 and "x float32" in fp16
    if mx.context.num_gpus() == 0:
        assert "float16 emulated on the CPU" in fp16
    assert f"plot: {out / 'training.png'}" in proc.stdout


def test_demo_writes_plot_and_logs(demo):
    _, out = demo
    png = (out / "training.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    with (out / "steps.csv").open() as f:
        rows = list(csv.DictReader(f))
    runs = ["float32"] + (["bfloat16"] if cpu_bfloat16_problem() is None else []) + ["float16"]
    assert [r["run"] for r in rows] == [run for run in runs for _ in range(6)]
    assert [int(r["step"]) for r in rows] == list(range(1, 7)) * len(runs)
    assert all(float(r["loss"]) > 0 for r in rows)
    assert json.loads((out / "steps.json").read_text())[0].keys() == rows[0].keys()
    # The float16 run's real trajectory: its first steps overflow at 2**16 and back off.
    fp16 = [r for r in rows if r["run"] == "float16"]
    assert float(fp16[0]["loss_scale"]) == 2.0**16 and fp16[0]["skipped"] == "True"
    assert float(fp16[1]["loss_scale"]) == 2.0**15


def test_demo_prints_a_short_report_of_each_amp_run(demo):
    """amp.recording around each AMP run: what ran in which precision, and its steps, which
    agree with the steps the job logged."""
    proc, out = demo
    runs = (["bfloat16"] if cpu_bfloat16_problem() is None else []) + ["float16"]
    headers = [line for line in proc.stdout.splitlines() if line.startswith("amp.report: ")]
    assert [h.split(", ")[1] for h in headers] == runs  # none for float32
    assert all(
        "from the cached graph; shapes from inputs data (64, 1, 8, 8) float32" in h for h in headers
    )
    with (out / "steps.csv").open() as f:
        rows = list(csv.DictReader(f))
    reports = proc.stdout.split("amp.report: ")[1:]
    for run, report in zip(runs, reports):
        lines = report.splitlines()
        assert f"GEMMs in {run}: 4 of 4, 100% of " in report  # 2 convolutions, 2 dense layers
        assert "findings: none" in lines
        skipped = [r["step"] for r in rows if r["run"] == run and r["skipped"] == "True"]
        steps = next(line for line in lines if line.startswith("steps: "))
        expected = f"steps: 6 taken, {len(skipped)} skipped"
        if skipped:
            expected += f" (steps {', '.join(skipped)})"
        assert steps.startswith(expected + "; loss scale "), steps
        if run == "float16":
            assert "loss scale 65536 at the start" in steps


def test_demo_ends_with_amplint_findings_on_the_hazard_examples(demo):
    proc, _ = demo
    assert "$ amplint check" in proc.stdout
    assert "examples/hazards/" in proc.stdout
    # The main job itself is written the right way: amplint finds nothing in it.
    assert "examples/main.py" not in proc.stdout.split("$ amplint check", 1)[1]
