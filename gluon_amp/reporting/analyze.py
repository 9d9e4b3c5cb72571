"""From a read graph to a report's rows, casts and findings."""

from __future__ import annotations

from collections.abc import Sequence

from . import findings as found
from .emulation import Emulated
from .gemm import GEMM_OPS, measure
from .graph import Graph, Node, Tensor
from .model import Cast, Finding, Row
from .precision import Policy, decide, has_casts

__all__ = ["casts_of", "findings_for", "forward_bytes", "predates_init", "rows_of"]

_CASTS = ("amp_cast", "amp_multicast")


def predates_init(graph: Graph, rules: Policy) -> bool:
    """Whether a cached graph was built before ``amp.init()``: AMP is on, the graph has no cast
    and holds operators autocast would have cast."""
    if rules.target is None or has_casts(graph):
        return False
    return any(node.op in rules.target_ops for node in graph.nodes)


def rows_of(graph: Graph, rules: Policy, predates: bool, emulated: Emulated) -> list[Row]:
    """One row per GEMM-family node (an emulated one as a GPU would run it)."""
    rows = []
    for node in graph.nodes:
        if node.op not in GEMM_OPS:
            continue
        inputs, outputs = emulated.inputs(graph, node), emulated.outputs(node)
        emulating = node.index in emulated.nodes
        precision = decide(node.op, inputs[0].dtype, rules, predates, emulating)
        rows.append(
            Row(
                node.layer,
                node.op,
                node.name,
                inputs[0],
                inputs[1] if len(inputs) > 1 else None,
                outputs[0] if outputs else Tensor(None, None),
                precision.dtype,
                precision.why,
                measure(graph, node),
                precision.code,
                precision.fix,
            )
        )
    return rows


def _kind(graph: Graph, node: Node, slot: int) -> str:
    """What a cast casts: a data "input", an "activation" computed from one, a "parameter"
    (also reshaped or concatenated, as RNN layers do) or a "constant" (begin states)."""
    source = graph.producer(node, slot).index
    if source in graph.from_data:
        return "input" if graph.is_data(graph.origin(node, slot)) else "activation"
    return "parameter" if source in graph.from_params else "constant"


def _readers(graph: Graph, node: Node) -> list[Node]:
    """The operators reading ``node``'s value, looking through further casts."""
    found, queue = [], list(graph.consumers(node))
    while queue:
        reader = queue.pop(0)
        if reader.op in _CASTS:
            queue.extend(graph.consumers(reader))
        elif reader not in found:
            found.append(reader)
    return found


def _served(graph: Graph, node: Node, slot: int, kind: str, dtype: str, rules: Policy) -> Node:
    """The operator an activation cast belongs to: the one on its float32 side where autocast
    wraps it (the ones an imperative call's wrappers see too), else the other one."""
    wrapped = rules.wrapped(graph.numpy)
    reader = next(iter(_readers(graph, node)), node)
    producer = graph.origin(node, slot)
    float32_side, other = (reader, producer) if dtype == "float32" else (producer, reader)
    if float32_side.op in wrapped or other.op not in wrapped:
        return float32_side if float32_side is not node else other
    return other


def casts_of(graph: Graph, rules: Policy, emulated: Emulated) -> list[Cast]:
    """Every cast that changes a dtype (but the float16 emulation's own)."""
    casts = []
    for node in graph.nodes:
        if node.op not in _CASTS or node.index in emulated.casts:
            continue
        for slot, output in enumerate(node.outputs[: len(node.inputs)]):
            source = graph.input(node, slot)
            if None in (source.dtype, output.dtype) or source.dtype == output.dtype:
                continue
            kind = _kind(graph, node, slot)
            if kind == "activation":
                served = _served(graph, node, slot, kind, output.dtype, rules)
                layer = served.layer
            else:
                served, layer = next(iter(_readers(graph, node)), node), node.layer
            casts.append(Cast(layer, source, output.dtype, kind, served.op))
    return casts


def forward_bytes(graph: Graph, emulated: Emulated) -> int:
    """Bytes every operator of one forward pass reads and writes (emulated ones as on a GPU)."""
    total = 0
    for node in graph.nodes:
        if node.op != "null" and node.index not in emulated.casts:
            total += sum(t.nbytes for t in emulated.inputs(graph, node))
            total += sum(t.nbytes for t in emulated.outputs(node))
    return total


def findings_for(
    rows: Sequence[Row],
    casts: Sequence[Cast],
    moved: int,
    rules: Policy,
    alignment: int,
    smallest: int,
    inputs: str,
    cached: Sequence[Finding] = (),
) -> list[Finding]:
    """Every finding, by code: AMP201, AMP202 (GEMMs that run, or should run, in low precision),
    AMP401 (``cached``), AMP402, AMP403."""
    if rules.target is None:
        return []
    target = rules.target
    applicable = [row for row in rows if row.low or row.op in rules.kernels]
    every = [
        *found.dim_findings(applicable, target, alignment, smallest),
        *found.batch_findings(applicable, target, alignment, smallest, inputs),
        *cached,
        *found.gemm_findings(rows, target),
        *found.cast_findings(casts, moved),
    ]
    return sorted(every, key=lambda finding: finding.code)
