"""Around every ``Block.__call__``: float32 outputs for the outermost call, and call bookkeeping.

Gluon forward hooks cannot replace outputs, so ``init`` swaps ``Block.__call__`` for a wrapper
that counts call depth (per thread). The outermost call (one not made from inside another Block)
records whether its inputs live on a CPU context (float16 graph building consults it) and, with
``cast_outputs=True``, returns its float16/bfloat16 outputs as float32, so no bfloat16 array
reaches numpy as raw uint16 records and no float16 logits reach a metric. Outputs keep the
structure the call returned (lists, tuples, namedtuples, dicts and their subclasses, nested).
"""

from __future__ import annotations

import copy
import threading
from typing import Any, Callable

import mxnet as mx
import numpy as np
from mxnet.contrib.amp.amp import bfloat16

from .errors import Float16OnCPUError

__all__ = ["make_block_call", "outermost_inputs_on_cpu", "to_float32"]

_LOW_PRECISION = (np.float16, bfloat16)
_local = threading.local()


def outermost_inputs_on_cpu() -> bool:
    """Whether the Block call in progress on this thread got an input on a CPU context."""
    return getattr(_local, "depth", 0) > 0 and getattr(_local, "on_cpu", False)


def _items(value: Any) -> list | None:
    """``(key, item)`` pairs of a list, tuple or dict (None for anything else)."""
    if isinstance(value, dict):
        return list(value.items())
    if isinstance(value, (list, tuple)):
        return list(enumerate(value))
    return None


def _arrays(value: Any):
    if isinstance(value, mx.nd.NDArray):
        yield value
    for _, item in _items(value) or ():
        yield from _arrays(item)


def _rebuilt(value: list | tuple | dict, items: list) -> Any:
    """A container of ``value``'s own type holding ``items`` (``(key, item)`` pairs)."""
    if isinstance(value, tuple):
        made = getattr(value, "_make", type(value))  # a namedtuple takes no iterable
        return made(item for _, item in items)
    container = copy.copy(value)  # keeps a subclass, its attributes, a defaultdict's factory
    if isinstance(value, list):
        container[:] = [item for _, item in items]
    else:
        for key, item in items:
            container[key] = item
    return container


def to_float32(value: Any) -> Any:
    """``value`` with its float16/bfloat16 arrays as float32, nested in lists, tuples and dicts.

    Containers keep their type (namedtuples, dict and list subclasses included); one holding no
    low-precision array is returned as is, and so is any other object. The cast is MXNet's
    ``amp_cast``, so it is differentiable and recorded by autograd.
    """
    items = _items(value)
    if items is not None:
        cast = [(key, to_float32(item)) for key, item in items]
        if all(new is old for (_, new), (_, old) in zip(cast, items)):
            return value
        return _rebuilt(value, cast)
    if not isinstance(value, mx.nd.NDArray) or value.dtype not in _LOW_PRECISION:
        return value
    if isinstance(value, mx.np.ndarray):
        return mx.nd.amp_cast(value.as_nd_ndarray(), dtype=np.float32).as_np_ndarray()
    return mx.nd.amp_cast(value, dtype=np.float32)


def make_block_call(
    original: Callable, cast_outputs: bool, on_call: Callable[[Any, bool], None]
) -> Callable:
    """A replacement for ``Block.__call__`` wrapping ``original``.

    ``on_call(block, outermost)`` runs before each call.
    """

    def __call__(self, *args):
        depth = getattr(_local, "depth", 0)
        if depth == 0:
            _local.on_cpu = any(a.context.device_type == "cpu" for a in _arrays(args))
        on_call(self, depth == 0)
        _local.depth = depth + 1
        try:
            out = original(self, *args)
        except ValueError as error:
            # Gluon's deferred shape inference rewraps errors; surface ours unchanged.
            if isinstance(error.__context__, Float16OnCPUError):
                raise error.__context__ from None
            raise
        finally:
            _local.depth = depth
        return to_float32(out) if depth == 0 and cast_outputs else out

    __call__.__doc__ = original.__doc__
    __call__.__wrapped__ = original
    return __call__
