"""How gradients are computed and whether the loss was scaled first (rules AMP301, AMP305,
AMP306): backward calls, where their gradients are reduced, where their loss is scaled, static
scaling and master weights — each as a condition over the script's configurations."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Callable

import libcst as cst

from amplint.cases import Made, function_path, positional_parameters
from amplint.conditions import ALWAYS, NEVER, Condition, truthy
from amplint.index import CallSite, FileIndex, Scope, dotted, string_value
from amplint.precision import PrecisionModel, Reduced
from amplint.values import fold

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
    helper: str | None = None  # a call of this module's helper that runs the backward


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


def loss_from_caller(backward: Backward) -> bool:
    """The loss is a parameter of the function (or a loop over one): a generic helper such as
    ``def parallel_backward(losses)`` or an optimizer's ``compute_gradients(loss, ...)``, whose
    callers decide whether they pass a scaled loss."""
    return _loss_parameter(backward) is not None


def _loss_parameter(backward: Backward) -> str | None:
    name = dotted(backward.loss) if backward.loss is not None else None
    scope = backward.site.scope
    if name is None or scope.node is None:
        return None
    source = backward.site.loop_iter(name)
    if source is not None:
        name = dotted(source)
    if name is not None and name in scope.params and name not in scope.assigned:
        return name
    return None


def through_callers(backward: Backward, model: PrecisionModel) -> list[tuple[Backward, Condition]]:
    """A backward of a loss its function's caller passes, seen from each call of this module
    that runs it: (the call as a backward of the loss it passes, where the helper's backward
    runs on that call — its tests bound to what the call passes). None when another module
    calls the helper too (those callers decide)."""
    name = _loss_parameter(backward)
    scope = backward.site.scope
    while scope.node is not backward.site.function and scope.parent is not None:
        scope = scope.parent
    if name is None or function_path(scope) in model.cases.received:
        return []
    positional = positional_parameters(scope)
    found = []
    for call in model.cases.callers(scope):
        passed = call.arg(positional.index(name) if name in positional else None, name)
        if passed is None:
            continue
        runs = model.cases.runs_along(backward.site, (call,))
        if runs.possible:
            found.append((Backward(call, passed, backward.keras, call.name), runs))
    return found


def scaled(backward: Backward, model: PrecisionModel) -> Condition:
    """Where the loss of ``backward`` is scaled: inside ``with amp.scale_loss(...)``, or the
    loss is ``scaler.scale(loss)`` (in the configurations the scaler is enabled), ``loss * K``,
    or a name bound to one of those on the paths that reach the backward."""
    site = backward.site
    if any(is_scaling_call(outer) for outer in model.index.with_calls(site)):
        return ALWAYS
    return _scaled(_loss(backward), site.scope, site.order, model, 0)


def _loss(backward: Backward):
    """The loss, or what the loop it is a variable of runs over (``for l in losses:``)."""
    name = dotted(backward.loss) if backward.loss is not None else None
    return backward.site.loop_iter(name) or backward.loss


def _scaled(expr, scope: Scope, order: int | None, model: PrecisionModel, depth: int) -> Condition:
    if expr is None or depth > 4:
        return NEVER
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Multiply):
        if _scale_factor(expr.left, scope, model) or _scale_factor(expr.right, scope, model):
            return ALWAYS  # static scaling: ``loss * 1024``, ``loss * loss_scale``
    if isinstance(expr, cst.BinaryOperation):  # ``loss / accum_steps`` scales nothing
        return _scaled(expr.left, scope, order, model, depth + 1)
    inner = model.index.site(expr)
    if inner is not None:
        if not is_scaling_call(inner):
            return NEVER
        return scaler_enabled(inner, model)
    if isinstance(expr, (cst.List, cst.Tuple)):
        result = NEVER
        for element in expr.elements:
            result = result | _scaled(element.value, scope, order, model, depth + 1)
        return result
    name = dotted(expr)
    if name is None:
        return NEVER
    source = scope.loops.get(name)
    if source is not None and name not in scope.assigned:
        return _scaled(source, scope, order, model, depth + 1)
    result = NEVER
    for definition in model.cases.definitions(name, scope, order):
        if definition.expr is None:
            continue
        here = _scaled(definition.expr, definition.scope, definition.order, model, depth + 1)
        result = result | (here & definition.condition)
    return result


def _scale_factor(expr, scope: Scope, model: PrecisionModel) -> bool:
    """A loss scale: named so (``loss_scale``, ``self.scale``) or a number of 2 or more."""
    name = dotted(expr)
    if name is not None and "scale" in name.rsplit(".", 1)[-1].lower():
        return True
    value = fold(expr, model.index, scope)
    return value is not None and isinstance(value.value, (int, float)) and value.value >= 2


def scaler_enabled(call: CallSite, model: PrecisionModel) -> Condition:
    """Where a scaling call really scales: ``scaler.scale(loss)`` with
    ``scaler = GradScaler(enabled=...)`` scales where ``enabled`` is true (everywhere when the
    scaler's construction is not known)."""
    if call.receiver is None:
        return ALWAYS
    result = NEVER
    for condition, value in model.cases.cases(call.receiver, call.scope, call.order):
        if isinstance(value, Made) and (value.site.name or "").endswith("GradScaler"):
            flag = value.site.arg(None, "enabled")
            on = model.cases.truth(flag, value.site.scope, value.site.order) if flag else ALWAYS
            result = result | (condition & on)
        elif value is None:
            continue
        else:
            result = result | condition
    return result


def gradient_facts(backward: Backward, model: PrecisionModel) -> list[Reduced]:
    """Where ``backward`` computes reduced-precision gradients: the whole process is reduced,
    or the forward that made its loss ran in an autocast block or through a model with
    reduced weights (followed through the names the loss is computed from). A loss that
    cannot be followed takes the switches of its own function. Only this module's switches
    count: a module that another one runs in float16 scales (or not) under conditions of its
    own, which amplint cannot relate to the importer's."""
    site = backward.site
    facts = [f for f in model.process_at(site) + model.blocks_at(site) if f.local]
    flow = _flow(_loss(backward), site.scope, site.order, model, 0, set())
    if flow is None:
        facts += _function_switches(site, model)
    else:
        facts += flow
    return facts


def _flow(expr, scope: Scope, order: int | None, model: PrecisionModel, depth: int, seen: set):
    """Facts of the computations ``expr`` comes from; None when it cannot be followed."""
    if expr is None or depth > 5:
        return None
    name = dotted(expr)
    if name is not None and not isinstance(expr, cst.Call):
        source = scope.loops.get(name)
        if source is not None and name not in scope.assigned:
            return _flow(source, scope, order, model, depth + 1, seen)
        if (name, id(scope), order) in seen:
            return []
        seen.add((name, id(scope), order))
        definitions = model.cases.definitions(name, scope, order)
        if not definitions or all(d.expr is None for d in definitions):
            return None
        found: list[Reduced] = []
        for definition in definitions:
            if definition.expr is None:
                continue
            assign = _assignment_of(definition, model)
            if _detached(definition.expr) or (
                assign is not None and model.no_grad(assign.ancestors)
            ):
                continue  # computed without gradients: backward stops there
            here = list(_value_facts(definition.expr, definition.scope, definition.order, model))
            if assign is not None:
                here += model._with_blocks(assign.ancestors, assign.scope)
                here += model._function_blocks(assign.scope.node, 0)
            inner = _names_flow(
                definition.expr, definition.scope, definition.order, model, depth, seen
            )
            for fact in here + inner:
                narrowed = fact.narrowed(definition.condition)
                if narrowed is not None:
                    found.append(narrowed)
        for stored in model.index.items_stored(name, scope, order):  # ``inputs[k] = ...``
            found += _flow(stored.value, stored.scope, stored.order, model, depth + 1, seen) or []
        return found
    return list(_value_facts(expr, scope, order, model)) + _names_flow(
        expr, scope, order, model, depth, seen
    )


def _names_flow(expr, scope, order, model, depth, seen) -> list[Reduced]:
    found: list[Reduced] = []
    for name in _names(expr):
        inner = _flow(name, scope, order, model, depth + 1, seen)
        if inner:
            found += inner
    return found


def _assignment_of(definition, model: PrecisionModel):
    for assign in model.index.assigns:
        if assign.value is definition.expr and assign.order == definition.order:
            return assign
    return None


def _value_facts(expr, scope: Scope, order: int | None, model: PrecisionModel) -> Iterator:
    """Reduced-weight models called in ``expr``."""
    for call in _calls(expr):
        site = model.index.site(call)
        if site is None or site.qualname is not None:
            continue
        yield from model.weights_of(call.func, scope, site.order)


def _function_switches(site: CallSite, model: PrecisionModel) -> list[Reduced]:
    """The autocast blocks and reduced-weight models of the function holding ``site``."""
    facts: list[Reduced] = []
    for call in model.index.calls_in(site.function):
        if call.qualname is None and call.name is not None:
            facts += model.weights_of(call.node.func, call.scope, call.order)
        if any(kind == "with" for kind, _ in call.ancestors):
            facts += model._with_blocks(call.ancestors, call.scope)
    return facts


def _detached(expr: cst.CSTNode) -> bool:
    """``x.detach()``: no gradient flows back into ``x``."""
    return (
        isinstance(expr, cst.Call)
        and isinstance(expr.func, cst.Attribute)
        and expr.func.attr.value in ("detach", "detach_")
    )


def _names(expr: cst.CSTNode) -> Iterator[cst.BaseExpression]:
    """Names and dotted names read in ``expr`` (not called), not behind ``.detach()``."""
    if isinstance(expr, (cst.Name, cst.Attribute)) and dotted(expr) is not None:
        yield expr  # type: ignore[misc]
        return
    if _detached(expr):
        return
    if isinstance(expr, cst.Call):
        for argument in expr.args:
            yield from _names(argument.value)
        if isinstance(expr.func, cst.Attribute):
            yield from _names(expr.func.value)
        return
    for child in expr.children:
        yield from _names(child)


def _calls(expr: cst.CSTNode) -> Iterator[cst.Call]:
    if _detached(expr):
        return
    if isinstance(expr, cst.Call):
        yield expr
    for child in expr.children:
        yield from _calls(child)


def named_master_weights(condition: Condition) -> Condition:
    """Where an option named ``multi_precision`` that ``condition`` reads is set: the
    optimizer's master weights, configured where this module cannot see
    (``args.optimizer.multi_precision`` given to another module's Trainer)."""
    result = NEVER
    for option in condition.options:
        if option.shown.lstrip("-").rsplit(".", 1)[-1].replace("-", "_") == "multi_precision":
            result = result | truthy(option)
    return result


def master_weights(model: PrecisionModel) -> Condition:
    """Where ``multi_precision`` master weights are on: a ``multi_precision=`` argument or a
    ``'multi_precision'`` dict entry, written or set (``params['multi_precision'] = True``)
    on the paths that run; a value amplint cannot tell counts as on."""
    index, cases = model.index, model.cases
    result = NEVER

    def on(value, scope: Scope, order: int | None) -> Condition:
        found = cases.cases(value, scope, order)
        off = NEVER
        for condition, written in found:
            if written is False or written == 0 or written is None:
                off = off | condition
        return ~off

    for site in index.calls:
        flag = site.arg(None, "multi_precision")
        if flag is not None:
            result = result | (on(flag, site.scope, site.order) & cases.runs(site))
        for argument in site.node.args:
            entry = _entry(argument.value)
            if entry is not None:
                result = result | (on(entry, site.scope, site.order) & cases.runs(site))
    for assign in index.assigns:
        entry = _entry(assign.value)
        if entry is not None:
            path = cases.path(assign.ancestors) & cases.reach(assign.scope.node)
            result = result | (on(entry, assign.scope, assign.order) & path)
    for assign in index.item_assigns:
        if string_value(assign.key) == "multi_precision":
            path = cases.path(assign.ancestors) & cases.reach(assign.scope.node)
            result = result | (on(assign.value, assign.scope, assign.order) & path)
    return result


def _entry(value: cst.BaseExpression) -> cst.BaseExpression | None:
    if isinstance(value, cst.Dict):
        for element in value.elements:
            if (
                isinstance(element, cst.DictElement)
                and string_value(element.key) == "multi_precision"
            ):
                return element.value
    if isinstance(value, cst.Call) and dotted(value.func) == "dict":
        for argument in value.args:
            if argument.keyword is not None and argument.keyword.value == "multi_precision":
                return argument.value
    return None


def static_scaling(source: str) -> bool:
    """A static loss scale set through an API argument (``grad_scale=K``)."""
    return bool(_STATIC.search(source))


def uses_loss_scaling(index: FileIndex) -> bool:
    """Any loss-scaling call anywhere in the file."""
    return any(is_scaling_call(site) for site in index.calls)


_STEPS = ("step", "apply_gradients", "minimize", "update_parameters")


def trains(site: CallSite, model: PrecisionModel) -> bool:
    """Whether gradients computed at ``site`` are applied: an optimizer or trainer step in its
    function, a function calling it, a function it calls, another method of its class, or
    the module (a profiler timing backward alone, or a test of it, applies none)."""
    index = model.index
    functions = index.runners(site)
    scope: Scope | None = site.scope
    while scope is not None and scope.owner is None:
        scope = scope.parent
    if scope is not None:
        info = index.classes.get(scope.owner or "")
        if info is not None:
            functions += [m.node for m in info.methods.values()]
    for function in functions:
        for _, call in index.timeline(function):
            if call.method in _STEPS:
                return True
    return False
