"""The cells of the feature-interaction matrix: factors, levels, what MXNet rejects, known defects.

The factors other than precision are sampled pairwise (``matrix_pairwise``, seed :data:`SEED`);
every sampled cell then runs once per precision, so each bfloat16 cell is its float16 twin with
only the dtype changed. ``amp.init`` is process-global: ``matrix_run`` runs the cells of one
precision in one process.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Callable

from matrix_pairwise import pairwise

#: Seed of the pairwise sampling: changing it changes which cells run, not what they check.
SEED = 0

#: Each factor and its levels (precision is crossed with the sampled cells, not sampled).
FACTORS: dict[str, list] = {
    # imperative Gluon; hybridized; hybridized with static_alloc/static_shape; a float32 model
    # exported and loaded back with SymbolBlock.imports after amp.init
    "build": ["imperative", "hybridized", "static_alloc", "imports"],
    "front": ["legacy", "numpy"],  # npx.set_np() for the numpy front end
    "output": ["tensor", "tuple", "namedtuple", "dict", "nested"],
    # grad_req='write', or 'add' with 2 or 3 backward passes (micro-batches) per step
    "grad_req": ["write", "add2", "add3"],
    "scaler": ["static", "dynamic"],
    # at the middle step: nothing; an inf in one input (on the last context); the loss times the
    # largest value of the target dtype (a real float16 overflow in backward)
    "overflow": ["none", "inf_input", "loss"],
    "contexts": [1, 2],  # mx.cpu(0) [, mx.cpu(1)], kvstore 'device'
    "optimizer": ["sgd_momentum", "adam", "lamb_mp"],
}
PRECISIONS = ["float16", "bfloat16"]


def allowed(cell: dict) -> bool:
    """Leave out what MXNet itself rejects: a hybridized block (and so an exported one) cannot
    return a dict."""
    return cell["output"] != "dict" or cell["build"] == "imperative"


@dataclass(frozen=True)
class Cell:
    """One combination of levels, numbered in the sampled order."""

    number: int
    precision: str
    build: str
    front: str
    output: str
    grad_req: str
    scaler: str
    overflow: str
    contexts: int
    optimizer: str

    @property
    def id(self) -> str:
        values = [getattr(self, f.name) for f in fields(self)[1:]]
        return f"{self.number:02d}-" + "-".join(str(v) for v in values)

    @property
    def window(self) -> int:
        """Backward passes per step."""
        return 1 if self.grad_req == "write" else int(self.grad_req[-1])

    @property
    def hybridized(self) -> bool:
        return self.build in ("hybridized", "static_alloc", "imports")


SAMPLED = pairwise(FACTORS, allowed, seed=SEED)
CELLS = [
    Cell(number, precision, **levels)
    for precision in PRECISIONS
    for number, levels in enumerate(SAMPLED)
]
BY_ID = {cell.id: cell for cell in CELLS}


@dataclass(frozen=True)
class Defect:
    """A known defect: the cells it hits and the failure it gives there (a regex)."""

    name: str
    hits: Callable[[Cell], bool]
    failure: str

    def explains(self, message: str) -> bool:
        return re.search(self.failure, message) is not None


#: Defects the matrix found (or that were known) and not yet fixed: their cells are
#: xfail(strict=True), so the fix makes them pass and the marker must go.
DEFECTS: list[Defect] = []


def known_defect(cell: Cell) -> Defect | None:
    return next((d for d in DEFECTS if d.hits(cell)), None)
