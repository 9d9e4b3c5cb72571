"""AMP303: add ``amp.init_trainer(trainer)`` right after the statement that creates the trainer.

Also used by the AMP301 fix, which starts scaling a loss with a trainer that may not have been
given to ``init_trainer`` yet. Only when the trainer is created once, in this file, after
``amp.init()``.
"""

from __future__ import annotations

import libcst as cst

from amplint.findings import Finding
from amplint.fix.api import Edit, FixContext, Unfixable, simple_statement
from amplint.fix.edits import insert_after
from amplint.frameworks import mxnet
from amplint.index import CallSite, Scope, dotted


def fix(finding: Finding, ctx: FixContext) -> list[Edit]:
    node = ctx.node_at(finding, cst.BaseExpression)
    call = next((n for n in ctx.ancestors(node) if isinstance(n, cst.Call)), None)
    if call is None:
        raise Unfixable("the trainer is not an argument of amp.scale_loss")
    site = ctx.site(call)
    trainer = dotted(node)
    if trainer is None:
        raise Unfixable("the trainer is not a plain name")
    if created_at(ctx, trainer, site.scope).order > site.order:
        raise Unfixable(f"{trainer} is created after it is used")
    return [init_trainer(ctx, amp_prefix(site), trainer, site.scope)]


def amp_prefix(site: CallSite) -> str:
    """How the file spells the amp module at this call (``amp``, ``mx.contrib.amp``)."""
    if site.name is None or "." not in site.name:
        raise Unfixable("amp's functions are imported one by one: call init_trainer by hand")
    return site.name.rsplit(".", 1)[0]


def initialised(ctx: FixContext) -> set[str]:
    """Trainers already given to ``amp.init_trainer``."""
    names = set()
    for site in ctx.index.calls:
        if mxnet.amp_function(site.qualname, "init_trainer"):
            argument = site.arg(0, "optimizer_or_trainer")
            name = dotted(argument) if argument is not None else None
            if name is not None:
                names.add(name)
    return names


def created_at(ctx: FixContext, trainer: str, scope: Scope) -> CallSite:
    """The ``gluon.Trainer(...)`` call the trainer is made by (exactly one)."""
    values = ctx.index.values_of(trainer, scope)
    sites = [ctx.index.site(value) for value in values]
    if len(values) != 1 or sites[0] is None or sites[0].qualname not in mxnet.TRAINER:
        raise Unfixable(f"{trainer} is not created once in this file by gluon.Trainer(...)")
    return sites[0]


def init_trainer(ctx: FixContext, prefix: str, trainer: str, scope: Scope) -> Edit:
    """``<prefix>.init_trainer(<trainer>)`` after the statement creating the trainer."""
    creation = created_at(ctx, trainer, scope)
    inits = [s for s in ctx.index.calls if mxnet.amp_function(s.qualname, "init")]
    if not inits and ctx.local_name("gluon_amp") is None:
        raise Unfixable("amp.init() is never called: amp.init_trainer would fail")
    if any(init.order > creation.order for init in inits):
        raise Unfixable(f"amp.init() runs after {trainer} is created")
    statement = ctx.statement(creation.node)
    new = simple_statement(f"{prefix}.init_trainer({trainer})\n")
    return insert_after(statement, new, f"{prefix}.init_trainer({trainer})")
