"""What a fixer is and what it gets: the finding, a fresh parse of the file and its index.

A fixer never trusts node objects from the lint run: it finds its target again in a fresh libcst
parse by the finding's code and span, re-derives what it needs with amplint's own helpers (the
index, constant folding) and returns :class:`Edit` objects, or raises :class:`Unfixable` with the
reason the finding has to be fixed by hand.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Callable, Union

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, ParentNodeProvider, PositionProvider

from amplint.findings import Finding
from amplint.index import CallSite, FileIndex

Replacement = Union[cst.CSTNode, cst.FlattenSentinel, cst.RemovalSentinel]


class Unfixable(Exception):
    """A finding that cannot be fixed safely; the message says why."""


@dataclass(frozen=True)
class Edit:
    """Replace ``target`` (a node of the fresh parse) by ``change(updated target)``.

    ``key`` names the change: two fixes that make the same change to the same node (two layers
    sharing one constant) are merged instead of conflicting.
    """

    target: cst.CSTNode
    change: Callable[[cst.CSTNode], Replacement]
    key: str


@dataclass
class FixContext:
    """A fresh parse of one file: the module, its index, node positions and parents."""

    source: str
    module: cst.Module
    index: FileIndex
    positions: Mapping[cst.CSTNode, CodeRange]
    parents: Mapping[cst.CSTNode, cst.CSTNode]
    _by_span: dict[tuple[int, int, int, int], list[cst.CSTNode]] = field(
        default_factory=dict, repr=False
    )

    @classmethod
    def parse(cls, source: str) -> FixContext:
        module = cst.parse_module(source)
        wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
        metadata = wrapper.resolve_many([PositionProvider, ParentNodeProvider])
        positions, parents = metadata[PositionProvider], metadata[ParentNodeProvider]
        return cls(source, module, FileIndex.build(module), positions, parents)

    def span(self, node: cst.CSTNode) -> tuple[int, int, int, int]:
        """(line, column, end line, end column), 1-based columns as in findings."""
        where = self.positions[node]
        return (where.start.line, where.start.column + 1, where.end.line, where.end.column + 1)

    def node_at(self, finding: Finding, *kinds: type) -> cst.CSTNode:
        """The node of one of ``kinds`` that the finding was reported at."""
        if not self._by_span:
            for node in self.positions:
                self._by_span.setdefault(self.span(node), []).append(node)
        key = (finding.line, finding.column, finding.end_line, finding.end_column)
        for node in self._by_span.get(key, ()):
            if isinstance(node, kinds):
                return node
        raise Unfixable("the reported code is no longer where the finding says")

    def site(self, node: cst.CSTNode) -> CallSite:
        found = self.index.site(node)
        if found is None:
            raise Unfixable("the reported code is not a call")
        return found

    def ancestors(self, node: cst.CSTNode) -> Iterator[cst.CSTNode]:
        """Parents of ``node``, innermost first."""
        while node in self.parents:
            node = self.parents[node]
            yield node

    def statement(self, node: cst.CSTNode) -> cst.BaseStatement:
        """The innermost statement holding ``node`` that sits in a block (a statement list)."""
        for candidate in (node, *self.ancestors(node)):
            if isinstance(candidate, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
                parent = self.parents.get(candidate)
                if isinstance(parent, (cst.Module, cst.IndentedBlock)):
                    return candidate
            if isinstance(candidate, (cst.Lambda, cst.BaseComp)):
                break
        raise Unfixable("the call is not a statement of its own")

    def own_statement(self, call: cst.Call, what: str) -> cst.SimpleStatementLine:
        """The line holding ``call`` as its only statement (``loss.backward()``)."""
        statement = self.statement(call)
        if (
            isinstance(statement, cst.SimpleStatementLine)
            and len(statement.body) == 1
            and isinstance(statement.body[0], cst.Expr)
            and statement.body[0].value is call
        ):
            return statement
        raise Unfixable(f"{what} is not a statement of its own")

    def block_of(self, statement: cst.BaseStatement) -> cst.Module | cst.IndentedBlock:
        parent = self.parents[statement]
        assert isinstance(parent, (cst.Module, cst.IndentedBlock))
        return parent

    def preceding(self, statement: cst.BaseStatement) -> cst.BaseStatement | None:
        """The statement just before ``statement`` in its block, if any."""
        body = list(self.block_of(statement).body)
        at = body.index(statement)
        return body[at - 1] if at else None

    def local_name(self, *modules: str) -> str | None:
        """The name a module is imported under (``import torch`` -> ``torch``), if any."""
        for local, qualified in sorted(self.index.imports.items()):
            if qualified in modules:
                return local
        return None

    def free_name(self, preferred: str) -> str:
        """``preferred``, or ``preferred_2``... when the file already uses that name."""
        used = {node.value for node in self.positions if isinstance(node, cst.Name)}
        name, number = preferred, 1
        while name in used:
            number += 1
            name = f"{preferred}_{number}"
        return name

    def string(self, text: str) -> cst.SimpleString:
        """A string literal in the file's usual quotes (double when the file has no strings)."""
        single = double = 0
        for node in self.positions:
            if isinstance(node, cst.SimpleString) and not node.value.endswith(('"""', "'''")):
                single += node.value.endswith("'")
                double += node.value.endswith('"')
        quote = "'" if single > double else '"'
        return cst.SimpleString(f"{quote}{text}{quote}")


def expression(code: str) -> cst.BaseExpression:
    return cst.parse_expression(code)


def simple_statement(code: str) -> cst.SimpleStatementLine:
    statement = cst.parse_statement(code)
    assert isinstance(statement, cst.SimpleStatementLine)
    return statement
