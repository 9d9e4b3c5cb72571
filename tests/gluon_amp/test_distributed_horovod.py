"""gluon_amp on Horovod (gloo, CPU): ``gluon_amp.launch --horovod``, two workers.

The launcher serves Horovod's gloo rendezvous on 127.0.0.1 (``horovodrun`` listens on every
interface). Runs only where Horovod is built with MXNet (see examples/distributed/README.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from dist_scripts.processes import REPO, child_env, survivors

from gluon_amp.launch import HOROVOD_BUILD

pytest.importorskip("horovod.mxnet", reason=f"Horovod is not installed ({HOROVOD_BUILD})")

TRAIN = Path(__file__).with_name("dist_scripts") / "train.py"
GUARD_SECONDS = 180  # failure guard only
STEPS = 8
INF_STEP = 3

pytestmark = pytest.mark.slow


def _run(command: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=REPO, env=child_env(**env), capture_output=True, text=True,
        timeout=GUARD_SECONDS + 30,
    )  # fmt: skip


def _launch(*args: str, **env: str) -> subprocess.CompletedProcess:
    return _run(
        [sys.executable, "-m", "gluon_amp.launch", "--horovod", "-n", "2"]
        + ["--timeout", str(GUARD_SECONDS), "--", sys.executable, str(TRAIN), "--horovod", *args],
        **env,
    )


def _params(tmp_path: Path, name: str) -> list[np.ndarray]:
    with np.load(tmp_path / f"{name}.npz") as archive:
        return [archive[f"p{i}"] for i in range(len(archive.files))]


def _log(tmp_path: Path, name: str) -> dict:
    return json.loads((tmp_path / f"{name}.json").read_text())


def test_horovod_workers_skip_the_same_inf_step_and_match_the_reference(tmp_path: Path) -> None:
    flags = ["--out", str(tmp_path), "--amp", "--steps", str(STEPS), "--inf-step", str(INF_STEP)]
    job = _launch(*flags)
    assert job.returncode == 0, job.stderr
    reference = _run([sys.executable, str(TRAIN), "--reference", *flags])
    assert reference.returncode == 0, reference.stderr

    logs = [_log(tmp_path, f"worker{rank}") for rank in range(2)]
    assert logs[0] == logs[1]
    steps = logs[0]["steps"]
    assert [s["skipped"] for s in steps] == [step == INF_STEP for step in range(STEPS)]
    assert [s["scale"] for s in steps] == [1024, 1024, 1024, 2048, 1024, 1024, 1024, 2048]
    assert _log(tmp_path, "reference_halves")["steps"] == steps
    workers = [_params(tmp_path, f"worker{rank}") for rank in range(2)]
    for a, b, ref in zip(*workers, _params(tmp_path, "reference_halves")):
        assert np.array_equal(a, b)
        np.testing.assert_allclose(a, ref, rtol=1e-6, atol=1e-6 * np.abs(ref).max())


def test_crashed_horovod_worker_fails_the_job_with_no_leftover_process(tmp_path: Path) -> None:
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    job = _launch("--out", str(tmp_path), "--crash-step", "2", DIST_TEST_PID_DIR=str(pid_dir))
    assert job.returncode == 3, job.stderr  # the worker's own code, not the watchdog's 124
    assert "exited with code 3; stopping the job" in job.stderr.strip().splitlines()[-1]
    pids = [int(p.name.rsplit("-", 1)[1]) for p in pid_dir.iterdir()]
    assert len(pids) == 2 and survivors(pids) == []
