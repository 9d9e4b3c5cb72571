"""Findings with amplint's codes and names (read from its catalogue), the layer path, a message.

AMP201/AMP202 follow amplint's semantics: a dimension below ``min_dimension`` (default 8: padding
would at least double it) is not reported; the batch is reported only where it is the row count
(M) of the costly GEMMs — an MLP or RNN, not a CNN, whose convolutions see batch × height × width.
AMP401-AMP403 exist only at run time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from amplint.codes import CATALOG

from .gemm import Dim
from .graph import Tensor
from .model import Cast, Finding, Row
from .render import human_bytes

__all__ = [
    "batch_findings",
    "cast_findings",
    "dim_findings",
    "finding",
    "gemm_findings",
    "graph_cached_finding",
]

#: AMP202: the misaligned rows must carry at least this share of the GEMM FLOPs.
COSTLY_SHARE = 0.5
#: AMP403: a layer's activation casts must move at least this share of a forward pass's bytes.
CAST_SHARE = 0.05


def finding(code: str, layer: str, message: str, **data: int) -> Finding:
    """A finding named as the catalogue names ``code``."""
    return Finding(code, CATALOG[code].name, layer, message, **data)


def _padded(size: int, alignment: int) -> int:
    return -(-size // alignment) * alignment


def _shape(tensor: Tensor | None) -> str:
    return str(tensor.shape) if tensor is not None and tensor.shape is not None else "?"


def _rule(dtype: str) -> str:
    return f"a GPU Tensor Core rule for {dtype} GEMMs"


def dim_findings(rows: Iterable[Row], target: str, alignment: int, smallest: int) -> list[Finding]:
    """AMP201 for every GEMM dimension (N, K, channels) not a multiple of ``alignment``."""
    found: dict[tuple[str, str, int], Finding] = {}
    for row in rows:
        if row.gemm is None:
            continue
        for dim in row.gemm.dims:
            key = (row.layer, dim.name, dim.size)
            if key in found or dim.size < smallest or dim.size % alignment == 0:
                continue
            found[key] = _dim_finding(row, dim, target, alignment)
    return list(found.values())


def _dim_finding(row: Row, dim: Dim, target: str, alignment: int) -> Finding:
    padded = _padded(dim.size, alignment)
    weight = f"weight {_shape(row.weight)}, " if row.weight is not None else ""
    message = (
        f"{row.gemm.kind} {dim.name}={dim.size} is not a multiple of {alignment} "
        f"({_rule(target)}); round it up to {padded} "
        f"[{weight}input {_shape(row.input)}]"
    )
    return finding("AMP201", row.layer, message, size=dim.size, padded=padded)


def batch_findings(
    rows: Sequence[Row], target: str, alignment: int, smallest: int, inputs: str
) -> list[Finding]:
    """AMP202 for a row count (batch, or batch × tokens) that is not a multiple of ``alignment``
    in GEMMs doing at least half of the GEMM FLOPs."""
    total = sum(row.gemm.flops for row in rows if row.gemm)
    by_rows: dict[int, list[Row]] = {}
    for row in rows:
        m = row.gemm.rows if row.gemm else None
        if m is not None and m >= smallest and m % alignment:
            by_rows.setdefault(m, []).append(row)
    findings = []
    for m, misaligned in sorted(by_rows.items()):
        flops = sum(row.gemm.flops for row in misaligned)
        if not total or flops / total < COSTLY_SHARE:
            continue
        padded = _padded(m, alignment)
        lower = f"{padded - alignment} or " if padded > alignment else ""
        message = (
            f"GEMM rows M={m} (the batch, or batch × tokens, of inputs {inputs}) are not a "
            f"multiple of {alignment} in {len(misaligned)} GEMM{'s' if len(misaligned) > 1 else ''}"
            f" doing {flops / total:.0%} of the GEMM FLOPs ({_rule(target)}); make "
            f"them {lower}{padded}"
        )
        findings.append(finding("AMP202", "", message, size=m, padded=padded))
    return findings


def gemm_findings(rows: Iterable[Row], target: str) -> list[Finding]:
    """AMP402 for each GEMM left in float32 where a low-precision kernel exists."""
    found: dict[tuple[str, str], Finding] = {}
    for row in rows:
        if row.code != "AMP402" or (row.layer, row.op) in found:
            continue
        message = (
            f"{row.op} ran in {row.precision} ({row.why}) where a {target} kernel exists "
            f"[input {_shape(row.input)}]; {row.fix}"
        )
        found[(row.layer, row.op)] = finding("AMP402", row.layer, message)
    return list(found.values())


def graph_cached_finding(layer: str, rows: Sequence[Row], imported: bool) -> Finding:
    """AMP401 for a graph cached (or imported) before ``amp.init()``."""
    count = sum(1 for row in rows if row.gemm is not None)
    if imported:
        fix = "load it again with SymbolBlock.imports after amp.init()"
        what = "imported before amp.init()"
    else:
        fix = "call net.hybridize() again after amp.init() so the next call rebuilds it"
        what = "graph cached before amp.init()"
    message = f"{what}: its {count} GEMMs still run in float32; {fix}"
    return finding("AMP401", layer, message)


def cast_findings(casts: Iterable[Cast], forward_bytes: int) -> list[Finding]:
    """AMP403 for each layer whose activation casts move a sizeable share of the bytes."""
    by_layer: dict[str, list[Cast]] = {}
    for cast in casts:
        if cast.of == "activation":
            by_layer.setdefault(cast.layer, []).append(cast)
    findings = []
    for layer, layer_casts in by_layer.items():
        moved = sum(cast.nbytes for cast in layer_casts)
        if not forward_bytes or moved / forward_bytes < CAST_SHARE:
            continue
        pairs = sorted({f"{c.source.dtype}->{c.dtype}" for c in layer_casts})
        around = sorted({c.around for c in layer_casts})
        count = len(layer_casts)
        message = (
            f"{count} activation cast{'s' if count > 1 else ''} per step ({', '.join(pairs)}) "
            f"around {', '.join(around)} move{'' if count > 1 else 's'} {human_bytes(moved)}, "
            f"{moved / forward_bytes:.0%} of the forward pass's bytes; keep float32-listed "
            f"operators out of the middle of low-precision chains"
        )
        findings.append(finding("AMP403", layer, message))
    return findings
