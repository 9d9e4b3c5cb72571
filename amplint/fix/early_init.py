"""AMP304: move ``amp.init(...)`` up, before the network is built, hybridized or run.

The statement (with the comments above it and after it) moves to just before the first statement
of its block that builds, hybridizes or runs the network (or calls a helper that does). Only when
that happens in the same block as ``amp.init()`` and nothing in between assigns a name the
``amp.init(...)`` call uses; a network hybridized and run in another function is left to the user.
"""

from __future__ import annotations

import libcst as cst

from amplint.findings import Finding
from amplint.fix.api import Edit, FixContext, Unfixable
from amplint.fix.edits import comments_only, insert_before, remove
from amplint.index import dotted

_ELSEWHERE = "the network is hybridized and run in another function: call amp.init() before it"
_NESTED = "amp.init() is in a nested block (if/with/loop): move it before the network is built"


def fix(finding: Finding, ctx: FixContext) -> list[Edit]:
    call = ctx.node_at(finding, cst.Call)
    init = ctx.site(call)
    statement = ctx.own_statement(call, "amp.init()")
    body = list(ctx.block_of(statement).body)
    before = body[: body.index(statement)]
    timeline = ctx.index.timeline(init.function)
    at = next((i for i, (_, site) in enumerate(timeline) if site is init), None)
    if at is None:
        raise Unfixable(_ELSEWHERE)
    earlier = timeline[:at]
    nets = {
        dotted(site.receiver)
        for _, site in earlier
        if site.method == "hybridize" and site.receiver is not None
    } - {None}
    touching = [
        outer
        for outer, site in earlier
        if site.method == "hybridize"
        or site.name in nets
        or (site.receiver is not None and dotted(site.receiver) in nets)
    ]
    marked = {id(_in_block(ctx, outer.node, before)) for outer in touching}
    marked |= {id(s) for s in before if _assigned(s) & nets}
    first = next((s for s in before if id(s) in marked), None)
    if first is None:
        raise Unfixable(_NESTED if touching else _ELSEWHERE)
    between = before[before.index(first) :]
    used = _names(call)
    clash = sorted(used & set().union(*(_assigned(s) for s in between)))
    if clash:
        raise Unfixable(f"{clash[0]} is set after the network is built: move amp.init() by hand")
    key = f"move amp.init() of line {ctx.positions[statement].start.line}"
    return [remove(statement, key), insert_before(first, comments_only(statement), key)]


def _in_block(ctx: FixContext, node: cst.CSTNode, block: list[cst.BaseStatement]):
    """The statement of ``block`` holding ``node``, if any."""
    for candidate in (node, *ctx.ancestors(node)):
        if any(candidate is s for s in block):
            return candidate
    return None


class _Names(cst.CSTVisitor):
    """Names bound (``assigned=True``) or all names used in a node (not attribute names)."""

    def __init__(self, assigned: bool) -> None:
        self.assigned_only = assigned
        self.names: set[str] = set()

    def _bind(self, target: cst.CSTNode) -> None:
        name = dotted(target)
        if name is not None:
            self.names.add(name)
            self.names.add(name.split(".")[0])
        for element in getattr(target, "elements", ()):
            self._bind(element.value)

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self._bind(node.target)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._bind(node.target)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._bind(node.target)

    def visit_For(self, node: cst.For) -> None:
        self._bind(node.target)

    def visit_AsName(self, node: cst.AsName) -> None:
        self._bind(node.name)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._bind(node.target)

    def visit_ImportAlias(self, node: cst.ImportAlias) -> None:
        if node.asname is None:
            self._bind(node.name)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self.names.add(node.name.value)
        return not self.assigned_only

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        self.names.add(node.name.value)
        return not self.assigned_only

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        node.value.visit(self)  # ``args.dtype`` reads ``args``, not a name ``dtype``
        return False

    def visit_Name(self, node: cst.Name) -> None:
        if not self.assigned_only:
            self.names.add(node.value)


def _assigned(statement: cst.CSTNode) -> set[str]:
    visitor = _Names(assigned=True)
    statement.visit(visitor)
    return visitor.names


def _names(call: cst.Call) -> set[str]:
    """The names ``call`` reads (``amp`` and ``args`` in ``amp.init(args.dtype)``)."""
    visitor = _Names(assigned=False)
    call.visit(visitor)
    return visitor.names
