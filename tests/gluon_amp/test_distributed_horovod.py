"""gluon_amp on Horovod (gloo, CPU): two workers, rendezvous on 127.0.0.1.

``horovodrun`` binds its rendezvous server on every interface, so the job is started here the
way ``horovodrun --gloo`` starts it, with the rendezvous bound to loopback: Horovod's own
rendezvous server and slot assignment, the gloo environment of each slot, and
``gluon_amp.launch``'s supervision (first failure or watchdog ends every process).
Runs only where Horovod is built with MXNet (see examples/distributed/README.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

BUILD = (
    "HOROVOD_WITH_MXNET=1 HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 "
    "HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 pip install --no-build-isolation horovod"
)
pytest.importorskip(
    "horovod.mxnet", reason=f"Horovod with MXNet support is not installed (build: {BUILD})"
)

from dist_scripts.processes import child_env  # noqa: E402
from horovod.runner.common.util.hosts import get_host_assignments, parse_hosts  # noqa: E402
from horovod.runner.gloo_run import create_slot_env_vars  # noqa: E402
from horovod.runner.http.http_server import (  # noqa: E402
    RendezvousHandler,
    RendezvousHTTPServer,
)

from gluon_amp.launch import LOOPBACK, start_member, stop_all, supervise  # noqa: E402

TRAIN = Path(__file__).with_name("dist_scripts") / "train.py"
GUARD_SECONDS = 180  # failure guard only
STEPS = 8
INF_STEP = 3

pytestmark = pytest.mark.slow


def run_horovod_job(args: list[str], num_workers: int = 2) -> int:
    """Run ``python train.py args`` as a ``num_workers``-process Horovod gloo job on loopback."""
    server = RendezvousHTTPServer((LOOPBACK, 0), RendezvousHandler, False)
    plan = get_host_assignments(parse_hosts(f"localhost:{num_workers}"), num_workers)
    server.init(plan)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    common = {
        "HOROVOD_GLOO_RENDEZVOUS_ADDR": LOOPBACK,
        "HOROVOD_GLOO_RENDEZVOUS_PORT": str(server.server_address[1]),
        "HOROVOD_CONTROLLER": "gloo",
        "HOROVOD_CPU_OPERATIONS": "gloo",
        "HOROVOD_GLOO_IFACE": "lo",
    }
    members = []
    try:
        for slot in plan:
            env = child_env(**common, **create_slot_env_vars(slot))
            command = [sys.executable, str(TRAIN), "--horovod", *args]
            members.append(start_member(command, env, "worker", slot.rank))
        return supervise(members, timeout=GUARD_SECONDS)
    finally:
        stop_all(members)
        server.shutdown()
        server.server_close()


def _params(tmp_path: Path, name: str) -> list[np.ndarray]:
    with np.load(tmp_path / f"{name}.npz") as archive:
        return [archive[f"p{i}"] for i in range(len(archive.files))]


def _log(tmp_path: Path, name: str) -> dict:
    return json.loads((tmp_path / f"{name}.json").read_text())


def test_horovod_workers_skip_the_same_inf_step_and_match_the_reference(tmp_path: Path) -> None:
    flags = ["--out", str(tmp_path), "--amp", "--steps", str(STEPS), "--inf-step", str(INF_STEP)]
    assert run_horovod_job(flags) == 0
    reference = subprocess.run(
        [sys.executable, str(TRAIN), "--reference", *flags],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=GUARD_SECONDS,
    )
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
