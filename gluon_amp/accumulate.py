"""Gradient accumulation (``grad_req='add'``) through casts.

On CPU, MXNet's oneDNN ``amp_cast``/``amp_multicast`` backward ignores ``kAddTo``: a parameter with
``grad_req='add'`` whose only consumer is a cast gets no gradient at all (bfloat16, and float32
to float32). ``Cast`` and ``identity`` accumulate correctly, so autocast routes such parameters
through ``identity`` before casting them: the cast's backward writes a fresh buffer and
``identity``'s backward adds it to the parameter's gradient.

Which arrays and graph variables are accumulating parameters is tracked cheaply: a generation
counter moves whenever any parameter's ``grad_req`` or gradient buffers change, and each Block's
answer is cached per generation. A hybridized graph built before such a change is rebuilt.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Callable

from mxnet import ndarray, symbol
from mxnet.gluon import Block, HybridBlock, Parameter

__all__ = ["Tracker"]

# Captured before autocast wraps anything ('identity' is in MXNet's float32 lists).
_nd_identity = ndarray.identity
_sym_identity = symbol.identity


class Tracker:
    """Accumulating parameters as seen by one ``init``; ``install`` patches ``Parameter``."""

    def __init__(self) -> None:
        self.generation = 0
        self.array_ids: set[int] = set()  # data arrays of grad_req='add' parameters
        self._names: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._graphs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._local = threading.local()

    def install(self, patch: Callable[[Any, str, Any], None]) -> None:
        """Patch ``Parameter`` with ``patch(owner, name, value)`` so changes are noticed."""
        tracker = self
        original_init_grad = Parameter.__dict__["_init_grad"]
        prop = Parameter.__dict__["grad_req"]

        def _init_grad(param):
            original_init_grad(param)
            tracker.generation += 1
            if param.grad_req == "add":
                tracker.array_ids.update(id(a) for a in param._data or [])

        def set_grad_req(param, req):
            prop.fset(param, req)
            tracker.generation += 1

        patch(Parameter, "_init_grad", _init_grad)
        patch(Parameter, "grad_req", property(prop.fget, set_grad_req, prop.fdel, prop.__doc__))

    def names(self, block: Block) -> frozenset:
        """Names of ``block``'s grad_req='add' parameters (cached per generation)."""
        cached = self._names.get(block)
        if cached is not None and cached[0] == self.generation:
            return cached[1]
        params = [p for p in block.collect_params().values() if p.grad_req == "add"]
        for param in params:
            self.array_ids.update(id(a) for a in param._data or [])
        names = frozenset(p.name for p in params)
        self._names[block] = (self.generation, names)
        return names

    def on_call(self, block: Block, outermost: bool) -> None:
        """Before a Block call: remember the names for graph building; refresh stale graphs."""
        if outermost:
            self._local.names = self.names(block)
        if not isinstance(block, HybridBlock) or not block._active:
            return
        if block._cached_op is None:
            self._graphs[block] = self.names(block)
        elif block in self._graphs and self._graphs[block] != self.names(block):
            block._clear_cached_op()  # built for other grad_req values: rebuild
            self._graphs[block] = self.names(block)

    def guard(self, x: Any) -> Any:
        """``x`` routed through ``identity`` if it is an accumulating parameter, else ``x``."""
        if isinstance(x, ndarray.NDArray):
            if id(x) not in self.array_ids:
                return x
            if hasattr(x, "as_nd_ndarray") and type(x) is not ndarray.NDArray:
                return _nd_identity(x.as_nd_ndarray()).as_np_ndarray()
            return _nd_identity(x)
        if isinstance(x, symbol.Symbol) and x.name in getattr(self._local, "names", ()):
            if x.get_children() is None:  # a variable: the parameter itself
                if type(x) is not symbol.Symbol:
                    return _sym_identity(x.as_nd_ndarray()).as_np_ndarray()
                return _sym_identity(x)
        return x
