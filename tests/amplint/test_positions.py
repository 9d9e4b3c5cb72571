"""The light position pass agrees with libcst's PositionProvider on every node it is asked for."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, PositionProvider

from amplint.positions import locate

REPO = Path(__file__).resolve().parents[2]
SOURCES = sorted((REPO / "examples" / "hazards").glob("*.py")) + [REPO / "amplint" / "index.py"]
TRICKY = 'if x:  # c\r\n    y = f(\r\n\t"""a\nb"""); z = g()\r\nelse: w = [h(i) for i in j]\n'


class _All(cst.CSTVisitor):
    def __init__(self) -> None:
        self.nodes: list[cst.CSTNode] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, (cst.BaseExpression, cst.BaseStatement, cst.Arg)):
            self.nodes.append(node)
        return True


@pytest.mark.parametrize("source", [TRICKY, *(p.read_text() for p in SOURCES)])
def test_positions_match_libcst(source):
    module = cst.parse_module(source)
    collector = _All()
    module.visit(collector)
    expected = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    found = locate(module, collector.nodes)
    for node in collector.nodes:
        want, got = expected[node], found[id(node)]
        if isinstance(node, cst.BaseStatement):  # findings need where a statement starts
            assert (got.line, got.column) == (want.start.line, want.start.column), node
        elif isinstance(node, (cst.BaseExpression, cst.Arg)):
            assert (got.line, got.column, got.end_line, got.end_column) == (
                want.start.line,
                want.start.column,
                want.end.line,
                want.end.column,
            ), node
