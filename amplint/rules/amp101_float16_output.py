"""A model output computed in float16 reaches a loss, a softmax or a metric without a cast.

Why it matters: softmax and cross-entropy in float16 overflow (`exp` of logits above ~11),
lose the small probabilities that carry the gradient signal, and round the loss itself to 3
significant digits. Mixed precision keeps the model's body in float16 and its output in float32.

Checked: a model with float16 *weights* — Gluon `net.cast(dtype)`, PyTorch `.half()` or
`.to(torch.float16)`, a DeepSpeed engine whose configuration enables fp16 — in the
configurations that cast it (`net.cast(opt.dtype)`: with `--dtype float16`), whose outputs
reach a loss (a `gluon.loss` or `torch.nn` loss object, also held in an attribute, a dict, a
wrapper such as `DataParallelCriterion`, a parameter, a loss class of the project, or what
a loss factory of the project returns: `create_loss(args)`), a softmax (`nd.softmax`,
`F.softmax`, `F.cross_entropy`, `.softmax()`) or a metric's `update(labels, preds)`. Outputs
are followed through names, lists (comprehensions, `.append`, items stored one by one,
`torch.cat`/`stack`), items, reshapes, arithmetic (`teacher(x) / T`) and what a helper method or
function of the file returns (`self._before_loss(x)`); inside the model classes a script casts
(also from another module) the outputs of their layers count. Keras: the final softmax
layer under a `mixed_float16` policy without `dtype='float32'` (last layer of a `Sequential`,
last `model.add`, the `outputs` of a functional `Model`, the layer a subclassed model's `call`
returns) and Keras-CV/Keras-Hub classifiers with a softmax head. Not reported: outputs cast to
float32 on the way, a model whose own `forward`/`hybrid_forward` returns float32 (a class of
the same file; for a class of another file silence the line with `# amplint: ignore[AMP101]`),
losses under `amp.init` or `autocast` (MXNet's lists and autocast compute them in float32),
a cast in a branch the loss does not run in, and code that trains nothing (under `no_grad`,
`inference_mode`, in `eval()` mode, in a validation/test/export or decoding function, or in
a module without any backward or optimizer whose importers train nothing either, or a model
another module casts only in such code), and
attention softmax whose weights the same function multiplies back in.

Example:

    net.cast("float16")
    loss = loss_fn(net(x), y)                       # AMP101

Fix: cast the output first — `loss_fn(net(x).astype('float32'), y)` (PyTorch: `.float()`);
in Keras give the final layer `dtype='float32'`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import libcst as cst

from amplint.cases import Foreign, positional_parameters
from amplint.conditions import ALWAYS, NEVER, Condition
from amplint.frameworks import keras, mxnet, torch
from amplint.index import COMP, CallSite, ClassInfo, FileIndex, Scope, dotted, string_value
from amplint.interface import condition_from
from amplint.precision import FLOAT16, Reduced, union
from amplint.rules.api import Issue, RuleContext
from amplint.switches import AUTOCAST


def check(ctx: RuleContext) -> Iterator[Issue]:
    """Outputs of a float16 model fed to a loss, softmax or metric; Keras final softmax
    layers under ``mixed_float16``."""
    yield from _model_outputs(ctx)
    yield from _keras_softmax(ctx)


# ---- Gluon and PyTorch: outputs of a float16 model reaching a loss ---------------------------
def _model_outputs(ctx: RuleContext) -> Iterator[Issue]:
    model = ctx.model
    switched = any(fact.how == "weights" for _, _, found in model.switches for fact in found)
    spread = any(spread.how == "weights" for spread in model.spreads)
    if not (switched or spread or model.received):  # nothing here can hold float16 weights
        return
    # An object another module passes in holds its facts over that module's options: an
    # importer's process-wide autocast (amp.init) is related to them by its own options.
    importers_autocast = _importers_autocast(model)
    for site, arguments, what in _consumers(ctx):
        if model.inference_only(site):
            continue
        runs = model.cases.runs(site)
        allowed = runs & ~model.autocast_at(site)
        own = [f for f in model.process_at(site) if f.how == AUTOCAST and f.local]
        passed = runs & ~union(own + model.blocks_at(site)) & ~importers_autocast
        if not (allowed | passed).possible:
            continue
        beside = _beside_forward(site, ctx.index)
        for argument in arguments:
            # a model cast only to be evaluated (here or by another module) trains nothing
            facts = [
                f
                for f in _outputs(argument, site.scope, site.order, site, ctx, 0)
                if not f.evaluation
            ]
            if beside:  # another module's switch trains the class through its forward only
                facts = [fact for fact in facts if fact.local]
            condition = union([f for f in facts if not f.passed], (FLOAT16,)) & allowed
            condition = condition | (union([f for f in facts if f.passed], (FLOAT16,)) & passed)
            if condition.possible:
                yield Issue(
                    argument,
                    f"float16 model output fed to {what} without a cast: cast it to float32 "
                    "first (.astype('float32') / .float())",
                    condition=condition,
                )


def _importers_autocast(model) -> Condition:
    """Where the importers' process-wide autocast is on, over their own options (every
    configuration when one of them does not tell)."""
    found = NEVER
    for spread in model.spreads:
        if spread.names is None and spread.how == AUTOCAST:
            if not spread.condition:
                return ALWAYS
            found = found | condition_from(json.loads(spread.condition))
    return found


# Methods that keep a tensor's dtype (an output reshaped or indexed is still float16).
_KEEPS_DTYPE = frozenset(
    "view reshape squeeze unsqueeze flatten transpose permute contiguous clone detach "
    "expand_dims swapaxes mean sum max split chunk".split()
)
_FORWARDS = ("forward", "hybrid_forward", "__call__", "call")
_MAX_DEPTH = 10  # steps from a consumer's argument back to the model call
# Library functions joining tensors: the result keeps their dtype (``torch.cat(outputs)``).
_JOINS = frozenset({"cat", "concat", "concatenate", "stack", "hstack", "vstack"})


def _outputs(
    expr: cst.BaseExpression | None,
    scope: Scope,
    order: int | None,
    site: CallSite,
    ctx: RuleContext,
    depth: int,
) -> list[Reduced]:
    """Facts under which ``expr`` holds the output of a model with float16 weights, not cast
    to float32 on the way: ``net(x)``, names bound to it, lists of outputs (comprehensions,
    ``.append``, items stored one by one, ``torch.cat``) and their elements (``for h in
    hidden_states:``), items and reshapes of one, arithmetic on one (``teacher(x) / T``)."""
    if expr is None or depth > _MAX_DEPTH:
        return []
    again = lambda inner, s=scope, o=order: _outputs(inner, s, o, site, ctx, depth + 1)  # noqa: E731
    if isinstance(expr, (cst.List, cst.Tuple)):
        return [fact for element in expr.elements for fact in again(element.value)]
    if isinstance(expr, cst.BinaryOperation):
        return again(expr.left) + again(expr.right)
    if isinstance(expr, cst.Subscript):
        return again(expr.value)
    if isinstance(expr, (cst.ListComp, cst.GeneratorExp)):
        return again(expr.elt)
    if isinstance(expr, cst.Call):
        if _float32_cast(expr, scope, ctx.index, 0):
            return []
        func = expr.func
        if isinstance(func, cst.Attribute) and func.attr.value in _KEEPS_DTYPE:
            return again(func.value)
        if dotted(func) is None:
            return []
        inner = ctx.index.site(expr)
        if inner is not None and (inner.qualname or "").rsplit(".", 1)[-1] in _JOINS:
            return [fact for argument in expr.args for fact in again(argument.value)]
        if inner is not None and inner.qualname is not None:
            return []  # a library function, not a model
        helper = _helper(func, scope, ctx.index)
        if helper is not None:  # ``self._before_loss(x)``: what the method returns
            return [fact for r in helper.returns for fact in again(r, helper, None)]
        return _model_facts(func, scope, order, ctx)
    if isinstance(expr, cst.Name):  # an element of a list of outputs, in a comprehension or loop
        source = _comprehension_source(expr.value, site) or site.loop_iter(expr.value)
        if source is not None:
            return again(source)
    name = dotted(expr)
    if name is None:
        return []
    found: list[Reduced] = []
    for definition in ctx.model.cases.definitions(name, scope, order):
        if definition.expr is None and definition.value is None:  # a parameter
            found += _passed_in(name, definition.scope, ctx, depth)
            continue
        for fact in _outputs(
            definition.expr, definition.scope, definition.order, site, ctx, depth + 1
        ):
            narrowed = fact.narrowed(definition.condition)
            if narrowed is not None:
                found.append(narrowed)
    for stored in ctx.index.items_stored(name, scope, order):  # ``inputs[key] = out``
        found += again(stored.value, stored.scope, stored.order)
    for append in ctx.index.calls_named(f"{name}.append") + ctx.index.calls_named(f"{name}.extend"):
        if append.node.args and append.function is site.function:
            found += again(append.node.args[0].value, append.scope, append.order)
    return found


def _passed_in(name: str, function: Scope, ctx: RuleContext, depth: int) -> list[Reduced]:
    """Facts under which the training calls of this module pass model outputs to the
    parameter ``name`` of ``function``: calls of a helper (``compute_loss(net(x), y)``,
    ``self.dist_loss(logits, ...)``) and, for a forward, calls of the objects its class built
    (``loss(out["image"], out["text"])``), each where it runs outside autocast."""
    if name not in function.params or not isinstance(function.node, cst.FunctionDef):
        return []
    parameters = positional_parameters(function)
    position = parameters.index(name) if name in parameters else None
    found: list[Reduced] = []
    for call in _calls_of(function, ctx):
        if ctx.model.inference_only(call):
            continue
        if any(argument.star for argument in call.node.args):
            continue  # maybe in *args / **kwargs: nothing is known
        argument = call.arg(position, name)
        where = ctx.model.cases.runs(call) & ~ctx.model.autocast_at(call)
        for fact in _outputs(argument, call.scope, call.order, call, ctx, depth + 1):
            narrowed = fact.narrowed(where)
            if narrowed is not None:
                found.append(narrowed)
    return found


def _calls_of(function: Scope, ctx: RuleContext) -> Iterator[CallSite]:
    """The calls of this module that run ``function``: those naming it, and for a forward
    the calls of the objects its class built."""
    yield from ctx.model.cases.callers(function)
    if function.owner is None or function.node.name.value not in _FORWARDS:
        return
    for call in ctx.index.calls:
        if call.qualname is None and any(
            isinstance(root, CallSite) and root.name == function.owner
            for _, root in ctx.model.roots(call.node.func, *_at(call))
        ):
            yield call


def _beside_forward(site: CallSite, index: FileIndex) -> bool:
    """Code in a method of a model class that its forward never runs, through the methods it
    calls on ``self`` (``nll`` for rescoring, a helper another class calls under no_grad): a
    module that trains the class runs its forward."""
    info = _enclosing_class(site.scope, index)
    if info is None:
        return False
    pending = [info.methods[name] for name in _FORWARDS if name in info.methods]
    if not pending:
        return False
    reached = {id(scope) for scope in pending}
    while pending:
        for call in index.calls_in(pending.pop().node):
            callee = index.local_callee(call)
            if callee is not None and id(callee) not in reached:
                reached.add(id(callee))
                pending.append(callee)
    scope: Scope | None = site.scope
    while scope is not None and scope.owner is None:
        scope = scope.parent
    return scope is not None and id(scope) not in reached


def _helper(func: cst.BaseExpression, scope: Scope, index: FileIndex) -> Scope | None:
    """The method of the enclosing class (``self.name``) or the function of this module
    (``name``) a call runs, when it computes its result in this file."""
    name = dotted(func) or ""
    if name.startswith("self.") and name.count(".") == 1:
        info = _enclosing_class(scope, index)
        return info.methods.get(name[5:]) if info is not None else None
    function = index.functions.get(name)
    return function if function is not None and function.parent is not None else None


def _enclosing_class(scope: Scope | None, index: FileIndex) -> ClassInfo | None:
    """The class of this file whose method holds ``scope``."""
    while scope is not None and scope.owner is None:
        scope = scope.parent
    return index.classes.get(scope.owner or "") if scope is not None else None


def _model_facts(func: cst.BaseExpression, scope: Scope, order: int | None, ctx: RuleContext):
    """float16 weight facts of the model ``func`` (none when its own forward casts to
    float32)."""
    roots = ctx.model.roots(func, scope, order)
    if any(isinstance(r, CallSite) and _casts_own_output(r, ctx.index) for _, r in roots):
        return []
    return [fact for fact in ctx.model.weights_of(func, scope, order) if fact.dtype == FLOAT16]


def _casts_own_output(root: CallSite, index: FileIndex) -> bool:
    """A class of this file whose forward returns its output cast to float32
    (``return out.astype('float32')``, ``.float()``, ``F.cast``)."""
    forward = _forward_of(root.name, index, 0)
    if forward is None or not forward.returns:
        return False
    return all(_float32_cast(r, forward, index, 0) for r in forward.returns)


def _forward_of(class_name: str | None, index: FileIndex, depth: int) -> Scope | None:
    """The forward method of a class defined in the file, inherited from a local base too."""
    info = index.classes.get(class_name or "")
    if info is None or depth > 5:
        return None
    for method in _FORWARDS:
        if method in info.methods:
            return info.methods[method]
    for base in info.bases:
        found = _forward_of(base, index, depth + 1)
        if found is not None:
            return found
    return None


def _float32_cast(expr: cst.BaseExpression, scope: Scope, index: FileIndex, depth: int) -> bool:
    """``x.astype('float32')``, ``x.float()``, ``F.cast(x, 'float32')``, ``x.to(torch.float32)``,
    a tuple of those, or a name whose last assignment in the method is one."""
    if depth > 4:
        return False
    if isinstance(expr, (cst.Tuple, cst.List)):
        return bool(expr.elements) and all(
            _float32_cast(e.value, scope, index, depth + 1) for e in expr.elements
        )
    if isinstance(expr, cst.Name):
        values = scope.assigned.get(expr.value)
        return bool(values) and _float32_cast(values[-1], scope, index, depth + 1)
    if not isinstance(expr, cst.Call) or not isinstance(expr.func, cst.Attribute):
        return False
    method = expr.func.attr.value
    if method == "float" and not expr.args:
        return True
    if method not in ("astype", "cast", "Cast", "to", "type"):
        return False
    for argument in expr.args:
        if argument.keyword is not None and argument.keyword.value != "dtype":
            continue
        name = dotted(argument.value)
        text = string_value(argument.value) or (name.rsplit(".", 1)[-1] if name else None)
        if text in ("float32", "float"):
            return True
    return False


def _consumers(ctx: RuleContext) -> Iterator[tuple[CallSite, list[cst.BaseExpression], str]]:
    """Loss, softmax and metric calls with the arguments that receive predictions."""
    index, model = ctx.index, ctx.model
    for site in index.calls:
        qualname = site.qualname or ""
        if qualname in mxnet.SOFTMAX or qualname in torch.FUNCTIONAL_LOSSES:
            if not _attention_weights(site, index):
                yield site, [a.value for a in site.node.args[:1]], "a softmax or loss"
            continue
        if site.method in ("softmax", "log_softmax") and site.receiver is not None:
            if (qualname == "" or site.qualname is None) and not _attention_weights(site, index):
                yield site, [site.receiver], "a softmax"
            continue
        if site.qualname is not None or (
            site.name is None and not isinstance(site.node.func, (cst.Subscript, cst.Call))
        ):
            continue
        if site.method == "update" and site.receiver is not None:
            roots = model.roots(site.receiver, *_at(site))
            if any(_is_metric(root) for _, root in roots if isinstance(root, _BUILT)):
                yield site, [a.value for a in site.node.args[1:2]], "a metric"
            continue
        roots = model.roots(site.node.func, *_at(site))
        if any(_is_loss(root, index) for _, root in roots if isinstance(root, _BUILT)) or (
            _declared_loss(site, index)
        ):
            yield site, [a.value for a in site.node.args[:1]], "a loss"


def _attention_weights(site: CallSite, index: FileIndex) -> bool:
    """A softmax computing weights that the same function multiplies with other values
    (``w = softmax(e); c = sum(h * w)``, ``matmul(w, v)``): attention inside the model, not
    an output reaching a loss."""
    if (site.method or (site.qualname or "").rsplit(".", 1)[-1]) != "softmax":
        return False
    statement = index.statement_of(site.node)
    body = getattr(statement, "body", ())
    assign = body[0] if body else None
    if not isinstance(assign, cst.Assign) or len(assign.targets) != 1:
        return False
    target = assign.targets[0].target
    if not isinstance(target, cst.Name) or not isinstance(site.scope.node, cst.FunctionDef):
        return False
    weighted = _Weighting()
    site.scope.node.visit(weighted)
    return target.value in weighted.names


class _Weighting(cst.CSTVisitor):
    """Names used as factors of a product (``*``, ``@``, ``matmul``, ``bmm``, ``einsum``),
    also through methods (``w.view(...)``)."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def _add(self, expr: cst.BaseExpression) -> None:
        while isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute):
            expr = expr.func.value
        if isinstance(expr, cst.Name):
            self.names.add(expr.value)

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if isinstance(node.operator, (cst.Multiply, cst.MatrixMultiply)):
            self._add(node.left)
            self._add(node.right)

    def visit_Call(self, node: cst.Call) -> None:
        name = (dotted(node.func) or "").rsplit(".", 1)[-1]
        if name in ("matmul", "bmm", "einsum", "mm"):
            for argument in node.args:
                self._add(argument.value)


