"""MXNet's AMP op lists: its list modules and its ``list_*`` helpers, for every dtype spelling.

``symbol_fp16`` / ``symbol_bf16`` are MXNet's own modules, so scripts that edit
``amp.lists.symbol_fp16.FP32_FUNCS`` before ``amp.init()`` (as GluonCV's do) keep working.
``mxnet.contrib.amp.list_lp16_ops('bfloat16')`` fails its own assertion (it wants the structured
numpy dtype); these wrappers normalise the dtype and return MXNet's lists unchanged.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np
from mxnet.contrib.amp import amp as contrib_amp
from mxnet.contrib.amp.amp import bfloat16
from mxnet.contrib.amp.lists import symbol_bf16, symbol_fp16

from .autocast import normalize_dtype

__all__ = [
    "symbol_fp16",
    "symbol_bf16",
    "list_lp16_ops",
    "list_fp32_ops",
    "list_lp16_fp32_ops",
    "list_conditional_fp32_ops",
    "list_widest_type_cast",
    "list_loss_output_functions",
    "list_lp16_use_fp32_params",
]


def _any_dtype_spelling(contrib_function: Callable) -> Callable:
    @functools.wraps(contrib_function)
    def wrapper(target_dtype: Any) -> Any:
        dtype = normalize_dtype(target_dtype)
        return contrib_function(bfloat16 if dtype == "bfloat16" else np.float16)

    return wrapper


list_lp16_ops = _any_dtype_spelling(contrib_amp.list_lp16_ops)
list_fp32_ops = _any_dtype_spelling(contrib_amp.list_fp32_ops)
list_lp16_fp32_ops = _any_dtype_spelling(contrib_amp.list_lp16_fp32_ops)
list_conditional_fp32_ops = _any_dtype_spelling(contrib_amp.list_conditional_fp32_ops)
list_widest_type_cast = _any_dtype_spelling(contrib_amp.list_widest_type_cast)
list_loss_output_functions = _any_dtype_spelling(contrib_amp.list_loss_output_functions)
list_lp16_use_fp32_params = _any_dtype_spelling(contrib_amp.list_lp16_use_fp32_params)
