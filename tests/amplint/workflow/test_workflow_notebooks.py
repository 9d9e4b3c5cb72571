"""Notebooks: code cells to one source with IPython syntax masked, findings back to cells."""

from __future__ import annotations

import functools
import json
import subprocess
import sys

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


def jupyter_layout(*cells):
    """A notebook as Jupyter saves it: sorted keys, indent 1, each source line its own string."""
    return json.dumps(
        {
            "cells": [
                {
                    "cell_type": kind,
                    "execution_count": None,
                    "metadata": {},
                    "outputs": [],
                    "source": source.splitlines(keepends=True),
                }
                for kind, source in cells
            ],
            "metadata": {"language_info": {"name": "python"}},
            "nbformat": 4,
            "nbformat_minor": 5,
        },
        sort_keys=True,
        indent=1,
    )


TRAINING_CELLS = (
    ("markdown", "# Training\nin bfloat16"),
    ("code", "from mxnet.contrib import amp\namp.init('bfloat16')"),
    ("code", "from mxnet.gluon import nn\n\nnet = nn.HybridSequential()\nnet.add(nn.Dense(10))"),
)


def file_line_of(text: str, code: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if code in line)


def test_findings_know_the_line_of_the_ipynb_file_in_jupyters_layout():
    text = jupyter_layout(*TRAINING_CELLS)
    parsed = parse_notebook(text)
    finding = Finding("nb.ipynb", 6, 9, 6, 21, "AMP201", "dim-not-multiple-of-8", "m")
    mapped = parsed.map_finding(finding)
    assert (mapped.cell, mapped.line) == (3, 4)
    assert mapped.notebook_line == file_line_of(text, "net.add(nn.Dense(10))")
    assert parsed.map_finding(Finding("nb.ipynb", 1, 1, 1, 2, "X", "x", "m")).notebook_line == (
        file_line_of(text, "from mxnet.contrib import amp")
    )


@pytest.mark.parametrize(
    "layout",
    [
        lambda cells: json.dumps(json.loads(jupyter_layout(*cells))),  # all on one line
        lambda cells: jupyter_layout(*cells).replace('"outputs": []', '"outputs": [{"source": 1}]'),
    ],
    ids=["minified", "another source key"],
)
def test_other_layouts_leave_the_file_line_unknown(layout):
    parsed = parse_notebook(layout(TRAINING_CELLS))
    finding = Finding("nb.ipynb", 6, 9, 6, 21, "AMP201", "dim-not-multiple-of-8", "m")
    mapped = parsed.map_finding(finding)
    assert (mapped.cell, mapped.line, mapped.notebook_line) == (3, 4, None)


def test_a_source_written_as_one_string_is_on_the_line_of_its_key():
    data = json.loads(jupyter_layout(*TRAINING_CELLS))
    data["cells"][1]["source"] = "from mxnet.contrib import amp\namp.init('bfloat16')"
    text = json.dumps(data, sort_keys=True, indent=1)
    parsed = parse_notebook(text)
    mapped = parsed.map_finding(Finding("nb.ipynb", 2, 1, 2, 2, "X", "x", "m"))
    assert (mapped.cell, mapped.line) == (2, 2)
    assert mapped.notebook_line == file_line_of(text, "amp.init(")


def test_sarif_and_github_point_at_the_line_of_the_notebook_file(tmp_path):
    text = jupyter_layout(*TRAINING_CELLS)
    (tmp_path / "train.ipynb").write_text(text)
    expected = file_line_of(text, "net.add(nn.Dense(10))")
    run = functools.partial(
        subprocess.run, capture_output=True, text=True, cwd=tmp_path, check=False
    )
    command = [sys.executable, "-m", "amplint", "check", "train.ipynb", "--no-cache", "--format"]
    log = json.loads(run([*command, "sarif"]).stdout)
    (result,) = log["runs"][0]["results"]
    assert result["ruleId"] == "AMP201"
    assert result["locations"][0]["physicalLocation"]["region"] == {"startLine": expected}
    assert result["message"]["text"].startswith("cell 3, line 4: ")
    annotation = run([*command, "github"]).stdout
    assert f",line={expected}," in annotation and "::cell 3, line 4: AMP201" in annotation
    (found,) = json.loads(run([*command, "json"]).stdout)
    assert (found["cell"], found["line"], found["notebook_line"]) == (3, 4, expected)


def test_an_odd_cell_leaves_the_other_cells_lines_known():
    """nbformat splits a source with str.splitlines, also at U+2028: that cell's strings no
    longer end in newlines, so its own lines are unknown, and only its."""
    odd = ("markdown", "Loss per\u2028epoch\nplotted below")
    text = jupyter_layout(odd, *TRAINING_CELLS[1:])
    parsed = parse_notebook(text)
    mapped = parsed.map_finding(Finding("nb.ipynb", 6, 9, 6, 21, "AMP201", "d", "m"))
    assert mapped.notebook_line == file_line_of(text, "net.add(nn.Dense(10))")


def test_form_feeds_and_line_separators_in_code_are_not_line_breaks(tmp_path, amplint):
    """Python splits lines at \\n, \\r\\n and \\r only; a U+2028 or a form feed inside a string
    literal stays in its line (str.splitlines would break the literal: a false AMP000)."""
    code = "from mxnet.gluon import nn\nlabel = 'epoch\u2028loss\x0c'\nnet = nn.Dense(10)\n"
    cells = [TRAINING_CELLS[1], ("code", code)]
    (tmp_path / "train.ipynb").write_text(jupyter_layout(*cells), encoding="utf-8")
    result = amplint("check", "train.ipynb", "--no-cache", "--format", "json", cwd=tmp_path)
    (finding,) = json.loads(result.stdout)
    assert (finding["code"], finding["cell"], finding["line"]) == ("AMP201", 2, 3)