_METRIC_NAME = re.compile(r"(Accuracy|Metric|Error|RMSE|MSE|MAE|Perplexity|F1|MCC|Acc)$")


def _is_metric(root: CallSite | Foreign) -> bool:
    """An evaluation metric taking ``update(labels, preds)``: MXNet's ``mx.metric`` and
    ``gluon.metric``, a metrics module of a library, or a class named like one (also built
    by another module, which passes it in)."""
    qualname, name = _built_by(root)
    if qualname.startswith(mxnet.METRIC_PREFIX) or ".metrics." in qualname:
        return True
    last = (qualname or name).rsplit(".", 1)[-1]
    return bool(_METRIC_NAME.search(last))


_BUILT = (CallSite, Foreign)  # roots known by what built them


def _built_by(root: CallSite | Foreign) -> tuple[str, str]:
    """(resolved name, name as written) of what built an object; another module's object is
    known by what built it there (its resolved name, or the name written there)."""
    if isinstance(root, Foreign):
        return (root.kind, root.kind) if "." in root.kind else ("", root.kind)
    return root.qualname or "", root.name or ""


def _at(site: CallSite) -> tuple[Scope, int]:
    return site.scope, site.order


def _is_loss(root: CallSite | Foreign, index: FileIndex) -> bool:
    """A loss object: Gluon's ``gluon.loss.*``, PyTorch's ``nn.*Loss``, a loss class of the
    project (named ``...Loss``/``...Criterion``/``...CTC``, or deriving from a loss) or what
    a function of the project named as a loss factory returns (``create_loss(args)``,
    ``build_criterion(cfg)``), also built by another module, which passes it in."""
    qualname, name = _built_by(root)
    if qualname.startswith(mxnet.LOSS_PREFIX):
        return True
    last = (qualname or name).rsplit(".", 1)[-1]
    if qualname.startswith("torch.nn.") and last.endswith("Loss"):
        return True
    if qualname.startswith(("torch.", "mxnet.", "tensorflow.", "keras.")):
        return False
    if last.endswith(("Loss", "Criterion", "CTC")) and not last.startswith("Parallel"):
        return True
    if _LOSS_FACTORY.search(last):
        return True
    info = index.classes.get(name) if isinstance(root, CallSite) else None
    return info is not None and any(b.rsplit(".", 1)[-1].endswith("Loss") for b in info.bases)


