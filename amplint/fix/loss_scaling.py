"""AMP301: scale the loss before backward.

MXNet (``amp.init()`` of ``mxnet.contrib.amp`` or ``gluon_amp``, or ``gluon_amp`` imported as a
module, and a trainer this file creates); also AMP306 (``multi_precision`` master weights without
scaling, which keeps its master weights)::

    with amp.scale_loss(loss, trainer) as scaled_loss:
        scaled_loss.backward()              # or autograd.backward(scaled_loss)

with ``amp.init_trainer(trainer)`` added after the trainer is created when it is missing. With
contrib's ``amp``, whose scaled loss must be recorded, a backward that directly follows the
``autograd.record()`` block moves into it.

PyTorch (float16 autocast, a training loop and one optimizer stepped in it): a GradScaler created
before the loop, ``scaler.scale(loss).backward()``, ``scaler.step(optimizer)`` and
``scaler.update()``. A ``.half()`` model is not fixed: GradScaler cannot unscale float16
parameters' gradients. Keras custom loops: see :mod:`amplint.fix.keras_scaling`.
"""

from __future__ import annotations

import libcst as cst

from amplint.findings import Finding
from amplint.fix import keras_scaling
from amplint.fix.api import Edit, FixContext, Unfixable, expression, simple_statement
from amplint.fix.edits import comments_only, insert_before
from amplint.fix.record_scope import move_into_record
from amplint.fix.trainer_init import amp_prefix, init_trainer, initialised
from amplint.frameworks import mxnet, torch
from amplint.index import CallSite, dotted

_BACKWARD_FUNCTIONS = ("mxnet.autograd.backward", "torch.autograd.backward")
_NO_AMP = (
    "no amp.init() and no gluon_amp: import gluon_amp as amp, then use "
    "amp.init_trainer(trainer) and amp.scale_loss(loss, trainer) (or a static loss scale)"
)


def fix(finding: Finding, ctx: FixContext) -> list[Edit]:
    call = ctx.node_at(finding, cst.Call)
    site = ctx.site(call)
    if site.method == "gradient":
        return keras_scaling.fix(ctx, site)
    statement = ctx.own_statement(call, "the backward call")
    if _framework(ctx, site) == "mxnet":
        return _mxnet(ctx, site, statement)
    return _torch(ctx, site, statement)


def _framework(ctx: FixContext, site: CallSite) -> str:
    if site.qualname in _BACKWARD_FUNCTIONS:
        return site.qualname.split(".")[0]
    modules = set(ctx.index.imports.values())
    found = {
        name
        for name, prefixes in (("mxnet", ("mxnet", "gluon_amp")), ("torch", ("torch",)))
        if any(m == p or m.startswith(p + ".") for m in modules for p in prefixes)
    }
    if len(found) != 1:
        raise Unfixable("cannot tell whether this backward is MXNet or PyTorch code")
    return found.pop()


def _loss(site: CallSite) -> cst.BaseExpression:
    loss = site.receiver if site.qualname not in _BACKWARD_FUNCTIONS else site.node.args[0].value
    if loss is None:
        raise Unfixable("cannot tell which loss is differentiated")
    return loss


def _with_loss(statement: cst.CSTNode, site: CallSite, new: cst.BaseExpression):
    """The backward statement with its loss replaced by ``new``."""
    assert isinstance(statement, cst.SimpleStatementLine)
    expr = statement.body[0]
    assert isinstance(expr, cst.Expr) and isinstance(expr.value, cst.Call)
    call = expr.value
    if site.qualname in _BACKWARD_FUNCTIONS:
        args = [call.args[0].with_changes(value=new), *call.args[1:]]
        call = call.with_changes(args=args)
    else:
        assert isinstance(call.func, cst.Attribute)
        call = call.with_changes(func=call.func.with_changes(value=new))
    return statement.with_changes(body=[expr.with_changes(value=call)])


# ---- MXNet --------------------------------------------------------------------------------
def _mxnet(ctx: FixContext, site: CallSite, statement: cst.SimpleStatementLine) -> list[Edit]:
    inits = [s for s in ctx.index.calls if mxnet.amp_function(s.qualname, "init")]
    if inits:
        prefix = amp_prefix(inits[0])
        contrib = (inits[0].qualname or "").startswith("mxnet.contrib")
    else:  # gluon_amp scales without init(); contrib's amp needs an init() that recasts the net
        prefix, contrib = ctx.local_name("gluon_amp"), False
        if prefix is None:
            raise Unfixable(_NO_AMP)
    trainer = _trainer(ctx, site)
    edits = []
    if trainer not in initialised(ctx) and not _made_by_init_trainer(ctx, trainer, site):
        edits.append(init_trainer(ctx, prefix, trainer, site.scope))
    scaled = ctx.free_name("scaled_loss")
    header = expression(f"{prefix}.scale_loss({ctx.module.code_for_node(_loss(site))}, {trainer})")

    def wrap(updated: cst.CSTNode) -> cst.With:
        assert isinstance(updated, cst.SimpleStatementLine)
        inner = _with_loss(updated, site, cst.Name(scaled)).with_changes(leading_lines=())
        return cst.With(
            items=[cst.WithItem(header, asname=cst.AsName(cst.Name(scaled)))],
            body=cst.IndentedBlock([inner]),
            leading_lines=updated.leading_lines,
        )

    recorded = any(outer.qualname in mxnet.RECORD for outer in ctx.index.with_calls(site))
    if recorded or not contrib:
        return [*edits, Edit(statement, wrap, "scale_loss")]
    return [*edits, *move_into_record(ctx, statement, comments_only(wrap(statement)))]


