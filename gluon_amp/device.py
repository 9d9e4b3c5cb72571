"""What this machine can run in low precision.

MXNet 1.9's bfloat16 kernels on CPU come from oneDNN, which needs AVX-512 (its ``avx512_core``
level: ``avx512f``, ``avx512bw``, ``avx512vl``, ``avx512dq``). On a CPU without it every bfloat16
FullyConnected, Convolution, BatchNorm, Pooling and Activation fails with "could not create a
primitive descriptor iterator", and a bfloat16 ``transpose`` can crash the process, so
``amp.init`` refuses bfloat16 there with a clear error instead.

``outlook`` says, in one line, whether a target precision is expected to pay off on a device
(Tensor Cores on a GPU; native bfloat16 instructions on a CPU); ``amp.init`` logs it and
``amp.report`` carries it.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import mxnet as mx
from mxnet.contrib.amp.amp import bfloat16

__all__ = ["Outlook", "cpu_bfloat16_problem", "cpu_flags", "gpu_capability", "outlook"]

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


# --- will the target precision pay off here? ------------------------------------------------

#: Where native bfloat16 arithmetic comes from on an x86 CPU.
BFLOAT16_NATIVE = ("avx512_bf16", "amx_bf16")
#: The first GPU generation with Tensor Cores (Volta).
TENSOR_CORES = (7, 0)


@dataclass(frozen=True)
class Outlook:
    """Whether a target precision is expected to pay off on a device: a log level and one line."""

    level: int
    line: str


def gpu_capability(device_id: int = 0) -> tuple[str, tuple[int, int]] | None:
    """The name and compute capability of GPU ``device_id`` from the CUDA driver, or None."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1" if sys.platform != "win32" else "nvcuda.dll")
    except OSError:
        return None
    device, major, minor = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    name = ctypes.create_string_buffer(256)
    calls = (
        lambda: cuda.cuInit(0),
        lambda: cuda.cuDeviceGet(ctypes.byref(device), device_id),
        lambda: cuda.cuDeviceGetAttribute(ctypes.byref(major), 75, device),  # ..._MAJOR
        lambda: cuda.cuDeviceGetAttribute(ctypes.byref(minor), 76, device),  # ..._MINOR
        lambda: cuda.cuDeviceGetName(name, len(name), device),
    )
    if any(call() != 0 for call in calls):  # CUDA_SUCCESS is 0
        return None
    return name.value.decode(errors="replace"), (major.value, minor.value)


def outlook(target_dtype: str, ctx: mx.Context | None = None, emulate: bool = False) -> Outlook:
    """Whether ``target_dtype`` ('float16' or 'bfloat16') is expected to be faster than float32
    on ``ctx`` (default: the first GPU for float16 when one is visible, else the CPU), as Keras
    says when a mixed-precision policy is set; ``emulate``: float16 emulation is on."""
    if ctx is None:
        gpu = target_dtype == "float16" and mx.context.num_gpus() > 0
        ctx = mx.gpu(0) if gpu else mx.cpu()
    if ctx.device_type == "gpu":
        return _gpu_outlook(target_dtype, ctx.device_id)
    if target_dtype == "float16" and emulate:
        return Outlook(
            logging.WARNING,
            "float16 on CPU is emulated (float16 storage, float32 arithmetic): it shows a GPU's "
            "float16 numerics, but runs slower than float32",
        )
    if target_dtype == "float16":
        return Outlook(
            logging.ERROR,
            "float16 cannot run on a CPU: MXNet has no CPU float16 GEMM or convolution; use a "
            "GPU, amp.init('float16', emulate=True) to check float16 numerics here, or bfloat16",
        )
    problem = cpu_bfloat16_problem()
    if problem is not None:
        return Outlook(logging.ERROR, f"bfloat16 cannot run on this CPU: {problem}")
    flags = cpu_flags() or frozenset()
    native = [flag for flag in BFLOAT16_NATIVE if flag in flags]
    if native:
        return Outlook(
            logging.INFO,
            f"bfloat16 on CPU: native bfloat16 instructions ({', '.join(native)}), so GEMMs and "
            f"convolutions are expected to be faster than float32 (MXNet 1.9's oneDNN does not "
            f"use AMX; benchmark your model)",
        )
    return Outlook(
        logging.WARNING,
        "bfloat16 on CPU without avx512_bf16 or AMX: oneDNN emulates bfloat16 with AVX-512, "
        "which can be slower than float32; expect memory savings only",
    )


def _gpu_outlook(target_dtype: str, device_id: int) -> Outlook:
    found = gpu_capability(device_id)
    if found is None:
        return Outlook(
            logging.WARNING,
            f"{target_dtype} on gpu({device_id}): its compute capability could not be read from "
            f"the CUDA driver; Tensor Cores need 7.0 or higher",
        )
    name, capability = found
    gpu = f"gpu({device_id}) {name} (compute capability {capability[0]}.{capability[1]})"
    if target_dtype == "bfloat16":
        return Outlook(
            logging.WARNING,
            f"bfloat16 on {gpu}: MXNet 1.9's bfloat16 kernels are CPU (oneDNN) kernels; use "
            f"float16 on a GPU",
        )
    if capability >= TENSOR_CORES:
        return Outlook(
            logging.INFO, f"float16 on {gpu}: Tensor Cores, expected to be faster than float32"
        )
    return Outlook(
        logging.WARNING,
        f"float16 on {gpu}: no Tensor Cores (they need compute capability 7.0), so float16 "
        f"saves memory but GEMMs and convolutions are not faster than float32",
    )
