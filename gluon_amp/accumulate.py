"""Gradient accumulation (``grad_req='add'``) through casts.

On CPU, MXNet 1.9's oneDNN kernels for ``amp_cast`` (when neither side is float16) and
``amp_multicast`` ignore ``kAddTo``: their backward writes a scratch buffer that is never added
to the gradient. An array with ``grad_req='add'`` whose only consumer is such a cast gets no
gradient at all: bfloat16 casts (their backward is a bfloat16-to-float32 cast), float32-to-float32
casts (the inputs of float32-list operators in a graph) and every ``amp_multicast`` (widest-type
operators in a graph). Casts to and from float16 run MXNet's plain kernel, which accumulates.
``identity`` accumulates correctly, so an accumulating array is routed through ``identity`` before
such a cast: the cast's backward writes a fresh buffer and ``identity``'s backward adds it.

Routing happens in two places, whoever made the cast:

- imperatively, at the cast (:meth:`Tracker.guard`, called by autocast's wrappers);
- in a graph, when Gluon creates its ``CachedOp`` (hybridized blocks, imported and directly built
  ``SymbolBlock`` objects, Gluon's or MXNet's own casts alike): the graph is rewritten for the
  parameters of the block that owns it and for the input arrays of that call, and rebuilt at a
  later call for which these differ.

An array accumulates when it belongs to a ``Parameter`` with ``grad_req='add'``, or when it is a
leaf with a gradient buffer and no ``Parameter`` known to own it (``attach_grad``, a free
``Parameter`` initialized before ``amp.init``): MXNet cannot tell its ``grad_req``, so it is routed,
which costs a copy if it was ``'write'``. Parameters are learnt of as they get gradient buffers
and as the outermost Block call reaches them; a generation counter that moves with every change
of a ``grad_req`` or a gradient buffer keeps each Block's answer cached until then.
"""

from __future__ import annotations

import json
import threading
import weakref
from typing import Any, Callable

import numpy as np
from mxnet import ndarray, symbol
from mxnet import numpy as mx_np
from mxnet.gluon import Block, HybridBlock, Parameter
from mxnet.gluon.block import _flatten
from mxnet.symbol import Symbol

__all__ = ["Tracker", "route"]

# Captured before autocast wraps anything ('identity' is in MXNet's float32 lists).
_nd_identity = ndarray.identity
_CachedOp = ndarray.CachedOp
_building = threading.local()  # .graph: (tracker, block, key) while a block builds its CachedOp


def _drops(source: Any, target: Any) -> bool:
    """Whether a CPU ``amp_cast`` from ``source`` to ``target`` dtype drops accumulation."""
    return np.float16 not in (np.dtype(source), np.dtype(target))


def route(graph: Symbol, names: frozenset) -> Symbol:
    """``graph`` with the variables in ``names`` fed to accumulation-dropping casts via identity."""
    if not names:
        return graph
    spec = json.loads(graph.tojson(remove_amp_cast=False))
    nodes, new_nodes, new_id, routed = spec["nodes"], [], {}, {}
    for old, node in enumerate(nodes):
        inputs = [[new_id[i], index, version] for i, index, version in node["inputs"]]
        dropping = node["op"] == "amp_multicast" or (
            node["op"] == "amp_cast" and node["attrs"]["dtype"] != "float16"
        )
        for entry, (i, _, _) in zip(inputs, node["inputs"]):
            source = nodes[i]
            if dropping and source["op"] == "null" and source["name"] in names:
                if i not in routed:
                    name = f"{source['name']}_amp_accumulate"
                    new_nodes.append({"op": "_copy", "name": name, "inputs": [[new_id[i], 0, 0]]})
                    routed[i] = len(new_nodes) - 1
                entry[:] = [routed[i], 0, 0]
        new_nodes.append({**node, "inputs": inputs})
        new_id[old] = len(new_nodes) - 1
    if not routed:
        return graph
    spec["nodes"] = new_nodes
    spec["arg_nodes"] = [i for i, node in enumerate(new_nodes) if node["op"] == "null"]
    spec["heads"] = [[new_id[i], index, version] for i, index, version in spec["heads"]]
    spec.pop("node_row_ptr", None)
    rewritten = symbol.load_json(json.dumps(spec))
    if rewritten.list_inputs() != graph.list_inputs():  # Gluon binds inputs by this order
        raise RuntimeError(f"gluon_amp: routing changed the inputs of graph {graph.name}")
    return rewritten.as_np_ndarray() if isinstance(graph, symbol.numpy._Symbol) else rewritten


