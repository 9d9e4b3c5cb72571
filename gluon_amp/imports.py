"""``SymbolBlock.imports`` under autocast: a saved float32 model comes back converted.

``init`` replaces ``SymbolBlock.imports`` with :func:`make_imports`'s function: the loaded graph is
converted by MXNet's own ``convert_symbol`` with the op lists autocast uses, and shares the
loaded parameters. A float16 graph that meets a CPU runs with the float16 emulation when
``init`` had it on (the graph rebuilt by ``emulate.graph_for_cpu``, as ``convert_hybrid_block``
does); without it, it fails at the call on CPU inputs, as autocast operators do. Accumulating
parameters are routed in either graph when Gluon builds its ``CachedOp`` (``accumulate.py``).
"""

from __future__ import annotations

from typing import Any, Callable

import mxnet as mx
import numpy as np
from mxnet import symbol
from mxnet.contrib.amp import amp as contrib_amp
from mxnet.gluon import SymbolBlock
from mxnet.ndarray import NDArray
from mxnet.symbol import Symbol

from . import autocast  # autocast installs make_imports; this module uses its helpers
from . import emulate as emulation
from .errors import Float16OnCPUError, first_op_in

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
        params = block.collect_params()
        if config.target_dtype != "float16":
            return SymbolBlock(converted, typed, params=params)
        op = first_op_in(converted, lists["target"])
        if op is None and not config.emulate:
            return SymbolBlock(converted, typed, params=params)
        return _Float16SymbolBlock(converted, typed, params, op, config.emulate)

    return autocast._finish(imports, original)


class _Float16SymbolBlock(SymbolBlock):
    """An imported graph autocast to float16, with its twin for CPUs when emulating.

    Each call runs the graph for where its inputs are (a CPU context, or a graph being built to
    run on a CPU): the emulated twin, or, without the emulation, :class:`Float16OnCPUError`.
    """

    def __init__(
        self, outputs: Symbol, inputs: list, params: Any, op_name: str | None, emulate: bool
    ) -> None:
        super().__init__(outputs, inputs, params=params)
        self._amp_float16_op = op_name
        graph = self._cached_graph[1]
        cpu = emulation.graph_for_cpu(graph, emulation.emulated_ops()) if emulate else None
        self._amp_graphs = {False: graph, True: cpu}
        if emulate:  # what amp.report or export sees before a first call
            self._amp_use(_params_on_cpu(self))

    def forward(self, x: Any, *args: Any) -> Any:
        on_cpu = _runs_on_cpu((x, *args))
        if on_cpu and self._amp_graphs[True] is None:
            raise Float16OnCPUError(self._amp_float16_op)
        self._amp_use(on_cpu)
        return super().forward(x, *args)

    def _amp_use(self, cpu: bool) -> None:
        """Make the graph for a CPU (or not) the one Gluon runs and composes."""
        inputs, current = self._cached_graph
        graph = self._amp_graphs[cpu]
        if current is not graph:
            self._clear_cached_op()
            self._cached_graph = inputs, graph


def _runs_on_cpu(args: tuple) -> bool:
    """Whether a call with ``args`` runs on a CPU: an array on a CPU context, or symbols of a
    graph that will run on one."""
    if any(isinstance(a, Symbol) for a in args):
        return emulation.symbols_run_on_cpu()
    return any(isinstance(a, NDArray) and a.context.device_type == "cpu" for a in args)


def _params_on_cpu(block: SymbolBlock) -> bool:
    """Whether the loaded parameters live on CPUs (not loaded: whether this machine has no GPU)."""
    params = block.collect_params().values()
    kinds = {c.device_type for p in params if p._data for c in p.list_ctx()}
    return kinds == {"cpu"} if kinds else emulation.symbols_run_on_cpu()
