"""AMP302: move the ``amp.scale_loss`` block inside the ``autograd.record()`` block before it.

Only when the ``scale_loss`` block directly follows the ``record()`` block in the same body (its
comments move with it); anything in between could depend on leaving the recording scope.
"""

from __future__ import annotations

import libcst as cst

from amplint.findings import Finding
from amplint.fix.api import Edit, FixContext, Unfixable
from amplint.fix.edits import append_to_body, comments_only, remove
from amplint.frameworks import mxnet


def fix(finding: Finding, ctx: FixContext) -> list[Edit]:
    call = ctx.node_at(finding, cst.Call)
    statement = ctx.statement(call)
    if not (isinstance(statement, cst.With) and any(i.item is call for i in statement.items)):
        raise Unfixable("scale_loss is not opened by its own with statement")
    return move_into_record(ctx, statement, comments_only(statement))


def record_block_before(ctx: FixContext, statement: cst.BaseStatement) -> cst.With:
    """The ``with autograd.record():`` block just before ``statement`` in the same body."""
    previous = ctx.preceding(statement)
    if isinstance(previous, cst.With):
        for item in previous.items:
            site = ctx.index.site(item.item)
            if site is not None and site.qualname in mxnet.RECORD:
                return previous
    raise Unfixable("it does not directly follow the autograd.record() block: move it by hand")


def move_into_record(
    ctx: FixContext, statement: cst.BaseStatement, moved: cst.BaseStatement
) -> list[Edit]:
    """Remove ``statement`` and append ``moved`` to the record() block just before it."""
    record = record_block_before(ctx, statement)
    key = f"move line {ctx.positions[statement].start.line} into record()"
    return [remove(statement, key), append_to_body(record, moved, key)]