class _RoutingCachedOp(_CachedOp):
    """Gluon's ``CachedOp``, created on a graph routed for the block being built (if any)."""

    __slots__ = ()

    def __init__(self, sym: Symbol, *args: Any, **kwargs: Any) -> None:
        pending = getattr(_building, "graph", None)
        if pending is not None:
            tracker, block, key = pending
            sym = route(sym, tracker.graph_names(block, key))
        super().__init__(sym, *args, **kwargs)


class Tracker:
    """Which arrays accumulate, as seen by one ``init``; ``install`` patches Gluon to route them."""

    def __init__(self) -> None:
        self.generation = 0
        self._owners: dict[int, weakref.ref] = {}  # id of a parameter's array -> the parameter
        self._names: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._graphs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def install(self, patch: Callable[[Any, str, Any], None]) -> None:
        """Patch Gluon with ``patch(owner, name, value)``: learn of changes, route graphs."""
        tracker = self
        original_init_grad = Parameter.__dict__["_init_grad"]
        prop = Parameter.__dict__["grad_req"]
        original_call_cached_op = HybridBlock.__dict__["_call_cached_op"]

        def _init_grad(param):
            original_init_grad(param)
            tracker.generation += 1
            tracker._learn(param)

        def set_grad_req(param, req):
            prop.fset(param, req)
            tracker.generation += 1

        def _call_cached_op(block, *args):
            key = tracker._graph_key(block, args)
            built = tracker._graphs.get(block)
            if block._cached_op is not None and built is not None and built != key:
                block._clear_cached_op()  # built for other accumulating arrays: rebuild
            if block._cached_op is not None:
                return original_call_cached_op(block, *args)
            tracker._graphs[block] = key
            outer = getattr(_building, "graph", None)
            _building.graph = (tracker, block, key)
            try:
                return original_call_cached_op(block, *args)
            finally:
                _building.graph = outer

        patch(Parameter, "_init_grad", _init_grad)
        patch(Parameter, "grad_req", property(prop.fget, set_grad_req, prop.fdel, prop.__doc__))
        patch(HybridBlock, "_call_cached_op", _call_cached_op)
        patch(ndarray, "CachedOp", _RoutingCachedOp)

    def on_call(self, block: Block, outermost: bool) -> None:
        """Before a Block call: learn the parameters the outermost call reaches."""
        if outermost:
            self._accumulating_params(block)

    def guard(self, x: Any, dtype: Any) -> Any:
        """``x`` routed through ``identity`` if casting it to ``dtype`` would lose its gradient."""
        if not isinstance(x, ndarray.NDArray) or not _drops(x.dtype, dtype):
            return x
        if not self.accumulates(x):
            return x
        if isinstance(x, mx_np.ndarray):
            return _nd_identity(x.as_nd_ndarray()).as_np_ndarray()
        return _nd_identity(x)

    def accumulates(self, x: ndarray.NDArray) -> bool:
        """Whether backward adds to ``x``'s gradient (or may: a leaf no known parameter owns)."""
        ref = self._owners.get(id(x))
        param = ref() if ref is not None else None
        if param is not None and any(a is x for a in param._data or ()):
            return param.grad_req == "add"
        if ref is not None:  # an id that is no longer this parameter's array: forget it
            del self._owners[id(x)]
        return x.grad is not None

    def graph_names(self, block: HybridBlock, key: tuple) -> frozenset:
        """The graph variables to route for ``key``: parameter names and input names."""
        params, positions = key
        inputs = block._cached_graph[0]
        return params | {inputs[i].name for i in positions}

    def _graph_key(self, block: HybridBlock, args: tuple) -> tuple:
        flat = [a for a in _flatten(args, "input")[0] if a is not None]
        positions = tuple(
            i for i, a in enumerate(flat) if isinstance(a, ndarray.NDArray) and self.accumulates(a)
        )
        return self._accumulating_params(block), positions

    def _accumulating_params(self, block: Block) -> frozenset:
        """Names of ``block``'s grad_req='add' parameters, learning them (cached per generation)."""
        cached = self._names.get(block)
        if cached is not None and cached[0] == self.generation:
            return cached[1]
        params = list(block.collect_params().values())
        for param in params:
            self._learn(param)
        names = frozenset(p.name for p in params if p.grad_req == "add")
        self._names[block] = (self.generation, names)
        return names

    def _learn(self, param: Parameter) -> None:
        ref = weakref.ref(param)
        for array in param._data or ():
            self._owners[id(array)] = ref
