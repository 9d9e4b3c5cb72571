"""A graph as the report reads it: every node with its inputs' and outputs' shapes and dtypes.

Hybridized and imported blocks keep their graph in ``_cached_graph``; ``get_internals()`` with
``infer_shape_partial``/``infer_type_partial`` gives every node's outputs, casts included, without
running anything. ``tojson(remove_amp_cast=False)`` gives the nodes, their operators, attributes
and inputs in the same (topological) order. Node names carry Gluon's prefixes
(``resnetv10_stage1_conv0_fwd``): the longest Block prefix that starts a node's name names its
layer, as the Block path Gluon's ``save_parameters`` uses (``features.5.0.body.0``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import mxnet as mx
import numpy as np
from mxnet.base import MXNetError
from mxnet.contrib.amp.amp import bfloat16
from mxnet.gluon import Block, SymbolBlock
from mxnet.symbol import Symbol

__all__ = ["Graph", "Node", "Tensor", "dtype_name", "layer_paths", "read"]


def dtype_name(dtype: Any) -> str | None:
    """``'float32'``, ``'bfloat16'``, ... for a numpy/MXNet dtype (None when unknown)."""
    if dtype is None:
        return None
    if dtype is bfloat16 or np.dtype(dtype) == bfloat16:
        return "bfloat16"
    return np.dtype(dtype).name


@dataclass(frozen=True)
class Tensor:
    """One array flowing through the graph (shape or dtype None where inference could not tell)."""

    shape: tuple[int, ...] | None
    dtype: str | None

    @property
    def size(self) -> int | None:
        """Number of elements."""
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape is not None else None

    @property
    def nbytes(self) -> int:
        """Bytes it occupies (0 where unknown)."""
        if self.size is None or self.dtype is None:
            return 0
        return self.size * (2 if self.dtype == "bfloat16" else np.dtype(self.dtype).itemsize)


@dataclass
class Node:
    """One node: an operator or a variable (``op == 'null'``: an input or a parameter)."""

    index: int
    op: str
    name: str
    attrs: dict[str, str]
    inputs: list[tuple[int, int]]  # (producing node's index, its output index)
    outputs: list[Tensor] = field(default_factory=list)
    layer: str = ""


class Graph:
    """The nodes of one graph, in topological order, with their tensors."""

    def __init__(self, nodes: list[Node], data_names: Sequence[str], numpy: bool = False) -> None:
        self.nodes = nodes
        self.data_names = frozenset(data_names)
        self.numpy = numpy  # built by the numpy front end (npx functions)
        self._consumers: dict[int, list[Node]] = {}
        self.from_data: set[int] = set()  # nodes computed from a data input
        self.from_params: set[int] = set()  # nodes computed from a parameter
        for node in nodes:
            sources = [source for source, _ in node.inputs]
            for source in sources:
                self._consumers.setdefault(source, []).append(node)
            if self.is_data(node) or any(s in self.from_data for s in sources):
                self.from_data.add(node.index)
            if (node.op == "null" and not self.is_data(node)) or any(
                s in self.from_params for s in sources
            ):
                self.from_params.add(node.index)

    def producer(self, node: Node, slot: int) -> Node:
        """The node whose output feeds input ``slot`` of ``node``."""
        return self.nodes[node.inputs[slot][0]]

    def input(self, node: Node, slot: int) -> Tensor:
        """The tensor feeding input ``slot`` of ``node``."""
        source, index = node.inputs[slot]
        outputs = self.nodes[source].outputs
        return outputs[index] if index < len(outputs) else Tensor(None, None)

    def inputs(self, node: Node) -> list[Tensor]:
        """Every input tensor of ``node``."""
        return [self.input(node, slot) for slot in range(len(node.inputs))]

    def consumers(self, node: Node) -> list[Node]:
        """The nodes reading an output of ``node``."""
        return self._consumers.get(node.index, [])

    def is_data(self, node: Node) -> bool:
        """Whether ``node`` is one of the graph's data inputs (not a parameter)."""
        return node.op == "null" and node.name in self.data_names

    def origin(self, node: Node, slot: int) -> Node:
        """The node feeding input ``slot`` of ``node``, looking through casts and ``identity``."""
        source = self.producer(node, slot)
        while source.op in ("amp_cast", "amp_multicast", "identity", "_copy") and source.inputs:
            index = node.inputs[slot][1] if source.op == "amp_multicast" else 0
            node, slot = source, index
            source = self.producer(node, slot)
        return source


