"""Run a multi-process training job on this machine, over loopback only.

    python -m gluon_amp.launch -n 2 -s 1 -- python train.py --epochs 3      # MXNet dist_sync
    python -m gluon_amp.launch --horovod -n 2 -- python train.py           # Horovod (gloo)

Every process runs the same command with the ``DMLC_*`` variables of its role; ``import mxnet``
turns the scheduler and server processes into ps-lite's server loop, so ``train.py`` only ever
runs as a worker. With ``--horovod`` the workers meet at Horovod's gloo rendezvous, which the
launcher serves on ``127.0.0.1`` (``horovodrun`` would listen on every interface). Everything
stays on loopback (``127.0.0.1``, a free port).

MXNet never times out: when one process dies the others block forever. The launcher therefore
watches every process it started, and the first one that fails (or the ``--timeout`` watchdog)
stops the whole job: each process runs in its own session and its whole process group is ended
(SIGTERM, then SIGKILL). If the launcher itself is killed where it cannot clean up (SIGKILL, the
OOM killer), :mod:`gluon_amp.launch_guard`, a small process of its own session, does it.

Processes are named by role and launch order (``worker 1``); MXNet's ``kv.rank`` is assigned
by the scheduler and may differ. This module imports no MXNet itself, but ``python -m`` first
imports the ``gluon_amp`` package, which loads MXNet (a few seconds) to fail early and clearly
where it is not usable.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gluon_amp.launch_guard import GRACE_SECONDS, signal_groups

LOOPBACK = "127.0.0.1"
POLL_SECONDS = 0.05
# After every worker has finished, the scheduler and servers shut down by themselves within a
# second; this only guards against one that never does.
SERVER_EXIT_GRACE_SECONDS = 30.0
EXIT_TIMEOUT = 124  # what coreutils' `timeout` returns
EXIT_CANNOT_RUN = 127
EXIT_USAGE = 2
HOROVOD_BUILD = (
    "build it with: HOROVOD_WITH_MXNET=1 HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 "
    "HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 pip install --no-build-isolation horovod"
)


TIMEOUT_RULE = "must be a finite number of seconds > 0"


def _is_timeout(value: float) -> bool:
    return math.isfinite(value) and value > 0  # NaN or inf would never fire


class LaunchError(Exception):
    """A job that cannot be set up (the message says why and what to do)."""


@dataclass
class Member:
    """One process of the job: its role, its index within the role, and the process."""

    role: str
    index: int
    process: subprocess.Popen

    def __str__(self) -> str:
        label = self.role if self.role == "scheduler" else f"{self.role} {self.index}"
        return f"{label} (pid {self.process.pid})"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def role_env(
    role: str, port: int, num_workers: int, num_servers: int, base: Mapping[str, str]
) -> dict[str, str]:
    """The environment of one process: ``base`` plus the ps-lite variables of its role."""
    env = dict(base)
    env.update(
        DMLC_ROLE=role,
        DMLC_PS_ROOT_URI=LOOPBACK,
        DMLC_PS_ROOT_PORT=str(port),
        DMLC_NUM_WORKER=str(num_workers),
        DMLC_NUM_SERVER=str(num_servers),
        # Without it ps-lite may bind another interface: keep all traffic on loopback.
        DMLC_NODE_HOST=LOOPBACK,
    )
    return env


def exit_description(returncode: int) -> str:
    """``exited with code 3`` or ``was killed by SIGKILL``."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with code {returncode}"


def _say(message: str) -> None:
    print(f"gluon_amp.launch: {message}", file=sys.stderr, flush=True)


