"""``amp.report(net, *example_inputs)``: which layers run in which precision, read without
changing anything.

A hybridized block's graph is read from ``_cached_graph`` when it has run (what really runs), or
built from symbols exactly as its first call will build it, through the same autocast wrappers,
without touching its cache; an imported ``SymbolBlock``'s graph is its cached graph. Shapes and
dtypes are inferred for the example inputs: nothing runs.
"""

from __future__ import annotations

from typing import Any

import mxnet as mx
from mxnet import symbol
from mxnet.gluon import Block, HybridBlock, SymbolBlock
from mxnet.gluon.block import _check_same_symbol_type, _flatten, _regroup
from mxnet.ndarray import NDArray

from .. import device
from .analyze import casts_of, findings_for, forward_bytes, predates_init, rows_of
from .findings import graph_cached_finding
from .graph import Tensor, dtype_name, read
from .model import Report
from .precision import Policy, policy

__all__ = ["report"]


def _check(net: Any, inputs: tuple, alignment: int, min_dimension: int) -> list[NDArray]:
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
    return [a for a in arrays if a is not None]


def _symbols_for(net: HybridBlock, inputs: tuple) -> tuple[list, symbol.Symbol]:
    """The graph ``net``'s first call on ``inputs`` builds (Gluon's own ``_get_graph`` naming),
    built by calling it on symbols, which leaves its cache alone."""
    arrays, layout = _flatten(list(inputs), "input")
    count = sum(a is not None for a in arrays)
    symbols, flat = [], []
    for array in arrays:
        if array is None:
            flat.append(None)
            continue
        var = symbol.var("data" if count == 1 else f"data{len(symbols)}")
        if isinstance(array, mx.np.ndarray):
            var = var.as_np_ndarray()
        symbols.append(var)
        flat.append(var)
    outputs, _ = _flatten(net(*_regroup(flat, layout)), "output")
    return symbols, symbol.Group(outputs, _check_same_symbol_type(outputs))


def class_name(net: Block) -> str:
    """The network's class, or its first public base (gluon_amp's private SymbolBlock)."""
    return next(c.__name__ for c in type(net).__mro__ if not c.__name__.startswith("_"))


def _device_line(rules: Policy, arrays: list[NDArray]) -> str:
    if rules.target is None:
        return "AMP is off (amp.init() not called): everything runs in float32"
    return device.outlook(rules.target, arrays[0].context).line


def report(net: Block, *inputs: Any, alignment: int = 8, min_dimension: int = 8) -> Report:
    """Which precision each GEMM of ``net`` runs in on ``inputs``, and what to change.

    ``net`` is called as ``net(*inputs)``. ``alignment`` is the multiple GEMM dimensions should
    have; dimensions below ``min_dimension`` are not reported (padding would double them).
    Leaves parameters, gradients, BatchNorm statistics, the RNG and the cached graph as they were.
    """
    arrays = _check(net, inputs, alignment, min_dimension)
    rules = policy()
    if not (isinstance(net, HybridBlock) and (net._active or isinstance(net, SymbolBlock))):
        raise TypeError(
            f"amp.report reads hybridized graphs: call net.hybridize() before reporting on "
            f"{type(net).__name__}"
        )
    cached = bool(net._cached_graph)
    symbols, out = net._cached_graph if cached else _symbols_for(net, inputs)
    shapes = {s.name: a.shape for s, a in zip(symbols, arrays)}
    dtypes = {s.name: a.dtype for s, a in zip(symbols, arrays)}
    graph = read(out, shapes, dtypes, net)
    predates = cached and predates_init(graph, rules)
    rows = rows_of(graph, rules, predates)
    casts = casts_of(graph)
    moved = forward_bytes(graph)
    described = {
        name: Tensor(tuple(shape), dtype_name(dtypes[name])) for name, shape in shapes.items()
    }
    inputs_text = ", ".join(f"{name} {tensor.shape}" for name, tensor in described.items())
    imported = isinstance(net, SymbolBlock)
    findings = findings_for(
        rows,
        casts,
        moved,
        rules,
        alignment,
        min_dimension,
        inputs_text,
        [graph_cached_finding("", rows, imported)] if predates else [],
    )
    source = (
        "imported graph"
        if imported
        else "cached graph"
        if cached
        else "graph its first call builds"
    )
    return Report(
        class_name(net),
        source,
        rules.target,
        _device_line(rules, arrays),
        described,
        rows,
        casts,
        moved,
        findings,
        alignment,
        min_dimension,
    )