# ``create_loss``, ``build_criterion``, ``get_loss_fn`` (not ``get_loss_scaler``, nor a loss
# class, whose name is capitalised)
_LOSS_FACTORY = re.compile(r"^[a-z]\w*_(loss|criterion)(es|s)?(_fn|_func|_function|_module)?$")
_LOSS_TYPE = re.compile(r"\b\w*(Loss|Criterion|CTC)\b")


def _declared_loss(site: CallSite, index: FileIndex) -> bool:
    """A call of a value its code declares a loss: a parameter annotated as one
    (``loss_fn: Loss``), an element of a list annotated so (``for loss_function in
    self.loss_functions`` with ``loss_functions: List[loss.Loss]``), directly or through the
    ``self.`` attribute a method stores it in."""
    func = site.node.func
    if isinstance(func, cst.Name):
        source = _comprehension_source(func.value, site)
        scope: Scope | None = site.scope
        while source is None and scope is not None and scope.node is not None:
            source = scope.loops.get(func.value)
            scope = scope.parent
        name = dotted(source) if source is not None else func.value
    else:  # ``self.ctc(...)`` with ``self.ctc = ctc`` given as ``ctc: CTC``
        name = dotted(func)
    if name is None:
        return False
    if name.startswith("self.") and name.count(".") == 1:
        info = _enclosing_class(site.scope, index)
        for method in info.methods.values() if info is not None else ():
            for value in method.assigned.get(name, []):
                if isinstance(value, cst.Name) and _annotated(method, value.value):
                    return True
        return False
    scope = site.scope
    while scope is not None and scope.node is not None:
        if name in scope.params:
            return _annotated(scope, name)
        scope = scope.parent
    return False


