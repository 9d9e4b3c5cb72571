"""AMP307: step through the GradScaler.

``optimizer.step()`` after a scaled backward becomes ``scaler.step(optimizer)``, followed by
``scaler.update()`` when the file never updates the scaler; a second ``optimizer.step()`` after
``scaler.step(optimizer)`` is removed; a missing ``scaler.update()`` goes right after the last
``scaler.step(...)``. The rule decides what is safe (the scaler exists on every path to the
step, the step is not inside a shared helper) and says why when it is not; this module only
edits the statement the finding points at.
"""

from __future__ import annotations

import libcst as cst

from amplint.findings import Finding
from amplint.fix.api import Edit, FixContext, Unfixable, expression, simple_statement
from amplint.fix.edits import insert_after, remove
from amplint.index import dotted


def fix(finding: Finding, ctx: FixContext) -> list[Edit]:
    data = finding.fix or {}
    if "unfixable" in data:
        raise Unfixable(data["unfixable"])
    call = ctx.node_at(finding, cst.Call)
    statement = ctx.own_statement(call, f"{dotted(call.func) or 'the call'}()")
    if "insert" in data:
        return [insert_after(statement, simple_statement(data["insert"] + "\n"), data["insert"])]
    if dotted(call.func) is None or not dotted(call.func).endswith(".step"):
        raise Unfixable("the reported call is not an optimizer step")
    if "remove" in data:
        if len(ctx.block_of(statement).body) == 1:
            raise Unfixable("the step is the only statement of its block")
        return [remove(statement, data["remove"])]
    if "replace" not in data:
        raise Unfixable("nothing to fix")
    replacement = expression(data["replace"])
    edits = [Edit(call, lambda updated: replacement, data["replace"])]
    if data.get("update"):
        update = simple_statement(data["update"] + "\n")
        edits.append(insert_after(statement, update, data["update"]))
    return edits
