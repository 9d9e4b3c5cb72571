"""Inference conversion of a float32 HybridBlock: ``mxnet.contrib.amp``'s, minus its GPU default."""

from __future__ import annotations

from typing import Any

import mxnet as mx
import numpy as np
from mxnet.contrib.amp import amp as contrib_amp
from mxnet.gluon import HybridBlock, SymbolBlock

from . import autocast
from . import emulate as emulation
from .errors import Float16OnCPUError, first_op_in

__all__ = ["convert_hybrid_block"]


def convert_hybrid_block(
    block: HybridBlock,
    target_dtype: Any = None,
    target_dtype_ops: list[str] | None = None,
    fp32_ops: list[str] | None = None,
    conditional_fp32_ops: list | None = None,
    excluded_sym_names: list[str] | None = None,
    ctx: mx.Context | None = None,
    cast_optional_params: bool = False,
    *,
    emulate: bool | None = None,
) -> SymbolBlock:
    """A mixed-precision SymbolBlock for inference, from a hybridized float32 ``block``.

    Parameters as in ``mxnet.contrib.amp.convert_hybrid_block``, except the defaults:
    ``target_dtype=None`` means the dtype ``amp.init`` chose (else float16 on a GPU machine,
    bfloat16 on CPU) and ``ctx=None`` means the context the block's parameters live on (contrib
    defaults to ``gpu(0)``, which fails on CPU builds). The block must have been hybridized and
    run once. float16 for a CPU context runs with float16 emulation (``emulate=True``; None means
    as ``amp.init`` set it, else ``GLUON_AMP_EMULATE_FLOAT16``): the converted graph computes the
    operators without a CPU float16 kernel in float32 (``emulate.graph_for_cpu``). Without it,
    float16 for a CPU context raises :class:`Float16OnCPUError` here, not at a later sync, when
    the block holds an operator with no CPU float16 kernel.
    """
    if not isinstance(block, HybridBlock):
        raise TypeError(
            f"convert_hybrid_block needs a HybridBlock, got {type(block).__name__}: build the "
            f"model from HybridBlocks (or load it with SymbolBlock.imports)"
        )
    if target_dtype is None and autocast.target_dtype() is not None:
        target_dtype = autocast.target_dtype()
    dtype = autocast.normalize_dtype(target_dtype)
    if ctx is None:
        contexts = [p.list_ctx()[0] for p in block.collect_params().values() if p._data]
        ctx = contexts[0] if contexts else mx.cpu()
    if ctx.device_type == "cpu":
        autocast.require_bfloat16_kernels(dtype)
    emulated = dtype == "float16" and ctx.device_type == "cpu" and _emulating(emulate)
    if dtype == "float16" and ctx.device_type == "cpu" and not emulated and block._cached_graph:
        ops = target_dtype_ops or contrib_amp.list_lp16_ops(np.float16)
        op = first_op_in(block._cached_graph[1], ops, skip=excluded_sym_names or ())
        if op is not None:
            raise Float16OnCPUError(
                op, "convert with emulate=True, or target_dtype='bfloat16' for speed on CPU"
            )
    converted = contrib_amp.convert_hybrid_block(
        block,
        target_dtype=dtype,
        target_dtype_ops=target_dtype_ops,
        fp32_ops=fp32_ops,
        conditional_fp32_ops=conditional_fp32_ops,
        excluded_sym_names=excluded_sym_names,
        ctx=ctx,
        cast_optional_params=cast_optional_params,
    )
    if not emulated:
        return converted
    inputs, graph = converted._cached_graph
    runnable = emulation.graph_for_cpu(graph, emulation.emulated_ops())
    return SymbolBlock(runnable, inputs, params=converted.collect_params())


def _emulating(emulate: bool | None) -> bool:
    return emulation.requested(emulate)[0] if emulate is not None else autocast.emulating()
