"""What a report holds: one row per GEMM, the casts, the findings, the training steps recorded."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import render
from .gemm import Gemm
from .graph import Tensor
from .precision import LOW

__all__ = ["Cast", "Finding", "Report", "Row", "Step"]


@dataclass(frozen=True)
class Row:
    """One GEMM-family operator call: where, what it multiplied, in which precision and why."""

    layer: str  # the Block path, as save_parameters names it ("" for the network itself)
    op: str  # MXNet's operator (FullyConnected, Convolution, RNN, dot, ...)
    node: str  # the graph node's (or the imperative call's) name
    input: Tensor  # the data input, as the operator received it
    weight: Tensor | None
    output: Tensor
    precision: str
    why: str
    gemm: Gemm | None
    code: str | None = None  # AMP402 where it should have run in low precision
    fix: str | None = None  # what to change, with the code

    @property
    def low(self) -> bool:
        """Whether it ran in float16 or bfloat16."""
        return self.precision in LOW


@dataclass(frozen=True)
class Cast:
    """One dtype-changing cast per step: of what, for which operator, and what it moves.

    An activation cast belongs to the operator on its float32 side (the float32-listed operator
    it feeds, or whose output it casts back), so both casts around one such operator are found
    in its layer.
    """

    layer: str
    source: Tensor
    dtype: str
    of: str  # "input" (a graph input), "activation", "parameter" or "constant"
    around: str  # the operator it serves

    @property
    def nbytes(self) -> int:
        """Bytes read and written."""
        return self.source.nbytes + Tensor(self.source.shape, self.dtype).nbytes


@dataclass(frozen=True)
class Finding:
    """One finding: a code and name from amplint's catalogue, the layer path, a message."""

    code: str
    name: str
    layer: str
    message: str
    size: int | None = None  # the misaligned size (AMP201/AMP202)
    padded: int | None = None  # ... rounded up to the alignment


@dataclass(frozen=True)
class Step:
    """One training step recorded inside ``amp.recording``."""

    scale: float  # the loss scale the step used
    skipped: bool
    next_scale: float  # the scale after the step's update


@dataclass
class Report:
    """Which layers ran in which precision, and what to change; ``str()`` prints it as a table.

    ``rows`` has one entry per GEMM-family operator, ``casts`` one per dtype-changing cast per
    step (forward pass; backward casts the gradients back alike), ``findings`` the linter-coded
    findings, ``steps`` the training steps taken inside ``amp.recording`` (empty for
    ``amp.report``).
    """

    net: str  # the network's class name
    source: str  # "cached graph", "graph built for the report", "imperative calls", ...
    target_dtype: str | None
    device: str  # whether the target precision is expected to pay off here
    inputs: dict[str, Tensor]  # the shapes the report's shapes come from
    rows: list[Row]
    casts: list[Cast]
    forward_bytes: int  # bytes read and written by every operator of one forward pass
    findings: list[Finding]
    alignment: int = 8
    min_dimension: int = 8
    steps: list[Step] = field(default_factory=list)

    @property
    def gemm_flops(self) -> int:
        """FLOPs of every GEMM of one forward pass."""
        return sum(row.gemm.flops for row in self.rows if row.gemm)

    @property
    def low_precision_share(self) -> float:
        """Share of the GEMM FLOPs done in float16/bfloat16 (0 when nothing is known)."""
        total = self.gemm_flops
        low = sum(row.gemm.flops for row in self.rows if row.gemm and row.low)
        return low / total if total else 0.0

    @property
    def cast_bytes(self) -> int:
        """Bytes the casts of one forward pass read and write."""
        return sum(cast.nbytes for cast in self.casts)

    def __str__(self) -> str:
        return render.text(self)

    def summary(self) -> str:
        """The report without its table: device, GEMMs, casts, steps and findings."""
        return render.summary(self)

    def to_json(self) -> str:
        """The report as JSON (keys sorted, with a ``schema_version``)."""
        return render.to_json(self)

    def findings_text(self) -> str:
        """The findings in amplint's text form, the layer path where amplint puts a position."""
        return render.findings_text(self)