def _annotated(scope: Scope, parameter: str) -> bool:
    """Whether ``parameter`` of the function ``scope`` is annotated as a loss (or a
    collection of losses)."""
    function = scope.node
    if not isinstance(function, cst.FunctionDef):
        return False
    params = function.params
    for param in (*params.posonly_params, *params.params, *params.kwonly_params):
        if param.name.value == parameter and param.annotation is not None:
            text = cst.Module([]).code_for_node(param.annotation.annotation)
            return bool(_LOSS_TYPE.search(text))
    return False


def _comprehension_source(name: str, site: CallSite) -> cst.BaseExpression | None:
    """What a comprehension variable around ``site`` runs over (zip's matching argument)."""
    for comprehension in site.inside(COMP):
        for_in = getattr(comprehension, "for_in", None)
        while for_in is not None:
            target, iterable = for_in.target, for_in.iter
            if isinstance(target, cst.Name) and target.value == name:
                return iterable
            if isinstance(target, cst.Tuple) and isinstance(iterable, cst.Call):
                names = [
                    e.value.value if isinstance(e.value, cst.Name) else None
                    for e in target.elements
                ]
                if dotted(iterable.func) == "zip" and name in names:
                    position = names.index(name)
                    if position < len(iterable.args):
                        return iterable.args[position].value
            for_in = for_in.inner_for_in
    return None