def _made_by_init_trainer(ctx: FixContext, trainer: str, site: CallSite) -> bool:
    """``trainer = amp.init_trainer(gluon.Trainer(...))`` (gluon_amp returns the trainer)."""
    values = ctx.index.values_of(trainer, site.scope)
    sites = [ctx.index.site(v) for v in values]
    return any(s is not None and mxnet.amp_function(s.qualname, "init_trainer") for s in sites)


def _trainer(ctx: FixContext, site: CallSite) -> str:
    """The trainer that applies these gradients: the only known trainer (created by
    ``gluon.Trainer`` or given to ``init_trainer``) stepped in the same function, else the only
    known one, else the only one stepped there."""
    known = set(initialised(ctx))
    for assign in ctx.index.assigns:
        made = ctx.index.site(assign.value)
        if made is not None and (
            made.qualname in mxnet.TRAINER or mxnet.amp_function(made.qualname, "init_trainer")
        ):
            known.update(assign.targets)
    stepped = {
        dotted(s.receiver)
        for s in ctx.index.calls
        if s.method == "step" and s.receiver is not None and s.function is site.function
    } - {None}
    for candidates in (stepped & known, known, stepped if not known else set()):
        if len(candidates) == 1:
            return str(next(iter(candidates)))
    raise Unfixable("cannot tell which trainer applies these gradients")


# ---- PyTorch ------------------------------------------------------------------------------
def _torch(ctx: FixContext, site: CallSite, statement: cst.SimpleStatementLine) -> list[Edit]:
    if not any(s.qualname in torch.AUTOCAST for s in ctx.index.calls):
        raise Unfixable(
            "float16 weights (.half()): keep the model float32 and train under torch.autocast "
            "with a GradScaler (GradScaler cannot unscale float16 parameters)"
        )
    module = ctx.local_name("torch")
    if module is None:
        raise Unfixable("torch is not imported as a module (import torch)")
    loop = _outer_loop(ctx, statement)
    optimizer, step = _optimizer_step(ctx, site, loop)
    scaler = ctx.free_name("scaler")
    loss = _loss(site)
    scaled = cst.Call(
        cst.Attribute(cst.Name(scaler), cst.Name("scale")),
        [cst.Arg(loss.with_changes(lpar=[], rpar=[]))],
    )
    step_code = f"{scaler}.step({optimizer})"

    def scale(updated: cst.CSTNode) -> cst.CSTNode:
        return _with_loss(updated, site, scaled)

    def step_and_update(updated: cst.CSTNode) -> cst.FlattenSentinel:
        assert isinstance(updated, cst.SimpleStatementLine)
        stepped = updated.with_changes(body=[cst.Expr(expression(step_code))])
        return cst.FlattenSentinel([stepped, simple_statement(f"{scaler}.update()\n")])

    create = simple_statement(f"{scaler} = {module}.cuda.amp.GradScaler()\n")
    return [
        insert_before(loop, create, "GradScaler before the loop"),
        Edit(statement, scale, "scale the loss"),
        Edit(step, step_and_update, "scaler.step"),
    ]


def _outer_loop(ctx: FixContext, statement: cst.BaseStatement) -> cst.BaseStatement:
    """The outermost loop around ``statement`` in its function."""
    loops = []
    for node in ctx.ancestors(statement):
        if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
            break
        if isinstance(node, (cst.For, cst.While)):
            loops.append(node)
    if not loops:
        raise Unfixable("no training loop around the backward to create the GradScaler before")
    return ctx.statement(loops[-1])


def _optimizer_step(
    ctx: FixContext, site: CallSite, loop: cst.BaseStatement
) -> tuple[str, cst.SimpleStatementLine]:
    """The optimizer stepped after the backward in the loop, and its ``step()`` statement."""
    loop_at = ctx.positions[loop]
    first, last = (loop_at.start.line, loop_at.start.column), (loop_at.end.line, loop_at.end.column)
    steps = []
    for other in ctx.index.calls:
        where = ctx.positions[other.node]
        if (
            other.method == "step"
            and not other.node.args
            and other.order > site.order
            and other.function is site.function
            and first <= (where.start.line, where.start.column)
            and (where.end.line, where.end.column) <= last
        ):
            name = dotted(other.receiver) if other.receiver is not None else None
            if name is not None and "sched" not in name.lower():
                steps.append((name, other))
    if len(steps) != 1:
        what = "no optimizer.step()" if not steps else "more than one step()"
        raise Unfixable(f"{what} after the backward in the loop: cannot place scaler.step")
    name, step = steps[0]
    statement = ctx.own_statement(step.node, "optimizer.step()")
    return name, statement
