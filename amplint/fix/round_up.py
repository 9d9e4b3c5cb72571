"""AMP201, AMP202 (unsafe): round a dimension or batch size up to the next multiple of 8 where
the value was written: the literal in the call, a module constant, a default argument or an
argparse default.

Unsafe because it changes the model: its layer shapes, its checkpoints, every other use of the
same constant, a class count or vocabulary that the data defines (pad it and ignore the extra
logits), and any number written separately that must match (the next BatchNorm's
``in_channels``): review the diff. A value computed by arithmetic is left to the user, and so is
a dimension of 1 (a single score or gate, whose meaning padding would change).
"""

from __future__ import annotations

import libcst as cst

from amplint.findings import Finding
from amplint.fix.api import Edit, FixContext, Unfixable
from amplint.values import fold


def fix(finding: Finding, ctx: FixContext) -> list[Edit]:
    node = ctx.node_at(finding, cst.BaseExpression)
    call = next((n for n in ctx.ancestors(node) if isinstance(n, cst.Call)), None)
    if call is None:
        raise Unfixable("the value is not an argument of a call")
    site = ctx.site(call)
    value = fold(node, ctx.index, site.scope)
    if value is None:
        size, written = _option_default(node, site, ctx)
    elif isinstance(value.value, bool) or not isinstance(value.value, int):
        raise Unfixable("the value is no longer known statically")
    else:
        size, written = value.value, node if value.origin is None else value.origin
    data = finding.fix or {}
    if data.get("value", size) != size:
        raise Unfixable("the value changed since it was checked")
    rounded = data.get("rounded") or -(-size // 8) * 8
    if size == 1:
        raise Unfixable("a dimension of 1 is a single output: padding it changes its meaning")
    if not (isinstance(written, cst.Integer) and written.evaluated_value == size):
        raise Unfixable(f"{size} is computed, not written as one number: change it by hand")

    def change(updated: cst.CSTNode) -> cst.CSTNode:
        assert isinstance(updated, cst.Integer)
        return updated.with_changes(value=str(rounded))

    return [Edit(written, change, f"round up to {rounded}")]


def _option_default(node: cst.BaseExpression, site, ctx: FixContext) -> tuple[int, cst.CSTNode]:
    """The default of the option of this file that ``node`` reads through parameters and
    helpers (``args.unit`` handed to ``_setup(nhid)``), and where it is written."""
    from amplint.cases import Evaluator

    sizes = Evaluator(ctx.index).sizes(node, site.scope, site.order)
    options = {s.option for s in sizes}
    if not sizes or len(options) != 1 or None in options or any(s.computed for s in sizes):
        raise Unfixable("the value is not one number written in this file: change it by hand")
    option = sizes[0].option
    assert option is not None
    entry = ctx.index.arguments.get(option.key[2:]) if option.key.startswith("--") else None
    default = entry[0].arg(None, "default") if entry is not None else None
    if default is None:
        raise Unfixable(f"{option.shown} is defined in another file: change its default there")
    return sizes[0].value, default