# ---- Keras: the final softmax layer under mixed_float16 -------------------------------------
def _keras_softmax(ctx: RuleContext) -> Iterator[Issue]:
    policies = [
        fact
        for fact in ctx.model.process
        if fact.why == "a mixed precision policy" and fact.dtype == FLOAT16
    ]
    policy: Condition = union(policies, (FLOAT16,)) if policies else NEVER
    if not policy.possible:
        return
    for layer in _final_layers(ctx.index):
        site = ctx.index.site(layer)
        if site is None or site.qualname not in keras.SOFTMAX_LAYERS or not _softmax(site, ctx):
            continue
        if not _reduced_dtype(site, ctx):
            continue
        condition = policy & ctx.model.cases.runs(site)
        if condition.possible:
            yield Issue(
                site.node,
                "final softmax layer runs in float16 under mixed_float16: give it dtype='float32'",
                condition=condition,
            )
    for site in ctx.index.calls:
        if not _softmax_classifier(site, ctx):
            continue
        condition = policy & ctx.model.cases.runs(site)
        if condition.possible:
            yield Issue(
                site.node,
                "the classifier's softmax head runs in float16 under mixed_float16: return "
                "logits (activation=None) and use a from_logits loss, or give the head float32",
                condition=condition,
            )


# Keras-CV / Keras-Hub task models with a softmax head: (prefix, default activation).
_CLASSIFIERS = (
    ("keras_cv.models.", "softmax"),
    ("keras_hub.models.", None),
    ("keras_nlp.models.", None),
)


