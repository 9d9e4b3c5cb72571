"""gluon_amp.launch on stand-in jobs (no MXNet in the members): environment, failure, watchdog,
signals, and that no process it started outlives it."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dist_scripts.processes import REPO, child_env, survivors

from gluon_amp import launch

FAKE = Path(__file__).with_name("dist_scripts") / "fake_member.py"
# Failure guard only: no test relies on how long anything takes.
GUARD_SECONDS = 120

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc"),
]


def run_launcher(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    env = child_env()
    command = [sys.executable, "-m", "gluon_amp.launch", *args]
    return subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=GUARD_SECONDS, **kwargs
    )


def fake_job(out: Path, mode: str, workers: int = 2, servers: int = 1) -> list[str]:
    members = 1 + servers + workers
    return [
        *("-n", str(workers), "-s", str(servers), "--"),
        *(sys.executable, str(FAKE), "--out", str(out), "--mode", mode),
        *("--members", str(members)),
    ]


def recorded(out: Path) -> dict[int, dict]:
    """pid -> record, for every member and grandchild that started."""
    return {int(p.stem.rsplit("-", 1)[1]): json.loads(p.read_text()) for p in out.glob("*-*.json")}


def assert_all_gone(out: Path, expected: int) -> None:
    pids = recorded(out)
    assert len(pids) == expected, f"expected {expected} recorded processes, got {sorted(pids)}"
    assert survivors(pids) == []


def test_every_role_gets_its_loopback_environment(tmp_path: Path) -> None:
    result = run_launcher(fake_job(tmp_path, "ok", workers=3, servers=2))
    assert result.returncode == 0, result.stderr
    members = [r for r in recorded(tmp_path).values() if r]
    assert (
        sorted(r["DMLC_ROLE"] for r in members) == ["scheduler"] + ["server"] * 2 + ["worker"] * 3
    )
    ports = {r["DMLC_PS_ROOT_PORT"] for r in members}
    assert len(ports) == 1 and 0 < int(ports.pop()) < 65536
    for record in members:
        assert record["DMLC_PS_ROOT_URI"] == record["DMLC_NODE_HOST"] == "127.0.0.1"
        assert (record["DMLC_NUM_WORKER"], record["DMLC_NUM_SERVER"]) == ("3", "2")
    assert_all_gone(tmp_path, expected=12)


def test_crashed_worker_fails_the_job_and_ends_every_process(tmp_path: Path) -> None:
    result = run_launcher(["--timeout", str(GUARD_SECONDS), *fake_job(tmp_path, "crash")])
    # 3 is the worker's own code: the job failed on the crash, not on the watchdog (124).
    assert result.returncode == 3, result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("gluon_amp.launch: worker ")
    assert "exited with code 3; stopping the job (3 other processes still running)" in message
    assert_all_gone(tmp_path, expected=8)


def test_watchdog_ends_a_hanging_job(tmp_path: Path) -> None:
    # 8 s: ample for 3 members without MXNet to start and record themselves.
    result = run_launcher(["--timeout", "8", *fake_job(tmp_path, "hang", workers=1)])
    assert result.returncode == 124, result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert "watchdog: the job ran longer than --timeout 8 s; stopping scheduler (pid" in message
    assert_all_gone(tmp_path, expected=6)


def wait_for(condition, seconds: float = GUARD_SECONDS) -> None:
    """Poll until ``condition()`` holds (waiting for an event, not timing it)."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def hanging_job(out: Path) -> subprocess.Popen:
    """A launcher running a job that never ends, once all 6 of its processes have started."""
    command = [sys.executable, "-m", "gluon_amp.launch", *fake_job(out, "hang", workers=1)]
    launcher = subprocess.Popen(
        command, cwd=REPO, env=child_env(), stderr=subprocess.PIPE, text=True
    )
    wait_for(lambda: len(recorded(out)) == 6)
    return launcher


def test_sigterm_to_the_launcher_ends_every_process(tmp_path: Path) -> None:
    launcher = hanging_job(tmp_path)
    try:
        launcher.send_signal(signal.SIGTERM)
        _, stderr = launcher.communicate(timeout=GUARD_SECONDS)
    finally:
        launcher.kill()
    assert launcher.returncode == 130, stderr
    assert "gluon_amp.launch: interrupted; stopped 3 processes" in stderr
    assert_all_gone(tmp_path, expected=6)


def test_a_killed_launcher_leaves_no_process_behind(tmp_path: Path) -> None:
    """SIGKILL gives the launcher no chance to clean up: its guard process does it."""
    launcher = hanging_job(tmp_path)
    try:
        assert survivors(recorded(tmp_path))
        launcher.kill()
        launcher.wait(timeout=GUARD_SECONDS)
        wait_for(lambda: not survivors(recorded(tmp_path)))  # the guard needs a moment
    finally:
        launcher.kill()
    assert_all_gone(tmp_path, expected=6)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["-n", "0", "--", "true"], "argument -n/--num-workers: must be at least 1, got 0"),
        (["-n", "2", "-s", "1"], "no command given: put it after --, e.g. -- python train.py"),
        (["-n", "1", "--timeout", "-5", "--", "true"], "must be a finite number of seconds > 0"),
        (["-n", "1", "--timeout", "nan", "--", "true"], "finite number of seconds > 0, got nan"),
        (["-n", "1", "--timeout", "inf", "--", "true"], "finite number of seconds > 0, got inf"),
        (["-n", "1", "--timeout", "soon", "--", "true"], "finite number of seconds > 0, got soon"),
    ],
)
def test_bad_usage_is_one_clear_error(args: list[str], error: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        launch.main(args)
    assert exit_info.value.code == 2
    assert error in capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize("timeout", [math.nan, math.inf, 0.0])
def test_launch_refuses_a_timeout_that_could_never_fire(timeout: float) -> None:
    with pytest.raises(launch.LaunchError, match="timeout must be a finite number of seconds > 0"):
        launch.launch(["true"], 1, timeout=timeout)


def test_horovod_job_has_no_servers(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        launch.main(["--horovod", "-n", "2", "-s", "1", "--", "true"])
    assert exit_info.value.code == 2
    assert "-s/--num-servers is for dist_sync jobs" in capsys.readouterr().err


def test_horovod_missing_says_how_to_build_it(capsys) -> None:
    try:
        import horovod.runner.http.http_server  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("Horovod is installed here")
    assert launch.main(["--horovod", "-n", "2", "--", "true"]) == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith("gluon_amp.launch: --horovod needs Horovod (")
    assert "pip install --no-build-isolation horovod" in message


def test_missing_program_is_reported(tmp_path: Path, capsys) -> None:
    assert launch.main(["-n", "1", "--", str(tmp_path / "no-such-program")]) == 127
    assert "gluon_amp.launch: cannot run" in capsys.readouterr().err