def layer_paths(net: Block, root: str = "") -> list[tuple[str, str]]:
    """``(prefix, path)`` of ``net`` and every Block below it, longest prefix first.

    The path is the one ``save_parameters`` writes (children by attribute name or position,
    joined by dots; ``root`` for ``net``, ``""`` for the outermost network). Blocks sharing a
    prefix (model-zoo blocks built with ``prefix=''``) are named by the shallowest of them.
    """
    found: dict[str, str] = {}

    def visit(block: Block, path: str) -> None:
        found.setdefault(block.prefix, path)
        for key, child in block._children.items():
            visit(child, f"{path}.{key}" if path else key)

    visit(net, root)
    return sorted(found.items(), key=lambda item: -len(item[0]))


def _layer_of(name: str, paths: list[tuple[str, str]], imported: bool) -> str:
    for prefix, path in paths:
        if name.startswith(prefix):
            if imported:  # a SymbolBlock has no child Blocks: its nodes' names are the layers
                rest = name[len(prefix) :].rsplit("_", 1)[0] or name
                return f"{path}.{rest}" if path else rest
            return path
    return ""


def _group_outputs(nodes: list[dict], names: list[str]) -> list[list[int]]:
    """Which entries of ``get_internals().list_outputs()`` belong to each node (same order)."""
    groups: list[list[int]] = []
    position = 0
    for i, node in enumerate(nodes):
        own = node["name"]
        following = nodes[i + 1]["name"] if i + 1 < len(nodes) else None
        group = []
        if node["op"] == "null":
            if position < len(names) and names[position] == own:
                group.append(position)
                position += 1
        else:
            while position < len(names):
                name = names[position]
                is_next = following is not None and (
                    name == following or name.startswith(following + "_")
                )
                if not name.startswith(own + "_") or (is_next and len(following) > len(own)):
                    break
                group.append(position)
                position += 1
        groups.append(group)
    if position != len(names):
        raise ValueError(f"cannot match graph outputs to nodes at {names[position]!r}")
    return groups


def _known(shape: Any) -> tuple[int, ...] | None:
    """A fully inferred shape (unknown sizes are 0 in legacy, -1 in numpy shape semantics)."""
    if shape is None or any(size <= 0 for size in shape):
        return None
    return tuple(int(size) for size in shape)


def read(
    out: Symbol,
    shapes: dict[str, tuple[int, ...]],
    dtypes: dict[str, Any],
    net: Block | None = None,
    root: str = "",
) -> Graph:
    """Read the graph ending in ``out`` for data inputs of these shapes and dtypes.

    Nothing runs: shapes and dtypes are inferred. ``net`` (the Block owning the graph) names
    the layers, ``root`` being its own path.
    """
    internals = out.get_internals()
    names = internals.list_outputs()
    try:
        _, out_shapes, _ = internals.infer_shape_partial(**shapes)
        _, out_types, _ = internals.infer_type_partial(**dtypes)
    except MXNetError as error:
        problem = str(error).splitlines()[0].replace("MXNetError: ", "")
        raise ValueError(
            f"the example inputs do not fit the network ({problem}): pass inputs shaped as the "
            f"network is called"
        ) from None
    raw = json.loads(out.tojson(remove_amp_cast=False))["nodes"]
    paths = layer_paths(net, root) if net is not None else []
    imported = isinstance(net, SymbolBlock)
    nodes = []
    for index, (node, group) in enumerate(zip(raw, _group_outputs(raw, names))):
        tensors = [Tensor(_known(out_shapes[i]), dtype_name(out_types[i])) for i in group]
        nodes.append(
            Node(
                index,
                node["op"],
                node["name"],
                dict(node.get("attrs", {})),
                [(source, output) for source, output, *_ in node["inputs"]],
                tensors,
                _layer_of(node["name"], paths, imported),
            )
        )
    return Graph(nodes, shapes.keys(), isinstance(out, mx.sym.np._Symbol))
