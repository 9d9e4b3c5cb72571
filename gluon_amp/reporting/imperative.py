"""What an imperative network runs, seen from autocast's wrappers during its first call.

``autocast.observer`` is told of every operator call autocast wraps (the inputs as given and as
cast, the output); forward hooks on every Block of the network keep the path of the Block being
called. When the first call is over the observer is unset: later calls cost nothing. A
GEMM-family call becomes a row, a dtype-changing cast a cast, exactly as a graph node would. A
hybridized Block called inside the network runs its cached graph, which the wrappers do not see:
its graph is read instead, under its path.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mxnet.gluon import Block, HybridBlock
from mxnet.ndarray import NDArray

from .. import autocast
from .gemm import GEMM_OPS, measure_call
from .graph import Tensor, dtype_name
from .model import Cast, Row
from .precision import Policy, decide

__all__ = ["Observed", "observing"]

#: The array arguments of the GEMM-family operators, in order (the rest are parameters).
_ARRAYS = {
    "FullyConnected": ("data", "weight", "bias"),
    "Convolution": ("data", "weight", "bias"),
    "Deconvolution": ("data", "weight", "bias"),
    "RNN": ("data", "parameters", "state", "state_cell", "sequence_length"),
    "dot": ("lhs", "rhs"),
    "batch_dot": ("lhs", "rhs"),
}
#: Arguments that are parameters whatever computed them (an RNN's concatenated weights).
_PARAMETER_ROLES = frozenset({"weight", "bias", "parameters"})
_STATE_ROLES = frozenset({"state", "state_cell"})


def tensor(array: Any) -> Tensor:
    """The shape and dtype of an NDArray."""
    return Tensor(tuple(array.shape), dtype_name(array.dtype))


@dataclass
class Observed:
    """What one call of the network ran: rows, casts, bytes, and hybridized Blocks to read."""

    called: bool = False
    inputs: tuple = ()  # the arguments of the call
    rows: list[Row] = field(default_factory=list)
    casts: list[Cast] = field(default_factory=list)
    moved: int = 0  # bytes the observed operators (casts included) read and wrote
    # (path, block, inputs, rows and casts recorded before its call) per hybridized Block called
    hybridized: list[tuple[str, HybridBlock, tuple, int, int]] = field(default_factory=list)


class _Watcher:
    """Follows the first call of ``net``: which Block is running, and every wrapped operator."""

    def __init__(self, net: Block, rules: Policy, result: Observed) -> None:
        self.net, self.rules, self.result = net, rules, result
        self.paths: dict[int, str] = {}
        self.stack: list[Block] = []
        self.inputs: set[int] = set()
        self.params = {id(data) for p in net.collect_params().values() for data in (p._data or [])}
        self.producers: dict[int, tuple[str, str, Any]] = {}  # id -> (layer, op, array)
        self.pending: dict[int, int] = {}  # id of an output cast to float32 -> its cast's index
        self._visit(net, "")

    def _visit(self, block: Block, path: str) -> None:
        if id(block) in self.paths:
            return
        self.paths[id(block)] = path
        for key, child in block._children.items():
            self._visit(child, f"{path}.{key}" if path else key)

    @property
    def layer(self) -> str:
        return self.paths[id(self.stack[-1])] if self.stack else ""

    def enter(self, block: Block, inputs: tuple) -> None:
        if block is self.net and not self.result.called:
            if not any(isinstance(x, NDArray) for x in inputs):
                return  # a graph built from symbols, not a call
            self.result.called = True
            self.result.inputs = tuple(inputs)
            self.inputs = {id(a) for a in _flat(list(inputs))}
        elif not self.stack:
            return
        inside_graph = any(isinstance(b, HybridBlock) and b._active for b in self.stack)
        if isinstance(block, HybridBlock) and block._active and not inside_graph:
            if any(isinstance(x, NDArray) for x in inputs):
                path, seen = self.paths[id(block)], self.result
                seen.hybridized.append(
                    (path, block, tuple(inputs), len(seen.rows), len(seen.casts))
                )
        self.stack.append(block)

    def leave(self, block: Block, inputs: tuple, outputs: Any) -> None:
        if self.stack and self.stack[-1] is block:
            self.stack.pop()
            if not self.stack and autocast.observer == self.observe:
                autocast.observer = None  # the first call is over: stop listening

    def _kind(self, array: NDArray, role: str) -> str:
        if id(array) in self.params or role in _PARAMETER_ROLES:
            return "parameter"
        if id(array) in self.inputs:
            return "input"
        if id(array) in self.producers or role not in _STATE_ROLES:
            return "activation"
        return "constant"

    def observe(self, op, args, kwargs, cast_args, cast_kwargs, raw, out) -> None:
        """``autocast.observer``: record one imperative operator call."""
        if not self.stack or any(isinstance(b, HybridBlock) and b._active for b in self.stack):
            return  # inside a cached graph being built or run: read from the graph instead
        layer = self.layer
        roles = _ARRAYS.get(op, ())
        given = _arrays(args, kwargs, roles)
        used = _arrays(cast_args, cast_kwargs, roles)
        casts = self.result.casts
        for _, array in given:  # an output cast to float32 belongs to its first reader
            index = self.pending.pop(id(array), None)
            if index is not None:
                casts[index] = dataclasses.replace(casts[index], layer=layer, around=op)
        for (role, before), (_, after) in zip(given, used):
            self.result.moved += _nbytes(after)
            if before is after or before.dtype == after.dtype:
                continue
            kind = self._kind(before, role)
            cast_layer, around = layer, op
            if kind == "activation" and dtype_name(after.dtype) != "float32":
                cast_layer, around, _ = self.producers.get(id(before), (layer, op, None))
            self.result.casts.append(
                Cast(cast_layer, tensor(before), dtype_name(after.dtype), kind, around)
            )
            self.result.moved += _nbytes(before) + _nbytes(after)
        for raw_out, returned in zip(_flat(raw), _flat(out)):
            self.result.moved += _nbytes(raw_out)
            self.producers[id(returned)] = (layer, op, returned)
            if returned is not raw_out and returned.dtype != raw_out.dtype:
                self.pending[id(returned)] = len(casts)  # until a wrapped operator reads it
                casts.append(
                    Cast(layer, tensor(raw_out), dtype_name(returned.dtype), "activation", op)
                )
                self.result.moved += _nbytes(raw_out) + _nbytes(returned)
        if op in GEMM_OPS and used:
            self._row(op, kwargs, id(given[0][1]) in self.inputs, used, _flat(raw))

    def _row(self, op: str, kwargs: dict, image: bool, used: list, outputs: list) -> None:
        data = used[0][1]
        weight = used[1][1] if len(used) > 1 else None
        output = tensor(outputs[0]) if outputs else Tensor(None, None)
        attrs = {k: str(v) for k, v in kwargs.items() if not isinstance(v, NDArray)}
        shapes = [tuple(array.shape) for _, array in used]
        emulated = op in self.rules.emulated and data.context.device_type == "cpu"
        precision = decide(op, dtype_name(data.dtype), self.rules, False, emulated)
        block = self.stack[-1] if self.stack else None
        name = f"{block.prefix}{kwargs['name']}" if block is not None and "name" in kwargs else ""
        self.result.rows.append(
            Row(
                self.layer,
                op,
                name,
                tensor(data),
                tensor(weight) if weight is not None else None,
                output,
                precision.dtype,
                precision.why,
                measure_call(op, attrs, shapes, output.shape, image),
                precision.code,
                precision.fix,
            )
        )


def _flat(value: Any) -> list[NDArray]:
    if isinstance(value, NDArray):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for item in value for v in _flat(item)]
    return []


def _nbytes(array: NDArray) -> int:
    return tensor(array).nbytes


def _arrays(args: tuple, kwargs: dict, roles: tuple) -> list[tuple[str, NDArray]]:
    """``(role, array)`` for every array argument, positional ones first."""
    found = []
    for i, value in enumerate(args):
        if isinstance(value, NDArray):
            found.append((roles[i] if i < len(roles) else f"arg{i}", value))
    for key, value in kwargs.items():
        if isinstance(value, NDArray) and key != "out":
            found.append((key, value))
    return found


@contextlib.contextmanager
def observing(net: Block, rules: Policy) -> Iterator[Observed]:
    """Record what autocast's wrappers see during the first call of ``net`` inside the block."""
    if autocast.observer is not None:
        raise RuntimeError("amp.report or amp.recording is already recording a network")
    result = Observed()
    watcher = _Watcher(net, rules, result)
    handles = []
    for block in _blocks(net):
        handles.append(block.register_forward_pre_hook(watcher.enter))
        handles.append(block.register_forward_hook(watcher.leave))
    autocast.observer = watcher.observe
    try:
        yield result
    finally:
        if autocast.observer == watcher.observe:
            autocast.observer = None
        for handle in handles:
            handle.detach()


def _blocks(net: Block) -> list[Block]:
    seen: dict[int, Block] = {}

    def visit(block: Block) -> None:
        if id(block) not in seen:
            seen[id(block)] = block
            for child in block._children.values():
                visit(child)

    visit(net)
    return list(seen.values())
