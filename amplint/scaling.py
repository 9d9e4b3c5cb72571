"""How gradients are computed and whether the loss was scaled first (rules AMP301, AMP305,
AMP306): backward calls, loss-scaling mechanisms, static scaling and master weights."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Callable

import libcst as cst

from amplint.index import CallSite, FileIndex, dotted

_MULTI_PRECISION = re.compile(r"""multi_precision['"]?\]?\s*[:=]\s*([^,)}\n]+)""")
_STATIC = re.compile(r"\bgrad_scale\s*=|\bstatic_loss_scale\b")
# Names of calls that scale a loss or wrap the whole backward (GradScaler, apex, DeepSpeed,
# timm's NativeScaler objects, Keras 2's get_scaled_loss, GluonNLP's FP16Trainer, ...).
_SCALING_CALL = re.compile(
    r"(^|\.)(scale_loss|get_scaled_loss|scale|GradScaler|LossScaleOptimizer|FP16Trainer"
    r"|FP16_Optimizer|unscale_?|[A-Za-z_]*[Ss]caler)$"
)


@dataclass(frozen=True)
class Backward:
    """A call that computes gradients: ``loss.backward()``, ``autograd.backward(loss)`` or
    Keras ``tape.gradient(loss, variables)``."""

    site: CallSite
    loss: cst.BaseExpression | None
    keras: bool


def backward_calls(index: FileIndex) -> Iterator[Backward]:
    """Every gradient computation of the file, except those a wrapper or an explicit head
    gradient takes care of and those of MXNet's Module API."""
    for site in index.calls:
        if site.qualname in ("mxnet.autograd.backward", "torch.autograd.backward"):
            yield Backward(site, site.arg(0, "heads") or site.arg(0, "tensors"), False)
        elif site.method == "backward":
            if any(a.keyword is None for a in site.node.args):
                continue  # engine.backward(loss), optimizer.backward(loss): a wrapper scales
            if site.arg(None, "out_grad") is not None or site.arg(None, "gradient") is not None:
                continue  # an explicit head gradient is a way to apply a scale
            if _module_api(site, index):
                continue
            yield Backward(site, site.receiver, False)
        elif site.method == "gradient" and len(site.node.args) >= 2 and _is_tape(site, index):
            yield Backward(site, site.arg(0, "target"), True)


def _is_tape(site: CallSite, index: FileIndex) -> bool:
    """``tape.gradient(...)`` on a ``tf.GradientTape``."""
    return _receiver_made_by(site, index, lambda qualname: qualname.endswith("GradientTape"))


def _module_api(site: CallSite, index: FileIndex) -> bool:
    """``mod.backward()`` of MXNet's symbolic Module API (the loss lives in the symbol)."""
    return _receiver_made_by(site, index, lambda qualname: qualname.startswith("mxnet.mod"))


def _receiver_made_by(site: CallSite, index: FileIndex, made_by: Callable[[str], bool]) -> bool:
    """Whether a value bound to the call's receiver comes from a call whose resolved name
    satisfies ``made_by``."""
    name = dotted(site.receiver) if site.receiver is not None else None
    if name is None:
        return False
    return any(made_by(inner.qualname or "") for inner in index.bound_calls(name, site.scope))


def is_scaling_call(site: CallSite) -> bool:
    """A call that scales a loss or wraps the backward (``scaler.scale``, ``amp.scale_loss``...)."""
    return bool(site.name and _SCALING_CALL.search(site.name))


def loss_is_scaled(backward: Backward, index: FileIndex) -> bool:
    """Inside ``with amp.scale_loss(...)``, or the loss is ``loss * K``, ``scaler.scale(loss)``,
    or a name bound (also rebound) to one of those."""
    site = backward.site
    if any(is_scaling_call(outer) for outer in index.with_calls(site)):
        return True
    return _scaled_expression(backward.loss, index, site, 0)


def loss_from_caller(backward: Backward) -> bool:
    """The loss is a parameter of the function (or a loop over one): a generic helper such as
    ``def parallel_backward(losses)`` or an optimizer's ``compute_gradients(loss, ...)``, whose
    callers decide whether they pass a scaled loss."""
    name = dotted(backward.loss) if backward.loss is not None else None
    scope = backward.site.scope
    if name is None or scope.node is None:
        return False
    source = scope.loops.get(name)
    if source is not None and name not in scope.assigned:
        name = dotted(source)
    return name is not None and name in scope.params


def _scaled_expression(expr, index: FileIndex, site: CallSite, depth: int) -> bool:
    if expr is None or depth > 4:
        return False
    if isinstance(expr, cst.BinaryOperation) and isinstance(
        expr.operator, (cst.Multiply, cst.Divide)
    ):
        return True
    inner = index.site(expr)
    if inner is not None:
        return is_scaling_call(inner)
    if isinstance(expr, (cst.List, cst.Tuple)):
        return any(_scaled_expression(e.value, index, site, depth + 1) for e in expr.elements)
    name = dotted(expr)
    if name is not None:
        return any(
            _scaled_expression(value, index, site, depth + 1)
            for value in index.values_of(name, site.scope)
        )
    return False


def function_scales(index: FileIndex, site: CallSite) -> bool:
    """Whether the function holding ``site`` (or the module, at top level) uses any loss-scaling
    mechanism at all: then an unscaled-looking backward is most likely handled by it."""
    return any(is_scaling_call(other) for other in index.calls_in(site.function))


def master_weights(source: str) -> bool:
    """``multi_precision`` turned on anywhere (an unknown value counts as on)."""
    for match in _MULTI_PRECISION.finditer(source):
        if match.group(1).strip() not in ("False", "0", "None"):
            return True
    return False


def static_scaling(source: str) -> bool:
    """A static loss scale set through an API argument (``grad_scale=K``)."""
    return bool(_STATIC.search(source))


def uses_loss_scaling(index: FileIndex) -> bool:
    """Any loss-scaling call anywhere in the file."""
    return any(is_scaling_call(site) for site in index.calls)
