"""``amp.report(net, *example_inputs)``: which layers run in which precision, found without
changing anything.

A hybridized block's graph is read from ``_cached_graph`` when it has run (what really runs), or
built from symbols exactly as its first call will build it, through the same autocast wrappers,
without touching its cache; an imported ``SymbolBlock``'s graph is its cached graph. Shapes and
dtypes are inferred for the example inputs: nothing runs. An imperative network is called once
in prediction mode (no BatchNorm update, no dropout) while autocast's wrappers report every
operator; a hybridized Block inside it is read from its graph.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import mxnet as mx
import numpy as np
from mxnet import autograd, symbol
from mxnet.gluon import Block, HybridBlock, SymbolBlock
from mxnet.gluon.block import _check_same_symbol_type, _flatten, _regroup
from mxnet.ndarray import NDArray

from .. import device
from .analyze import casts_of, findings_for, forward_bytes, predates_init, rows_of
from .emulation import emulated_in
from .findings import graph_cached_finding
from .graph import Tensor, dtype_name, read
from .imperative import Observed, observing
from .model import Cast, Finding, Report, Row
from .precision import Policy, policy

__all__ = [
    "Part",
    "assemble",
    "class_name",
    "from_graph",
    "observed_part",
    "reads_a_graph",
    "report",
]


@dataclass
class Part:
    """What one graph, or one imperative call, contributes to a report."""

    source: str
    rows: list[Row] = field(default_factory=list)
    casts: list[Cast] = field(default_factory=list)
    moved: int = 0
    cached: list[Finding] = field(default_factory=list)  # AMP401


def _check(net: Any, inputs: tuple, alignment: int, min_dimension: int) -> None:
    if not isinstance(net, Block):
        raise TypeError(f"amp.report needs a Gluon Block, got {type(net).__name__}")
    arrays, _ = _flatten(list(inputs), "input")
    if not inputs or not any(isinstance(a, NDArray) for a in arrays):
        raise TypeError(
            "amp.report needs the network's example inputs, as it is called: "
            "amp.report(net, x) (shapes are read from them)"
        )
    if alignment < 1 or min_dimension < 0:
        raise ValueError(
            f"alignment must be positive and min_dimension not negative, got alignment="
            f"{alignment}, min_dimension={min_dimension}"
        )


def _names(count: int) -> list[str]:
    """Gluon's names for a graph's data inputs (``HybridBlock._get_graph``)."""
    return ["data"] if count == 1 else [f"data{i}" for i in range(count)]


def _symbols_for(net: HybridBlock, inputs: tuple) -> tuple[list, symbol.Symbol]:
    """The graph ``net``'s first call on ``inputs`` builds, built by calling it on symbols,
    which leaves its cache alone."""
    arrays, layout = _flatten(list(inputs), "input")
    names = iter(_names(sum(a is not None for a in arrays)))
    symbols, flat = [], []
    for array in arrays:
        if array is None:
            flat.append(None)
            continue
        var = symbol.var(next(names))
        if isinstance(array, mx.np.ndarray):
            var = var.as_np_ndarray()
        symbols.append(var)
        flat.append(var)
    outputs, _ = _flatten(net(*_regroup(flat, layout)), "output")
    return symbols, symbol.Group(outputs, _check_same_symbol_type(outputs))


def reads_a_graph(net: Block) -> bool:
    return isinstance(net, SymbolBlock) or (isinstance(net, HybridBlock) and net._active)


def from_graph(block: HybridBlock, inputs: tuple, rules: Policy, root: str = "") -> Part:
    """Rows, casts and bytes of ``block``'s graph for ``inputs`` (its layers under ``root``)."""
    arrays = [a for a in _flatten(list(inputs), "input")[0] if a is not None]
    cached = bool(block._cached_graph)
    symbols, out = block._cached_graph if cached else _symbols_for(block, inputs)
    shapes = {s.name: a.shape for s, a in zip(symbols, arrays)}
    dtypes = {s.name: a.dtype for s, a in zip(symbols, arrays)}
    graph = read(out, shapes, dtypes, block, root)
    predates = cached and predates_init(graph, rules)
    emulated = emulated_in(graph, rules.emulated)
    rows = rows_of(graph, rules, predates, emulated)
    imported = isinstance(block, SymbolBlock)
    if imported:
        source = "imported graph"
    else:
        source = "cached graph" if cached else "graph its first call builds"
    stale = [graph_cached_finding(root, rows, imported)] if predates else []
    return Part(
        source, rows, casts_of(graph, rules, emulated), forward_bytes(graph, emulated), stale
    )


