"""Notebooks: code cells to one source with IPython syntax masked, findings back to cells."""

from __future__ import annotations

import json

import libcst
import pytest

from amplint.findings import Finding
from amplint.notebooks import NotebookError, mask_cell, parse_notebook


def notebook(*cells, language="python"):
    return json.dumps(
        {
            "nbformat": 4,
            "nbformat_minor": 5,
            "metadata": {"language_info": {"name": language}},
            "cells": [
                {"cell_type": kind, "source": source, "metadata": {}} for kind, source in cells
            ],
        }
    )


def test_magics_and_shell_escapes_are_masked_and_the_rest_parses():
    text = notebook(
        ("markdown", "# Training"),
        ("code", ["%matplotlib inline\n", "!pip install mxnet\n", "import mxnet as mx"]),
        ("code", "files = !ls data\nnet = mx.gluon.nn.Dense(10)\nnet?\n%time net.initialize()"),
        ("code", "for i in range(2):\n    !echo $i\n    print(i)"),
    )
    parsed = parse_notebook(text)
    assert parsed.cells == (2, 3, 4)
    libcst.parse_module(parsed.source)  # no AMP000 on IPython syntax
    lines = parsed.source.splitlines()
    assert lines[0] == "..." and lines[1] == "..."
    assert lines[3] == "files = ..."
    assert lines[4] == "net = mx.gluon.nn.Dense(10)"
    assert lines[5] == "..." and lines[6] == "..."
    assert lines[8] == "    ..."


def test_python_that_only_looks_like_a_magic_is_kept():
    lines = [
        'message = ("loss %s"',
        "           % loss)",
        'doc = """',
        "!not a shell escape inside a string",
        '"""',
        "x = 10 % 3  # what?",
        'question = """Is this right?',
        '"""',
    ]
    assert mask_cell(lines) == lines


def test_help_syntax_is_masked():
    assert mask_cell(["net?", "  mx.nd.array??", "?np.zeros", "x = 1"]) == [
        "...",
        "  ...",
        "...",
        "x = 1",
    ]


def test_cell_magics_hide_foreign_cells_and_keep_python_ones():
    assert mask_cell(["%%bash", "echo hi", "ls"]) == ["...", "", ""]
    assert mask_cell(["%%time", "y = f(x)"]) == ["...", "y = f(x)"]
    assert mask_cell(["%env A=1 \\", "   B=2", "z = 1"]) == ["...", "", "z = 1"]


def test_findings_are_mapped_back_to_their_cell_and_line():
    text = notebook(("code", "import mxnet as mx"), ("markdown", "text"), ("code", "a = 1\nb = 2"))
    parsed = parse_notebook(text)
    finding = Finding("nb.ipynb", 3, 5, 3, 9, "AMP201", "dim-not-multiple-of-8", "m")
    mapped = parsed.map_finding(finding)
    assert (mapped.cell, mapped.line, mapped.column, mapped.end_line) == (3, 2, 5, 2)
    assert mapped.to_dict()["cell"] == 3


def test_non_python_notebooks_have_no_code_and_broken_ones_raise():
    assert parse_notebook(notebook(("code", "x <- 1"), language="R")).source == ""
    with pytest.raises(NotebookError, match="JSON"):
        parse_notebook("{not json")
    with pytest.raises(NotebookError, match="cells"):
        parse_notebook(json.dumps({"worksheets": []}))


def test_valid_python_is_never_masked():
    """Real code (the standard library): no line of a valid module looks like IPython syntax."""
    import sysconfig
    import warnings
    from pathlib import Path

    checked = 0
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))[:400]:
        source = path.read_text(encoding="utf-8", errors="replace")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # old modules' SyntaxWarnings are not ours
                compile(source, str(path), "exec", dont_inherit=True)
        except (SyntaxError, ValueError):
            continue
        lines = source.splitlines()
        assert mask_cell(lines) == lines, path
        checked += 1
    assert checked > 100
