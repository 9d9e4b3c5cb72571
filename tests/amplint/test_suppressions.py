"""Suppression comments: codes, names, prefixes, own-line and file-level forms."""

from __future__ import annotations

import pytest

from amplint.engine import lint_source

HEADER = "from mxnet.gluon import nn\nfrom mxnet.contrib import amp\namp.init()\n"


def lines(body: str) -> list[int]:
    return [f.line - 3 for f in lint_source(HEADER + body, "t.py") if f.code != "AMP000"]


@pytest.mark.parametrize(
    "comment",
    [
        "# amplint: ignore[AMP201]",
        "# amplint: ignore[dim-not-multiple-of-8]",
        "# amplint: ignore[AMP2]",
        "# amplint: ignore",
        "# noqa: AMP201",
        "# noqa: E501, AMP201 -- odd on purpose",
        "# noqa",
        "# NOQA:AMP201",
    ],
)
def test_same_line(comment):
    assert lines(f"a = nn.Dense(10)  {comment}\nb = nn.Dense(10)\n") == [2]


@pytest.mark.parametrize(
    "comment", ["# amplint: ignore[AMP301]", "# noqa: E501", "# amplint ignore", "# a noqa b"]
)
def test_other_codes_do_not_suppress(comment):
    assert lines(f"a = nn.Dense(10)  {comment}\n") == [1]


def test_first_line_of_statement_and_own_line_comment_cover_multiline_calls():
    body = (
        "net.add(  # amplint: ignore[AMP201]\n"
        "    nn.Dense(\n"
        "        10))\n"
        "# amplint: ignore[AMP201] -- the output layer\n"
        "\n"
        "head = nn.Dense(\n"
        "    10)\n"
        "tail = nn.Dense(10)\n"
    )
    assert lines(body) == [8]


def test_file_level():
    assert lines("# amplint: ignore-file[AMP201]\na = nn.Dense(10)\n") == []
    assert lines("# amplint: ignore-file[AMP301]\na = nn.Dense(10)\n") == [2]


def test_directive_in_a_string_is_not_a_comment():
    assert lines('a = nn.Dense(10, prefix="# noqa")\n') == [1]


def test_parse_errors_cannot_be_suppressed():
    findings = lint_source("# amplint: ignore-file\n# noqa\ndef f(:\n", "bad.py")
    assert [f.code for f in findings] == ["AMP000"]


def test_carriage_return_line_breaks():
    source = HEADER.replace("\n", "\r") + "# amplint: ignore\ra = nn.Dense(10)\rb = nn.Dense(10)\r"
    assert [f.line for f in lint_source(source, "t.py")] == [6]
