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
    value = fold(node, ctx.index, ctx.site(call).scope)
    if value is None or isinstance(value.value, bool) or not isinstance(value.value, int):
        raise Unfixable("the value is no longer known statically")
    size = value.value
    data = finding.fix or {}
    if data.get("value", size) != size:
        raise Unfixable("the value changed since it was checked")
    rounded = data.get("rounded") or -(-size // 8) * 8
    if size == 1:
        raise Unfixable("a dimension of 1 is a single output: padding it changes its meaning")
    written = node if value.origin is None else value.origin
    if not (isinstance(written, cst.Integer) and written.evaluated_value == size):
        raise Unfixable(f"{size} is computed, not written as one number: change it by hand")

    def change(updated: cst.CSTNode) -> cst.CSTNode:
        assert isinstance(updated, cst.Integer)
        return updated.with_changes(value=str(rounded))

    return [Edit(written, change, f"round up to {rounded}")]