@contextlib.contextmanager
def _random_state_kept() -> Iterator[None]:
    """Python's and numpy's random state as they were (MXNet's is not drawn in prediction)."""
    python, numpy = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy)


def _from_calls(net: Block, inputs: tuple, rules: Policy) -> Part:
    """Call ``net`` once in prediction mode and record what autocast's wrappers see."""
    pending = [name for name, p in net.collect_params().items() if p._deferred_init]
    if pending:
        raise ValueError(
            f"amp.report calls an imperative network once, and {pending[0]} is not initialized "
            f"yet (its deferred initialization would draw from the random generator): call the "
            f"network once first, or give its layers their input sizes"
        )
    uncached = [b for b in _hybridized(net) if b._cached_op is None]
    with _random_state_kept(), autograd.pause(train_mode=False):
        with observing(net, rules) as seen:
            net(*inputs)
    part = observed_part(net, seen, rules)
    for block in uncached:
        block._clear_cached_op()  # a graph the report's call built: gone again
    return part


def _hybridized(net: Block) -> list[HybridBlock]:
    """Hybridized Blocks under ``net``."""
    found = [net] if isinstance(net, HybridBlock) and net._active else []
    for child in net._children.values():
        found += _hybridized(child)
    return found


def observed_part(net: Block, seen: Observed, rules: Policy) -> Part:
    """A report's part from one observed call (hybridized Blocks inside read from their graph)."""
    part = Part("imperative calls", list(seen.rows), list(seen.casts), seen.moved)
    for path, block, block_inputs, rows, casts in reversed(seen.hybridized):
        inner = from_graph(block, block_inputs, rules, path)
        part.rows[rows:rows] = inner.rows  # where it was called
        part.casts[casts:casts] = inner.casts
        part.moved += inner.moved
        part.cached += inner.cached
        part.source += f", the {inner.source} of {path}"
    if isinstance(net, HybridBlock) and not seen.hybridized:
        with contextlib.suppress(Exception):  # bytes of the whole pass, as a graph counts them
            part.moved = from_graph(net, seen.inputs, rules).moved
    return part


def class_name(net: Block) -> str:
    """The network's class, or its first public base (gluon_amp's private SymbolBlock)."""
    return next(c.__name__ for c in type(net).__mro__ if not c.__name__.startswith("_"))


def _device_line(rules: Policy, arrays: list[NDArray]) -> str:
    if rules.target is None:
        return "AMP is off (amp.init() not called): everything runs in float32"
    return device.outlook(rules.target, arrays[0].context, bool(rules.emulated)).line


def assemble(
    net: Block, part: Part, inputs: tuple, rules: Policy, alignment: int, min_dimension: int
) -> Report:
    """The report of ``net`` called on ``inputs``, from what its graph or its call showed."""
    arrays = [a for a in _flatten(list(inputs), "input")[0] if a is not None]
    described = {
        name: Tensor(tuple(a.shape), dtype_name(a.dtype))
        for name, a in zip(_names(len(arrays)), arrays)
    }
    inputs_text = ", ".join(f"{name} {tensor.shape}" for name, tensor in described.items())
    findings = findings_for(
        part.rows,
        part.casts,
        part.moved,
        rules,
        alignment,
        min_dimension,
        inputs_text,
        part.cached,
    )
    return Report(
        class_name(net),
        part.source,
        rules.target,
        _device_line(rules, arrays),
        described,
        part.rows,
        part.casts,
        part.moved,
        findings,
        alignment,
        min_dimension,
    )


def report(net: Block, *inputs: Any, alignment: int = 8, min_dimension: int = 8) -> Report:
    """Which precision each GEMM of ``net`` runs in on ``inputs``, and what to change.

    ``net`` is called as ``net(*inputs)``. ``alignment`` is the multiple GEMM dimensions should
    have; dimensions below ``min_dimension`` are not reported (padding would double them).
    Leaves parameters, gradients, BatchNorm statistics, the RNG and the cached graph as they were.
    """
    _check(net, inputs, alignment, min_dimension)
    rules = policy()
    if reads_a_graph(net):
        part = from_graph(net, inputs, rules)
    else:
        part = _from_calls(net, inputs, rules)
    return assemble(net, part, inputs, rules, alignment, min_dimension)
