"""Line and column of a few nodes, from one light code-generation pass.

libcst's PositionProvider builds a range object for every node of the module and splits every
token with a regular expression: about ten times the cost of plain code generation. Findings
need the positions of a handful of nodes, so this pass tracks only the current line and column
and records ranges for the nodes asked for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import libcst as cst
from libcst._nodes.internal import CodegenState

_NEWLINE = re.compile(r"\r\n?|\n")


@dataclass(frozen=True)
class Range:
    """1-based lines, 0-based columns, end exclusive (libcst's convention)."""

    line: int
    column: int
    end_line: int
    end_column: int


class _Span:
    __slots__ = ("state", "node", "start")

    def __init__(self, state: _Locator, node: cst.CSTNode) -> None:
        self.state, self.node = state, node

    def __enter__(self) -> None:
        self.start = (self.state.line, self.state.column)

    def __exit__(self, *exc: object) -> None:
        state = self.state
        state.found.setdefault(id(self.node), Range(*self.start, state.line, state.column))


class _Nothing:
    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NOTHING = _Nothing()


class _Locator(CodegenState):
    def __init__(self, module: cst.Module, wanted: set[int]) -> None:
        super().__init__(
            default_indent=module.default_indent, default_newline=module.default_newline
        )
        self.wanted = wanted
        self.found: dict[int, Range] = {}
        self.starts: dict[int, tuple[int, int]] = {}
        self.line, self.column = 1, 0

    def add_indent_tokens(self) -> None:
        for token in self.indent_tokens:
            self._advance(token)

    def add_token(self, value: str) -> None:
        self._advance(value)

    def _advance(self, value: str) -> None:
        if "\n" in value or "\r" in value:
            segments = _NEWLINE.split(value)
            self.line += len(segments) - 1
            self.column = len(segments[-1])
        else:
            self.column += len(value)

    def before_codegen(self, node: cst.CSTNode) -> None:
        if id(node) in self.wanted:  # nodes without a syntactic range get their whole extent
            self.starts[id(node)] = (self.line, self.column)

    def after_codegen(self, node: cst.CSTNode) -> None:
        start = self.starts.pop(id(node), None)
        if start is not None:
            self.found.setdefault(id(node), Range(*start, self.line, self.column))

    def record_syntactic_position(self, node, *, start_node=None, end_node=None):  # noqa: ANN001
        return _Span(self, node) if id(node) in self.wanted else _NOTHING


def locate(module: cst.Module, nodes: Iterable[cst.CSTNode | None]) -> dict[int, Range]:
    """Ranges of ``nodes`` (by ``id``) in ``module``."""
    wanted = {id(node) for node in nodes if node is not None}
    state = _Locator(module, wanted)
    module._codegen(state)
    return state.found
