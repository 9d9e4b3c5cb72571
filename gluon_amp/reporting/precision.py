"""Why each GEMM ran in the precision it ran in: MXNet's lists, a user override, a graph cached
before ``amp.init``, or no low-precision kernel for that operator and context.

MXNet's own lists are read as data. A GEMM MXNet's bfloat16 list leaves out (Deconvolution, RNN,
``dot``, ``batch_dot``) has no bfloat16 kernel in MXNet 1.9 (its CPU bfloat16 kernels are
oneDNN's FullyConnected and Convolution); on float16, every GEMM has one (GPU; on a CPU the
emulation stands for the GPU it previews).
"""

from __future__ import annotations

from dataclasses import dataclass

from mxnet.contrib.amp import amp as contrib_amp

from .. import autocast
from ..np_ops import NPX_TWINS
from .gemm import GEMM_OPS
from .graph import Graph

__all__ = ["LOW", "Policy", "Precision", "decide", "policy"]

LOW = ("float16", "bfloat16")


@dataclass(frozen=True)
class Policy:
    """What autocast was asked to do (``target`` None: AMP is off)."""

    target: str | None
    target_ops: frozenset[str] = frozenset()
    fp32_ops: frozenset[str] = frozenset()
    widest_ops: frozenset[str] = frozenset()
    conditional_ops: frozenset[str] = frozenset()
    custom_target: bool = False
    custom_fp32: bool = False
    kernels: frozenset[str] = frozenset()  # GEMM operators with a kernel in the target dtype
    emulated: frozenset[str] = frozenset()  # operators emulated in float32 on a CPU

    def wrapped(self, numpy: bool) -> frozenset[str]:
        """Operators autocast wraps: on one of its lists, or, in the numpy front end, those of
        its target list with an ``npx`` twin."""
        if numpy:
            return self.target_ops & frozenset(NPX_TWINS.values())
        return self.target_ops | self.fp32_ops | self.conditional_ops | self.widest_ops


@dataclass(frozen=True)
class Precision:
    """The precision one GEMM ran in, why, and the run-time code it deserves with its fix."""

    dtype: str
    why: str
    code: str | None = None
    fix: str | None = None


def policy() -> Policy:
    """The policy of the ``amp.init`` in force."""
    active = autocast._active
    if active is None:
        return Policy(None)
    config = active.config
    dtype = autocast._DTYPES[config.target_dtype]
    lists = autocast._op_lists(config, dtype)
    defaults = frozenset(contrib_amp.list_lp16_ops(dtype))
    return Policy(
        config.target_dtype,
        frozenset(lists["target"]),
        frozenset(lists["fp32"]),
        frozenset(lists["widest"]),
        frozenset(op for op, _, _ in lists["conditional"]),
        config.target_precision_ops is not None,
        config.fp32_ops is not None,
        GEMM_OPS if config.target_dtype == "float16" else GEMM_OPS & defaults,
        frozenset(getattr(active, "emulated", ())),
    )


def has_casts(graph: Graph) -> bool:
    """Whether autocast touched this graph (every graph built under ``amp.init`` has casts)."""
    return any(node.op in ("amp_cast", "amp_multicast") for node in graph.nodes)


def decide(
    op: str, ran: str | None, rules: Policy, predates_init: bool, emulated: bool = False
) -> Precision:
    """Why GEMM operator ``op`` ran in ``ran`` (its data input's dtype) under ``rules``;
    ``emulated``: in float32 between float16 inputs and outputs, on a CPU."""
    ran = ran or "unknown"
    if emulated:
        found = decide(op, ran, rules, predates_init)
        return Precision(found.dtype, f"{found.why} (emulated on CPU)", found.code, found.fix)
    target = rules.target
    if target is None:
        return Precision(ran, "amp.init() not called")
    if predates_init:
        return Precision(ran, "graph cached before amp.init()")
    if ran in LOW:
        if op in rules.target_ops:
            source = "your target_precision_ops" if rules.custom_target else f"MXNet's {ran} list"
            return Precision(ran, source)
        if op in rules.widest_ops:
            return Precision(ran, "widest type of its inputs")
        return Precision(ran, f"its inputs were {ran}")
    if op not in rules.kernels:
        return Precision(ran, f"no {target} kernel")
    if op in rules.fp32_ops:
        if rules.custom_fp32:
            return Precision(ran, "your fp32_ops", "AMP402", f"remove {op} from fp32_ops")
        fix = f"pass amp.init a fp32_ops list without {op}"
        return Precision(ran, "MXNet's float32 list", "AMP402", fix)
    if op in rules.widest_ops:
        fix = f"give it {target} inputs (cast the float32 one, or compute it in {target})"
        return Precision(ran, "widest type of its inputs: one is float32", "AMP402", fix)
    if op in rules.target_ops:
        fix = "do not cast its input back to float32 after autocast"
        return Precision(ran, "cast back to float32 after autocast", "AMP402", fix)
    if rules.custom_target:
        fix = f"add {op} to target_precision_ops"
        return Precision(ran, "not in your target_precision_ops", "AMP402", fix)
    fix = f"cast its inputs to {target} (autocast leaves {op} alone)"
    return Precision(ran, "in none of MXNet's lists: not autocast", "AMP402", fix)