def stop_all(members: Sequence[Member]) -> None:
    """End every member's process group: SIGTERM, a short grace, then SIGKILL; reap them all."""
    signal_groups({member.process.pid for member in members}, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    for member in members:
        try:
            member.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    # Also reaches children a member left behind in its group after it exited.
    signal_groups({member.process.pid for member in members}, signal.SIGKILL)
    for member in members:
        member.process.wait()


def start_member(command: Sequence[str], env: Mapping[str, str], role: str, index: int) -> Member:
    """Start ``command`` in a session of its own (so :func:`stop_all` can end its whole group)."""
    process = subprocess.Popen(list(command), env=dict(env), start_new_session=True)
    return Member(role, index, process)


@contextlib.contextmanager
def orphan_guard() -> Iterator[Callable[[Member], None]]:
    """:mod:`gluon_amp.launch_guard` in a session of its own, for as long as the job runs: it
    ends the members' groups if this process dies without stopping them (SIGKILL). Yields the
    function that tells it about a member; on exit (members already stopped) it is released."""
    script = Path(__file__).with_name("launch_guard.py")
    guard = subprocess.Popen(
        [sys.executable, str(script)],
        stdin=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a signal to this process's group does not reach it
    )
    assert guard.stdin is not None

    def watch(member: Member) -> None:
        guard.stdin.write(f"+{member.process.pid}\n")  # its group id: it leads its session
        guard.stdin.flush()

    try:
        yield watch
    finally:
        with contextlib.suppress(OSError):  # a guard that died has nothing left to do
            guard.stdin.write("done\n")
            guard.stdin.close()
        guard.wait()


def supervise(members: Sequence[Member], timeout: float | None) -> int:
    """Wait for the members; return the job's exit status as soon as it is known.

    The first member to fail decides it; once every worker has exited cleanly the others get
    ``SERVER_EXIT_GRACE_SECONDS`` to follow. Does not stop anyone: call :func:`stop_all`.
    """
    started = time.monotonic()
    workers_done_at: float | None = None
    while True:
        for member in members:
            code = member.process.poll()
            if code is not None and code != 0:
                still = sum(m.process.poll() is None for m in members)
                _say(
                    f"{member} {exit_description(code)}; stopping the job "
                    f"({still} other process{'es' if still != 1 else ''} still running)"
                )
                return code if code > 0 else 128 - code
        running = [m for m in members if m.process.poll() is None]
        if not running:
            return 0
        now = time.monotonic()
        if workers_done_at is None and all(m.role != "worker" for m in running):
            workers_done_at = now
        if workers_done_at is not None and now - workers_done_at > SERVER_EXIT_GRACE_SECONDS:
            names = ", ".join(map(str, running))
            _say(f"all workers finished but {names} did not exit; stopping them")
            return 1
        if timeout is not None and now - started > timeout:
            names = ", ".join(map(str, running))
            _say(f"watchdog: the job ran longer than --timeout {timeout:g} s; stopping {names}")
            return EXIT_TIMEOUT
        time.sleep(POLL_SECONDS)


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


Spec = tuple[str, int, dict[str, str]]  # role, index, environment of one process to start


def dist_sync_specs(
    num_workers: int, num_servers: int, port: int, base: Mapping[str, str]
) -> list[Spec]:
    """The processes of a ``dist_sync`` job: scheduler, servers, workers."""
    roles = [("scheduler", 0)]
    roles += [("server", i) for i in range(num_servers)]
    roles += [("worker", i) for i in range(num_workers)]
    return [
        (role, index, role_env(role, port, num_workers, num_servers, base)) for role, index in roles
    ]


@contextlib.contextmanager
def horovod_rendezvous(
    num_workers: int, port: int, base: Mapping[str, str]
) -> Iterator[list[Spec]]:
    """Horovod's gloo rendezvous bound to 127.0.0.1 (``horovodrun`` binds every interface),
    and the environment ``horovodrun --gloo`` gives each worker; the server stops on exit."""
    try:
        from horovod.runner.common.util.hosts import get_host_assignments, parse_hosts
        from horovod.runner.gloo_run import create_slot_env_vars
        from horovod.runner.http.http_server import RendezvousHandler, RendezvousHTTPServer
    except ImportError as error:
        raise LaunchError(f"--horovod needs Horovod ({error}); {HOROVOD_BUILD}") from None
    server = RendezvousHTTPServer((LOOPBACK, port), RendezvousHandler, False)
    slots = get_host_assignments(parse_hosts(f"localhost:{num_workers}"), num_workers)
    server.init(slots)
    thread = threading.Thread(target=server.serve_forever, name="rendezvous", daemon=True)
    thread.start()
    common = {
        "HOROVOD_GLOO_RENDEZVOUS_ADDR": LOOPBACK,
        "HOROVOD_GLOO_RENDEZVOUS_PORT": str(server.server_address[1]),
        "HOROVOD_CONTROLLER": "gloo",
        "HOROVOD_CPU_OPERATIONS": "gloo",
        "HOROVOD_GLOO_IFACE": "lo",
    }
    try:
        yield [("worker", s.rank, {**base, **common, **create_slot_env_vars(s)}) for s in slots]
    finally:
        server.shutdown()
        server.server_close()


def launch(
    command: Sequence[str],
    num_workers: int,
    num_servers: int = 1,
    *,
    horovod: bool = False,
    timeout: float | None = None,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run ``command`` as a local job and return its exit status.

    A ``dist_sync`` job (scheduler, ``num_servers`` servers, ``num_workers`` workers), or with
    ``horovod=True`` ``num_workers`` Horovod gloo workers. 0 when every process exits cleanly;
    the first failing process's exit code (128 + signal number when killed by a signal); 124
    when the ``timeout`` watchdog fires; 127 when ``command`` cannot be started. Every process
    started here is gone when this returns. Raises :class:`LaunchError` for a job that cannot
    be set up.
    """
    if num_workers < 1 or num_servers < 1:
        raise LaunchError("a job needs at least one worker (and, for dist_sync, one server)")
    if not command:
        raise LaunchError("no command to run")
    if timeout is not None and not _is_timeout(timeout):
        raise LaunchError(f"timeout {TIMEOUT_RULE}, got {timeout}")
    base = dict(os.environ if env is None else env)
    members: list[Member] = []
    # SIGTERM stops the job like Ctrl-C does (signal handlers live in the main thread only).
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:
        previous_sigterm = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        with contextlib.ExitStack() as stack:
            watch = stack.enter_context(orphan_guard())
            if horovod:
                specs = stack.enter_context(horovod_rendezvous(num_workers, port or 0, base))
            else:
                port = free_port() if port is None else port
                specs = dist_sync_specs(num_workers, num_servers, port, base)
            try:
                for role, index, member_env in specs:
                    members.append(start_member(command, member_env, role, index))
                    watch(members[-1])
                return supervise(members, timeout)
            finally:
                stop_all(members)  # before the rendezvous server stops
    except OSError as error:
        _say(f"cannot run {command[0]!r}: {error.strerror or error}")
        return EXIT_CANNOT_RUN
    except KeyboardInterrupt:
        _say(f"interrupted; stopped {len(members)} processes")
        return 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous_sigterm)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not _is_timeout(value):
        raise argparse.ArgumentTypeError(f"{TIMEOUT_RULE}, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gluon_amp.launch",
        description="Run a command as a local multi-process training job on 127.0.0.1: an MXNet "
        "dist_sync job (one scheduler, S servers, N workers) or, with --horovod, N Horovod gloo "
        "workers. Every process runs the same command.",
        epilog="example: python -m gluon_amp.launch -n 2 -s 1 --timeout 600 -- python train.py",
    )
    parser.add_argument(
        "-n", "--num-workers", type=_positive_int, required=True, help="worker processes"
    )
    parser.add_argument(
        "-s", "--num-servers", type=_positive_int, default=None,
        help="dist_sync server processes (default 1)",
    )  # fmt: skip
    parser.add_argument(
        "--horovod",
        action="store_true",
        help="a Horovod gloo job (rendezvous on 127.0.0.1) instead of dist_sync",
    )
    parser.add_argument(
        "--timeout",
        type=_timeout,
        default=None,
        help="watchdog: stop the whole job after this many seconds (default: no limit)",
    )
    parser.add_argument(
        "--port",
        type=_positive_int,
        default=None,
        help="scheduler / rendezvous port (default: a free one)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the job's exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given: put it after --, e.g. -- python train.py")
    if args.horovod and args.num_servers is not None:
        parser.error("-s/--num-servers is for dist_sync jobs: a Horovod job has no servers")
    try:
        return launch(
            command,
            args.num_workers,
            args.num_servers or 1,
            horovod=args.horovod,
            timeout=args.timeout,
            port=args.port,
        )
    except LaunchError as error:
        _say(str(error))
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
