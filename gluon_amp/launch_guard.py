"""Ends a local job's processes when ``gluon_amp.launch`` dies without doing it itself.

The launcher stops every process it started on failure, timeout, Ctrl-C and SIGTERM, but
nothing runs in a process killed with SIGKILL (the OOM killer, ``kill -9``, a CI runner's hard
timeout), and MXNet's scheduler, servers and workers would then block forever. So the launcher
starts this script as a process of its own session and tells it, on its standard input, the
process group of every member it starts (``+PGID``), then ``done`` once it has stopped and
reaped them. If standard input closes without ``done``, the launcher is gone: this ends each
group as the launcher would (SIGTERM, a short grace, SIGKILL) and exits.

It runs by path (``python .../launch_guard.py``), so it never imports MXNet or ``gluon_amp``.
"""

from __future__ import annotations

import os
import signal
import sys
import time

GRACE_SECONDS = 3.0  # how long a process gets to exit on SIGTERM before SIGKILL
POLL_SECONDS = 0.05


def signal_groups(groups: set[int], sig: signal.Signals | int) -> set[int]:
    """Send ``sig`` to each process group (a member leads its own session, so its group id is
    its pid); the groups that still exist."""
    alive = set()
    for group in groups:
        try:
            os.killpg(group, sig)
            alive.add(group)
        except (ProcessLookupError, PermissionError):
            pass
    return alive


def end_groups(groups: set[int]) -> None:
    """SIGTERM every group, wait up to the grace period while any is left, then SIGKILL."""
    alive = signal_groups(groups, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    while alive and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        alive = signal_groups(alive, 0)  # signal 0: does the group still exist?
    signal_groups(alive, signal.SIGKILL)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the launcher's to handle
    groups: set[int] = set()
    for line in sys.stdin:
        line = line.strip()
        if line == "done":
            return
        if line.startswith("+") and line[1:].isdigit():
            groups.add(int(line[1:]))
    end_groups(groups)  # standard input closed without "done": the launcher is gone


if __name__ == "__main__":
    main()