def _softmax_classifier(site: CallSite, ctx: RuleContext) -> bool:
    """``keras_cv.models.ImageClassifier(...)`` and the like, whose Dense head computes a
    softmax in the policy's dtype (no float32 ``head_dtype``)."""
    qualname = site.qualname or ""
    if not qualname.endswith("Classifier"):
        return False
    default = next((d for p, d in _CLASSIFIERS if qualname.startswith(p)), False)
    if default is False:
        return False
    head = site.arg(None, "head_dtype")
    if head is not None and ctx.model.forced_float32(site, "head_dtype"):
        return False
    activation = site.arg(None, "activation")
    if activation is None:
        return default == "softmax"
    value = ctx.fold(activation, site.scope)
    return (value is not None and value.value == "softmax") or (dotted(activation) or "").endswith(
        "softmax"
    )


def _reduced_dtype(site: CallSite, ctx: RuleContext) -> bool:
    """The layer computes in the policy's float16: no ``dtype`` or an explicit float16 one."""
    expr = site.arg(None, "dtype")
    return expr is None or not ctx.model.forced_float32(site)


def _softmax(site: CallSite, ctx: RuleContext) -> bool:
    if site.qualname is not None and site.qualname.endswith(".Softmax"):
        return True
    position = 0 if site.qualname is not None and site.qualname.endswith(".Activation") else 1
    value = ctx.fold(site.arg(position, "activation"), site.scope)
    if value is not None and value.value == "softmax":
        return True
    name = dotted(site.arg(position, "activation"))
    return name is not None and name.endswith("softmax")


def _final_layers(index: FileIndex) -> Iterator[cst.CSTNode]:
    last_add: dict[str, CallSite] = {}
    for site in index.calls:
        qualname = site.qualname or ""
        if qualname in keras.SEQUENTIAL:
            layers = site.arg(0, "layers")
            if isinstance(layers, (cst.List, cst.Tuple)) and layers.elements:
                yield layers.elements[-1].value
        elif qualname in keras.MODELS:
            outputs = site.arg(1, "outputs")
            elements = outputs.elements if isinstance(outputs, (cst.List, cst.Tuple)) else []
            for output in [e.value for e in elements] or [outputs]:
                layer = _producing_layer(output, index, site)
                if layer is not None:
                    yield layer
        elif site.method == "add" and len(site.node.args) == 1 and site.receiver is not None:
            receiver = dotted(site.receiver)
            if receiver is not None:
                last_add[receiver] = site
    for site in last_add.values():
        yield site.node.args[0].value
    yield from _subclassed_outputs(index)


