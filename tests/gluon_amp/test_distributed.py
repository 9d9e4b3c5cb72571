"""gluon_amp on MXNet's parameter server: real ``dist_sync`` jobs on 127.0.0.1.

Each job is one scheduler, one or two servers and two workers started by ``gluon_amp.launch``,
running ``dist_scripts/train.py``; the single-process reference runs beside it. See that script
for the model, the data and what each run writes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from dist_scripts.processes import REPO, child_env, survivors
from machine import LOW_PRECISIONS

TRAIN = Path(__file__).with_name("dist_scripts") / "train.py"
GUARD_SECONDS = 180  # watchdog and subprocess timeouts: failure guards only
STEPS = 8
INF_STEP = 3
# What Gluon raises (a UserWarning) when rescale_grad changes while the servers update.
KVSTORE_RESCALE_WARNING = "Possible change in the `batch_size` from previous `step` detected"

pytestmark = pytest.mark.slow


def _env(pid_dir: Path | None = None) -> dict[str, str]:
    env = child_env()
    if pid_dir is not None:  # where train.py records the pid of each process of a job
        pid_dir.mkdir()
        env["DIST_TEST_PID_DIR"] = str(pid_dir)
    return env


def _reference(tmp_path: Path, *flags: str) -> subprocess.Popen:
    command = [sys.executable, str(TRAIN), "--out", str(tmp_path), "--reference", *flags]
    return subprocess.Popen(command, cwd=REPO, env=_env(), stderr=subprocess.PIPE)


def _job(tmp_path: Path, *flags: str, servers: int) -> subprocess.CompletedProcess:
    """Run a 2-worker job; check that none of its processes outlived it."""
    command = [
        *(sys.executable, "-m", "gluon_amp.launch", "-n", "2", "-s", str(servers)),
        *("--timeout", str(GUARD_SECONDS), "--"),
        *(sys.executable, str(TRAIN), "--out", str(tmp_path), *flags),
    ]
    result = subprocess.run(
        command, cwd=REPO, env=_env(tmp_path / "pids"), capture_output=True, text=True,
        timeout=GUARD_SECONDS + 30,
    )  # fmt: skip
    pids = [int(p.name.rsplit("-", 1)[1]) for p in (tmp_path / "pids").iterdir()]
    roles = sorted(p.name.rsplit("-", 1)[0] for p in (tmp_path / "pids").iterdir())
    assert roles == ["scheduler"] + ["server"] * servers + ["worker"] * 2
    assert survivors(pids) == []
    return result


def _wait(reference: subprocess.Popen) -> None:
    _, stderr = reference.communicate(timeout=GUARD_SECONDS)
    assert reference.returncode == 0, stderr.decode()


def _params(tmp_path: Path, name: str) -> list[np.ndarray]:
    with np.load(tmp_path / f"{name}.npz") as archive:
        return [archive[f"p{i}"] for i in range(len(archive.files))]


def _log(tmp_path: Path, name: str) -> dict:
    return json.loads((tmp_path / f"{name}.json").read_text())


def _assert_same_params(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert len(a) == len(b) == 4
    for x, y in zip(a, b):
        assert x.dtype == y.dtype == np.float32
        assert np.array_equal(x, y)


def _assert_close(a: list[np.ndarray], b: list[np.ndarray], rtol: float) -> None:
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol * np.abs(y).max())


def test_plain_dist_sync_matches_single_process(tmp_path: Path) -> None:
    """The baseline, without gluon_amp: 2 servers, 2 workers, update on the workers."""
    reference = _reference(tmp_path, "--steps", str(STEPS))
    result = _job(tmp_path, "--steps", str(STEPS), servers=2)
    _wait(reference)
    assert result.returncode == 0, result.stderr
    workers = [_params(tmp_path, f"worker{rank}") for rank in range(2)]
    _assert_same_params(*workers)
    # float32: the sum of two half-batch gradients vs the full batch's, ~1e-7 apart.
    _assert_close(workers[0], _params(tmp_path, "reference_full"), rtol=1e-6)
    assert workers[0][0].std() > 0.1  # really trained: not all zeros or a constant


def test_amp_workers_skip_the_same_inf_step_and_match_the_reference(tmp_path: Path) -> None:
    """float16 + DynamicLossScaler(2**10, growth_interval=3); worker 0 injects an inf."""
    flags = ("--amp", "float16", "--steps", str(STEPS), "--inf-step", str(INF_STEP))
    reference = _reference(tmp_path, *flags)
    result = _job(tmp_path, *flags, servers=2)
    _wait(reference)
    assert result.returncode == 0, result.stderr

    logs = [_log(tmp_path, f"worker{rank}") for rank in range(2)]
    assert logs[0] == logs[1]  # same decisions, same scales, same scaler state
    steps = logs[0]["steps"]
    assert [s["skipped"] for s in steps] == [step == INF_STEP for step in range(STEPS)]
    # Growth after 3 clean steps; the inf step backs off at once, for the very next step.
    assert [s["scale"] for s in steps] == [1024, 1024, 1024, 2048, 1024, 1024, 1024, 2048]
    state = logs[0]["state"]
    assert (state["num_skipped"], state["num_steps"], state["scale"]) == (1, STEPS, 2048)
    assert logs[0]["update_on_kvstore"] is False  # Gluon's dist default (True) switched off
    assert KVSTORE_RESCALE_WARNING not in result.stderr  # scale changes left the kvstore alone

    workers = [_params(tmp_path, f"worker{rank}") for rank in range(2)]
    _assert_same_params(*workers)
    assert all(np.isfinite(p).all() for p in workers[0])
    halves = _log(tmp_path, "reference_halves")
    assert halves["steps"] == steps and halves["state"] == state
    _assert_close(workers[0], _params(tmp_path, "reference_halves"), rtol=1e-6)
    # One backward on the whole batch rounds its float16 gradients differently.
    assert _log(tmp_path, "reference_full")["steps"] == steps
    _assert_close(workers[0], _params(tmp_path, "reference_full"), rtol=1e-2)


def test_amp_switches_off_update_on_kvstore_requested_true(tmp_path: Path) -> None:
    """Trainer(update_on_kvstore=True) on dist_sync: the servers must never apply an inf step."""
    flags = ("--amp", "float16", "--steps", "3", "--inf-step", "1", "--update-on-kvstore")
    result = _job(tmp_path, *flags, servers=1)
    assert result.returncode == 0, result.stderr
    assert "update_on_kvstore=True switched off" in result.stderr
    assert KVSTORE_RESCALE_WARNING not in result.stderr
    logs = [_log(tmp_path, f"worker{rank}") for rank in range(2)]
    assert logs[0] == logs[1]
    assert [s["skipped"] for s in logs[0]["steps"]] == [False, True, False]
    assert logs[0]["update_on_kvstore"] is False
    workers = [_params(tmp_path, f"worker{rank}") for rank in range(2)]
    _assert_same_params(*workers)
    assert all(np.isfinite(p).all() for p in workers[0])


def test_float16_workers_skip_the_same_real_overflow_steps_and_end_bit_identical(
    tmp_path: Path,
) -> None:
    """float16 (emulated) + DynamicLossScaler(2**16): no injected infinity. Each worker's own
    float16 gradients overflow in the first steps; the summed gradients carry the inf to both,
    and both skip, back off and end with the same parameters, bit for bit."""
    flags = ("--amp", "float16", "--init-scale", str(2.0**16), "--steps", str(STEPS))
    reference = _reference(tmp_path, *flags)
    result = _job(tmp_path, *flags, servers=1)
    _wait(reference)
    assert result.returncode == 0, result.stderr
    logs = [_log(tmp_path, f"worker{rank}") for rank in range(2)]
    assert logs[0] == logs[1]
    skipped = [s["skipped"] for s in logs[0]["steps"]]
    first_clean = skipped.index(False)
    assert first_clean >= 1  # real overflows at 2**16 first
    assert [s["scale"] for s in logs[0]["steps"][: first_clean + 1]] == [
        2.0 ** (16 - i) for i in range(first_clean + 1)
    ]
    workers = [_params(tmp_path, f"worker{rank}") for rank in range(2)]
    _assert_same_params(*workers)
    assert all(np.isfinite(p).all() for p in workers[0])
    # The single process that sums the same two half-batch gradients decides alike.
    halves = _log(tmp_path, "reference_halves")
    assert halves["steps"] == logs[0]["steps"] and halves["state"] == logs[0]["state"]
    _assert_close(workers[0], _params(tmp_path, "reference_halves"), rtol=1e-6)


def test_crashed_worker_fails_the_job_fast_with_no_leftover_process(tmp_path: Path) -> None:
    """Worker 1 dies mid-training (os._exit(3)); its peers block in MXNet until stopped."""
    result = _job(tmp_path, "--steps", str(STEPS), "--crash-step", "2", servers=1)
    # Its own exit code, so the launcher reacted to the crash and not to its watchdog (124).
    assert result.returncode == 3, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("gluon_amp.launch: worker ")
    assert "exited with code 3; stopping the job" in last
    assert not (tmp_path / "worker0.npz").exists()


@pytest.mark.parametrize("dtype", LOW_PRECISIONS)
def test_example_trains_identically_on_two_local_workers(tmp_path: Path, dtype: str) -> None:
    """examples/distributed/train.py as its README runs it, one epoch; float16 is turned on as
    CI would: GLUON_AMP_EMULATE_FLOAT16=1 makes its plain amp.init() pick float16 on a CPU."""
    example = REPO / "examples" / "distributed" / "train.py"
    command = [
        *(sys.executable, "-m", "gluon_amp.launch", "-n", "2", "-s", "1"),
        *("--timeout", str(GUARD_SECONDS), "--", sys.executable, str(example), "--epochs", "1"),
        *(("--dtype", "bfloat16") if dtype == "bfloat16" else ()),
    ]
    env = {**_env(), "GLUON_AMP_EMULATE_FLOAT16": "1" if dtype == "float16" else "0"}
    result = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=GUARD_SECONDS + 30
    )
    assert result.returncode == 0, result.stderr
    finals = sorted(line for line in result.stdout.splitlines() if line.startswith("worker "))
    assert [line.split(":")[0] for line in finals] == [
        "worker 0/2 (kvstore)",
        "worker 1/2 (kvstore)",
    ], f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-3000:]}"
    # Same parameters (checksum), same scaler state, same test accuracy on both workers.
    assert finals[0].split(":", 1)[1] == finals[1].split(":", 1)[1]
    accuracy = float(finals[0].split("test accuracy ")[1].split(",")[0])
    assert accuracy > 0.5  # one epoch of 10-class digits: learning, not guessing


def test_example_help_says_how_the_emulation_changes_the_default_dtype() -> None:
    example = REPO / "examples" / "distributed" / "train.py"
    result = subprocess.run(
        [sys.executable, str(example), "--help"], env=_env(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    help_text = " ".join(result.stdout.split())
    assert "float16 with a GPU or with GLUON_AMP_EMULATE_FLOAT16=1 (float16 emulated on a CPU)" in (
        help_text
    )
