"""The main job (examples/main.py) runs end to end on a tiny budget, so the example cannot rot."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

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


def test_demo_exits_zero_and_reports_both_runs(demo):
    proc, out = demo
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "float32   test accuracy:" in proc.stdout
    if cpu_bfloat16_problem() is None:
        assert "bfloat16  test accuracy:" in proc.stdout
        assert "step time bfloat16 / float32:" in proc.stdout
    else:  # a CPU without AVX-512: the bfloat16 run is skipped, and the job says why
        assert f"bfloat16 run skipped: {cpu_bfloat16_problem()}" in proc.stdout
    assert f"plot: {out / 'training.png'}" in proc.stdout


def test_demo_writes_plot_and_logs(demo):
    _, out = demo
    png = (out / "training.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    with (out / "steps.csv").open() as f:
        rows = list(csv.DictReader(f))
    runs = 2 if cpu_bfloat16_problem() is None else 1
    assert [r["run"] for r in rows] == (["float32"] * 6 + ["bfloat16"] * 6)[: 6 * runs]
    assert [int(r["step"]) for r in rows] == list(range(1, 7)) * runs
    assert all(float(r["loss"]) > 0 for r in rows)
    assert json.loads((out / "steps.json").read_text())[0].keys() == rows[0].keys()


def test_demo_ends_with_amplint_findings_on_the_hazard_examples(demo):
    proc, _ = demo
    assert "$ amplint check" in proc.stdout
    assert "examples/hazards/" in proc.stdout
    # The main job itself is written the right way: amplint finds nothing in it.
    assert "examples/main.py" not in proc.stdout.split("$ amplint check", 1)[1]
