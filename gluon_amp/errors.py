"""Errors gluon_amp raises for what MXNet would only report later and obscurely."""

from __future__ import annotations

import json
from collections.abc import Collection

from mxnet.base import MXNetError
from mxnet.symbol import Symbol

__all__ = ["BFloat16UnavailableError", "Float16OnCPUError", "EMULATE_ENV_VAR", "first_op_in"]

#: The environment variable that turns float16 emulation on (read by ``amp.init``, emulate.py).
EMULATE_ENV_VAR = "GLUON_AMP_EMULATE_FLOAT16"
_EMULATE = f"amp.init('float16', emulate=True) (or {EMULATE_ENV_VAR}=1)"
_USE_BFLOAT16 = "for speed on a CPU use amp.init('bfloat16') (call amp.reset() first)"


class Float16OnCPUError(MXNetError):
    """An operator with no float16 kernel on CPU was about to run in float16 on a CPU context."""

    def __init__(self, op_name: str, fix: str = _USE_BFLOAT16) -> None:
        super().__init__(
            f"{op_name} has no float16 kernel on CPU: float16 AMP needs a GPU context, or "
            f"{_EMULATE} to check float16 numerics on a CPU; {fix}"
        )


class BFloat16UnavailableError(MXNetError):
    """bfloat16 was asked for on a CPU where MXNet has no bfloat16 kernels."""

    def __init__(self, problem: str) -> None:
        super().__init__(
            f"bfloat16 AMP cannot run here: {problem}. Run it on a CPU with AVX-512 "
            f"(avx512_bf16 or AMX make it faster than float32), or use float16 on a GPU; to "
            f"check float16 numerics on this CPU, use {_EMULATE}"
        )


def first_op_in(graph: Symbol, op_names: Collection[str], skip: Collection[str] = ()) -> str | None:
    """The first operator of ``graph`` named in ``op_names`` (nodes named in ``skip`` aside)."""
    for node in json.loads(graph.tojson())["nodes"]:
        if node["op"] in op_names and node["name"] not in skip:
            return node["op"]
    return None
