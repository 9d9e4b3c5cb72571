"""Checking from outside that processes are gone (Linux /proc)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def survivors(pids: Iterable[int]) -> list[int]:
    """The pids among ``pids`` that still run."""
    return [pid for pid in pids if alive(pid)]
