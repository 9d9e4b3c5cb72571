"""Shared helpers for amplint tests: run the real CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_amplint(
    *args: str, cwd: Path | str = REPO, env: dict | None = None, stdin: str | None = None
):
    """``python -m amplint ARGS`` in a subprocess; returns the CompletedProcess."""
    environment = dict(os.environ, **(env or {}))
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(REPO), *filter(None, [environment.get("PYTHONPATH")])]
    )
    return subprocess.run(
        [sys.executable, "-m", "amplint", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
    )


@pytest.fixture
def amplint():
    return run_amplint
