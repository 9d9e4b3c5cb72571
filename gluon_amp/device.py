"""What this machine can run in low precision.

MXNet 1.9's bfloat16 kernels on CPU come from oneDNN, which needs AVX-512 (its ``avx512_core``
level: ``avx512f``, ``avx512bw``, ``avx512vl``, ``avx512dq``). On a CPU without it every bfloat16
FullyConnected, Convolution, BatchNorm, Pooling and Activation fails with "could not create a
primitive descriptor iterator", and a bfloat16 ``transpose`` can crash the process, so
``amp.init`` refuses bfloat16 there with a clear error instead.
"""

from __future__ import annotations

import functools
from pathlib import Path

import mxnet as mx
from mxnet.contrib.amp.amp import bfloat16

__all__ = ["cpu_bfloat16_problem", "cpu_flags"]

#: The CPU flags oneDNN's ``avx512_core`` level needs (bfloat16 is emulated on it, native with
#: ``avx512_bf16`` or AMX).
AVX512_CORE = ("avx512f", "avx512bw", "avx512vl", "avx512dq")


@functools.lru_cache(maxsize=1)
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str] | None:
    """The CPU's feature flags as Linux lists them, or None where they cannot be read."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return None


@functools.lru_cache(maxsize=1)
def cpu_bfloat16_problem() -> str | None:
    """None when MXNet runs bfloat16 on this CPU; otherwise why it cannot."""
    flags = cpu_flags()
    if flags is not None:
        missing = [flag for flag in AVX512_CORE if flag not in flags]
        if missing:
            return (
                f"this CPU has no AVX-512 ({', '.join(missing)} missing), which MXNet's oneDNN "
                f"needs for every bfloat16 kernel"
            )
    # The flags are unknown (not Linux) or say yes: ask MXNet itself with the smallest GEMM.
    one = mx.nd.ones((1, 1)).astype(bfloat16)
    try:
        mx.nd.FullyConnected(one, one, no_bias=True, num_hidden=1).wait_to_read()
    except mx.base.MXNetError:
        return "MXNet has no bfloat16 FullyConnected kernel on this CPU (oneDNN is off or unusable)"
    return None