def _subclassed_outputs(index: FileIndex) -> Iterator[cst.CSTNode]:
    """Layers whose output a subclassed ``keras.Model``'s ``call`` returns: ``self.out(x)``
    with ``self.out = Dense(...)`` set once in ``__init__`` or ``build``, or ``Dense(...)(x)``."""
    for info in index.classes.values():
        call = info.methods.get("call")
        if call is None or not any(index.resolve(base) in keras.MODELS for base in info.bases):
            continue
        for value in call.returns:
            layer = _returned_layer(value, call, info, 0)
            if layer is not None:
                yield layer


def _returned_layer(expr, call: Scope, info: ClassInfo, depth: int) -> cst.CSTNode | None:
    if isinstance(expr, cst.Name) and depth < 4:
        values = call.assigned.get(expr.value, [])
        return _returned_layer(values[-1], call, info, depth + 1) if values else None
    if not isinstance(expr, cst.Call):
        return None
    if isinstance(expr.func, cst.Call):
        return expr.func
    name = dotted(expr.func) or ""
    values = [v for method in info.methods.values() for v in method.assigned.get(name, [])]
    return values[0] if len(values) == 1 and isinstance(values[0], cst.Call) else None


def _producing_layer(expr, index: FileIndex, site: CallSite) -> cst.CSTNode | None:
    """The layer whose call produced ``expr``: ``Dense(10)(x)`` or a name bound once to it."""
    name = dotted(expr) if expr is not None else None
    if name is not None:
        values = index.values_of(name, site.scope)
        expr = values[0] if len(values) == 1 else None
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Call):
        return expr.func
    return None


VALID = [
    # Cast before the loss; a helper that casts; the next layer in float32.
    """
from mxnet import gluon
net.cast("float16")
loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
loss = loss_fn(net(x).astype("float32"), y)
out = to_float32(net(x))
loss2 = loss_fn(out, y)
loss3 = loss_fn(head(net(x)), y)
""",
    # Outputs cast inside the comprehension.
    """
from mxnet import gluon
net.cast("float16")
L = gluon.loss.SoftmaxCrossEntropyLoss()
outputs = [net(X).astype("float32") for X in data]
loss = [L(yhat, y) for yhat, y in zip(outputs, label)]
""",
    # The output rebound after a cast.
    """
from mxnet import gluon
net.cast("float16")
loss_fn = gluon.loss.L2Loss()
out = net(x)
out = out.astype("float32")
loss = loss_fn(out, y)
""",
    # amp.init and autocast compute losses in float32 themselves.
    """
from mxnet import gluon
from mxnet.contrib import amp
amp.init()
loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
loss = loss_fn(net(x), y)
""",
    """
import torch
import torch.nn.functional as F
with torch.autocast("cuda"):
    loss = F.cross_entropy(model(x), y)
""",
    # .half().float() round trip, and a checkpoint saved in half.
    """
import torch
import torch.nn.functional as F
torch.save(model.half().state_dict(), "half.pt")
model = model.half().float()
loss = F.cross_entropy(model(x), y)
""",
    # Keras: the final softmax forced to float32; a softmax inside the model is fine.
    """
from tensorflow import keras
from tensorflow.keras import layers
keras.mixed_precision.set_global_policy("mixed_float16")
model = keras.Sequential([
    layers.Dense(64, activation="softmax"),
    layers.Dense(10),
    layers.Activation("softmax", dtype="float32"),
])
policy_free = keras.Sequential([layers.Dense(10, activation="softmax", dtype=tf.float32)])
""",
    # A subclassed Keras model whose final layer is forced to float32, or is not a softmax.
    """
import tensorflow as tf
from tensorflow import keras
keras.mixed_precision.set_global_policy("mixed_float16")
class Classifier(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = keras.layers.Dense(64, activation="softmax")
        self.out = keras.layers.Dense(10, activation="softmax", dtype="float32")
    def call(self, x):
        return self.out(self.hidden(x))
class Regressor(tf.keras.Model):
    def __init__(self):
        super().__init__()
        self.out = tf.keras.layers.Dense(1)
    def call(self, x):
        return self.out(x)
""",
    # bfloat16 policy, and float32 Keras.
    """
from tensorflow import keras
from tensorflow.keras import layers
keras.mixed_precision.set_global_policy("mixed_bfloat16")
model = keras.Sequential([layers.Dense(10, activation="softmax")])
""",
    # The model's own forward casts its output to float32 (Gluon hybrid_forward, a local base
    # class's forward, PyTorch .float() / .to(torch.float32)).
    """
from mxnet import gluon
class Net(gluon.HybridBlock):
    def hybrid_forward(self, F, x):
        out = self.body(x)
        return F.cast(out, dtype="float32")
class Wide(Net):
    pass
class Pair(gluon.Block):
    def forward(self, x):
        out = self.body(x)
        out = out.astype("float32")
        return out, self.aux(x).astype(np.float32)
net = Wide()
net.cast("float16")
pair = Pair()
pair.cast("float16")
loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
loss = loss_fn(net(x), y)
aux_loss = loss_fn(pair(x), y)
""",
    """
import torch
from torch import nn
class Net(nn.Module):
    def forward(self, x):
        if self.training:
            return self.head(x).float()
        return self.head(x).to(torch.float32)
model = Net().cuda().half()
criterion = nn.CrossEntropyLoss()
loss = criterion(model(x.half()), y)
""",
    # PyTorch: the output is cast with .float().
    """
import torch
from torch import nn
model = Net().half()
criterion = nn.CrossEntropyLoss()
loss = criterion(model(x.half()).float(), y)
""",
]

