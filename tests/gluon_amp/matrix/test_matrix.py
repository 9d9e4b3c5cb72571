"""gluon_amp where its features meet: a pairwise-sampled matrix of training runs (issue 14).

Each test is one cell (``matrix_cells.py``: how the network is made, front end, output
structure, grad_req and accumulation window, scaler, overflow injected, contexts, optimizer)
in one precision. ``amp.init`` is process-global, so the cells of a precision run together in one
subprocess (``matrix_run.py``, started once for all the selected cells of that precision); each
test then reports its own cell. A cell that kills the process fails alone: the others run again
in a new process.

bfloat16 cells need a CPU with bfloat16 kernels (AVX-512) and are skipped elsewhere, with the
reason; float16 cells run everywhere, emulated on a CPU (``GLUON_AMP_EMULATE_FLOAT16=1``). Cells
hit by a known defect (``matrix_cells.DEFECTS``) are xfail(strict=True) and expect that defect's
own failure: any other failure fails, and the fix makes them pass, so the marker must go.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from machine import NO_BFLOAT16
from matrix_cells import BY_ID, CELLS, Cell, known_defect

from gluon_amp.emulate import ENV_VAR

RUNNER = Path(__file__).with_name("matrix_run.py")
TIMEOUT = 900  # seconds for one process: only a hang comes near it (a group takes ~10 s)


class CellFailed(AssertionError):
    """A cell failed (a check, an error, or its process died)."""


class KnownDefect(AssertionError):
    """A cell failed exactly as its known defect makes it fail."""


def marks(cell: Cell) -> list:
    found = []
    if cell.precision == "bfloat16":
        found.append(
            pytest.mark.skipif(
                NO_BFLOAT16 is not None, reason=f"needs bfloat16 kernels: {NO_BFLOAT16}"
            )
        )
    defect = known_defect(cell)
    if defect is not None:
        found.append(pytest.mark.xfail(strict=True, raises=KnownDefect, reason=defect.name))
    return found


def run_group(precision: str, cells: list[Cell]) -> dict[str, dict]:
    """Run ``cells`` (one precision) in subprocesses; their results by cell id.

    A process that dies fails the cell it was on (its last event) and the cells left run again.
    """
    env = {**os.environ, ENV_VAR: "1" if precision == "float16" else "0"}
    results: dict[str, dict] = {}
    pending = list(cells)
    while pending:
        command = [sys.executable, str(RUNNER), precision, *(c.id for c in pending)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=TIMEOUT)
        except subprocess.TimeoutExpired as error:
            done = subprocess.CompletedProcess(command, "timeout", error.stdout or "", "")
        last = None
        for line in done.stdout.splitlines():
            if line.startswith("MATRIX "):
                event = json.loads(line[len("MATRIX ") :])
                last = event["cell"]
                if event["event"] in ("passed", "failed"):
                    results[last] = event
        left = [c for c in pending if c.id not in results]
        if not left:
            break
        culprit = last if last in {c.id for c in left} else left[0].id
        stderr = "\n".join(done.stderr.strip().splitlines()[-15:])
        results[culprit] = {
            "event": "failed",
            "error": f"the process ended ({done.returncode}) during this cell:\n{stderr}",
        }
        pending = [c for c in left if c.id != culprit]
    return results


@pytest.fixture(scope="session")
def matrix(request):
    """``matrix(cell)``: the cell's result, running its precision's selected cells at first use."""
    results: dict[str, dict] = {}

    def result(cell: Cell) -> dict:
        if cell.id not in results:
            selected = [
                BY_ID[item.callspec.id]
                for item in request.session.items
                if getattr(item, "callspec", None) is not None and item.callspec.id in BY_ID
            ]
            group = [c for c in selected if c.precision == cell.precision and c.id not in results]
            results.update(run_group(cell.precision, group or [cell]))
        return results[cell.id]

    return result


@pytest.mark.parametrize("cell", [pytest.param(c, id=c.id, marks=marks(c)) for c in CELLS])
def test_cell(cell, matrix):
    outcome = matrix(cell)
    if outcome["event"] == "passed":
        return
    defect = known_defect(cell)
    if defect is not None and defect.explains(outcome["error"]):
        raise KnownDefect(f"{defect.name}: {outcome['error']}")
    raise CellFailed(outcome["error"])
