"""``SymbolBlock.imports`` under autocast: a saved float32 model comes back converted.

``init`` replaces ``SymbolBlock.imports`` with :func:`make_imports`'s function: the loaded graph is
converted by MXNet's own ``convert_symbol`` with the op lists autocast uses, and shares the
loaded parameters. A float16 graph fails at the call on CPU inputs, as autocast operators do.
"""

from __future__ import annotations

from typing import Any, Callable

import mxnet as mx
import numpy as np
from mxnet import symbol
from mxnet.contrib.amp import amp as contrib_amp
from mxnet.gluon import SymbolBlock
from mxnet.symbol import Symbol

from . import autocast  # autocast installs make_imports; this module uses its helpers
from .errors import first_op_in

__all__ = ["make_imports"]


def make_imports(config: autocast._Config, lists: dict) -> Callable:
    """A replacement for ``SymbolBlock.imports`` converting the graph for ``config``."""
    original = SymbolBlock.__dict__["imports"].__func__

    def imports(symbol_file, input_names, param_file=None, ctx=None, **kwargs):
        block = original(symbol_file, input_names, param_file, ctx, **kwargs)
        inputs, out = block._cached_graph
        converted = contrib_amp.convert_symbol(
            out,
            config.target_dtype,
            target_dtype_ops=lists["target"],
            fp32_ops=lists["fp32"],
            conditional_fp32_ops=[
                (op, arg, list(values)) for op, arg, values in lists["conditional"]
            ],
            data_names=[i.name for i in inputs],
        )
        # The saved model is float32: say so, or type inference cannot see through amp_cast.
        typed = [symbol.var(i.name, dtype=np.float32) for i in inputs]
        if mx.util.is_np_array():
            typed = [i.as_np_ndarray() for i in typed]
            converted = converted.as_np_ndarray()
        op = first_op_in(converted, lists["target"]) if config.target_dtype == "float16" else None
        if op is None:
            return SymbolBlock(converted, typed, params=block.collect_params())
        return _Float16SymbolBlock(converted, typed, block.collect_params(), op)

    return autocast._finish(imports, original)


class _Float16SymbolBlock(SymbolBlock):
    """An imported graph autocast to float16: CPU inputs fail at the call, as autocast ops do."""

    def __init__(self, outputs: Symbol, inputs: list, params: Any, op_name: str) -> None:
        super().__init__(outputs, inputs, params=params)
        self._amp_float16_op = op_name

    def forward(self, x: Any, *args: Any) -> Any:
        autocast._check_float16_on_cpu(self._amp_float16_op, np.float16, (x, *args), {})
        return super().forward(x, *args)
