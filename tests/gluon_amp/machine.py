"""What this test machine can run, and how the tests turn each low precision on.

bfloat16 needs a CPU with AVX-512 (see gluon_amp/device.py); float16 runs everywhere, emulated
on a CPU (see gluon_amp/emulate.py). Tests of the machinery (scaler, trainer, casts) run in every
low precision this machine has: ``LOW_PRECISIONS``.
"""

import pytest

import gluon_amp as amp
from gluon_amp.device import cpu_bfloat16_problem

#: Why bfloat16 cannot run on this machine, or None.
NO_BFLOAT16 = cpu_bfloat16_problem()

#: For tests that run bfloat16 kernels outside ``amp.init`` (subprocesses, raw bfloat16 arrays).
needs_bfloat16 = pytest.mark.skipif(
    NO_BFLOAT16 is not None, reason=f"needs bfloat16 kernels: {NO_BFLOAT16}"
)

#: The low precisions to parametrize over: bfloat16 (skipped without its kernels) and float16.
LOW_PRECISIONS = [pytest.param("bfloat16", marks=needs_bfloat16), "float16"]


def amp_init(dtype: str, **kwargs) -> None:
    """``amp.init(dtype)`` for CPU contexts: float16 with its emulation."""
    amp.init(dtype, emulate=dtype == "float16", **kwargs)