INVALID = [
    """
import mxnet as mx
from mxnet import gluon
net = build()
net.cast("float16")
loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
metric = mx.metric.Accuracy()
for x, y in loader:
    out = net(x)
    loss = loss_fn(out, y)  # AMP101
    metric.update([y], [out])  # AMP101
    probs = mx.nd.softmax(net(x))  # AMP101
    loss.backward()
""",
    """
from tensorflow import keras
from tensorflow.keras import layers
keras.mixed_precision.set_global_policy("mixed_float16")
model = keras.Sequential([
    layers.Dense(64, activation="relu"),
    layers.Dense(10, activation="softmax"),  # AMP101
])
inputs = keras.Input(shape=(784,))
hidden = layers.Dense(64, activation="relu")(inputs)
outputs = layers.Dense(10, activation="softmax")(hidden)  # AMP101
functional = keras.Model(inputs, outputs)
""",
    # A subclassed model: the final softmax layer set in __init__ and returned by call.
    """
import tensorflow as tf
from tensorflow import keras
tf.keras.mixed_precision.set_global_policy("mixed_float16")
class Classifier(keras.Model):
    def __init__(self, classes=10):
        super().__init__()
        self.hidden = keras.layers.Dense(64, activation="relu")
        self.out = keras.layers.Dense(classes, activation="softmax")  # AMP101
    def call(self, x):
        x = self.hidden(x)
        probs = self.out(x)
        return probs
class Inline(tf.keras.Model):
    def call(self, x):
        return tf.keras.layers.Dense(10, activation="softmax")(x)  # AMP101
class Built(tf.keras.Model):
    def build(self, input_shape):
        self.head = tf.keras.layers.Dense(10, activation="softmax")  # AMP101
    def call(self, x):
        return self.head(x)
""",
    # GluonCV's multi-device loop: a list of outputs, losses in a comprehension.
    """
import argparse
import mxnet as mx
from mxnet import autograd, gluon
parser = argparse.ArgumentParser()
parser.add_argument("--dtype", default="float16")
opt = parser.parse_args()
net.cast(opt.dtype)
L = gluon.loss.SoftmaxCrossEntropyLoss()
train_metric = mx.metric.Accuracy()
with autograd.record():
    outputs = [net(X.astype(opt.dtype, copy=False)) for X in data]
    loss = [L(yhat, y.astype(opt.dtype, copy=False)) for yhat, y in zip(outputs, label)]  # AMP101
train_metric.update(label, outputs)  # AMP101
trainer.step(64)
""",
    """
import torch
import torch.nn.functional as F
from torch import nn
model = Net().cuda().half()
criterion = nn.CrossEntropyLoss()
for x, y in loader:
    logits = model(x.half())
    loss = criterion(logits, y)  # AMP101
    loss2 = F.cross_entropy(model(x.half()), y)  # AMP101
    (loss + loss2).backward()
""",
    # A forward that casts on one path only still returns float16 on the other.
    """
from mxnet import gluon
class Net(gluon.HybridBlock):
    def hybrid_forward(self, F, x):
        out = self.body(x)
        if self.export:
            return out
        return F.cast(out, dtype="float32")
net = Net()
net.cast("float16")
loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
loss = loss_fn(net(x), y)  # AMP101
loss.backward()
""",
]
