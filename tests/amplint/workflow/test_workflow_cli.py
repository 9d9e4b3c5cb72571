"""The workflow through the real CLI: configuration, excludes, context, formats, stdin, jobs."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema
import pytest

SCHEMA = json.loads((Path(__file__).parent / "sarif-schema-2.1.0.json").read_text())

TRAIN = """\
from mxnet.contrib import amp
from src import model
amp.init()
net = model.build()
"""
MODEL = """\
from mxnet.gluon import nn


def build():
    net = nn.HybridSequential()
    net.add(nn.Dense(1000))
    net.add(nn.Dense(10))
    return net
"""


def make_project(root: Path, pyproject: str | None = None) -> Path:
    (root / ".git").mkdir()
    (root / "src").mkdir()
    (root / "src" / "__init__.py").write_text("")
    (root / "src" / "model.py").write_text(MODEL)
    (root / "train.py").write_text(TRAIN)
    if pyproject is not None:
        (root / "pyproject.toml").write_text(pyproject)
    return root


def codes(result) -> list[tuple[str, int, str]]:
    return [(d["path"], d["line"], d["code"]) for d in json.loads(result.stdout)]


def test_an_explicit_file_gets_its_context_from_the_rest_of_the_project(tmp_path, amplint):
    make_project(tmp_path)
    # Only the model file is passed, as pre-commit does; train.py turns float16 on.
    result = amplint("check", "src/model.py", "--format", "json", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert codes(result) == [("src/model.py", 7, "AMP201")]
    (tmp_path / "train.py").write_text(TRAIN.replace("amp.init()\n", ""))
    result = amplint("check", "src/model.py", "--format", "json", cwd=tmp_path)
    assert (result.returncode, codes(result)) == (0, [])


def test_configuration_then_command_line(tmp_path, amplint):
    make_project(tmp_path, "[tool.amplint]\nalignment = 5\nignore = ['AMP301']\n")
    # alignment 5 from the file: 1000 and 10 are multiples of 5.
    assert codes(amplint("check", "--format", "json", cwd=tmp_path / "src")) == []
    on_cli = amplint("check", "--format", "json", "--alignment", "8", cwd=tmp_path / "src")
    assert codes(on_cli) == [("model.py", 7, "AMP201")]
    (tmp_path / "pyproject.toml").write_text("[tool.amplint]\nignore = ['dim-not-multiple-of-8']\n")
    assert codes(amplint("check", ".", "--format", "json", cwd=tmp_path)) == []
    selected = amplint("check", ".", "--format", "json", "--select", "AMP2", cwd=tmp_path)
    assert codes(selected) == [("src/model.py", 7, "AMP201")]
    other = tmp_path / "strict.toml"
    other.write_text("[tool.amplint]\nalignment = 64\n")
    strict = amplint("check", ".", "--format", "json", "--config", str(other), cwd=tmp_path)
    assert codes(strict) == [("src/model.py", 6, "AMP201"), ("src/model.py", 7, "AMP201")]


def test_bad_configuration_is_one_line_naming_file_and_key(tmp_path, amplint):
    make_project(tmp_path, "[tool.amplint]\nalignmnet = 8\n")
    result = amplint("check", ".", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(tmp_path / "pyproject.toml") in lines[0]
    assert "unknown key 'alignmnet'" in lines[0] and "did you mean 'alignment'" in lines[0]
    (tmp_path / "pyproject.toml").write_text("[tool.amplint]\nselect = ['AMP999']\n")
    result = amplint("check", ".", cwd=tmp_path)
    assert result.returncode == 2 and "select" in result.stderr and "AMP999" in result.stderr
    assert "Traceback" not in result.stderr


def test_per_file_ignores_and_excludes_also_for_explicit_files(tmp_path, amplint):
    make_project(
        tmp_path,
        '[tool.amplint]\nextend-exclude = ["legacy"]\n'
        '[tool.amplint.per-file-ignores]\n"src/*" = ["AMP201"]\n',
    )
    (tmp_path / "legacy").mkdir()
    (tmp_path / "legacy" / "old.py").write_text(
        MODEL + "from mxnet.contrib import amp\namp.init()\n"
    )
    assert codes(amplint("check", ".", "--format", "json", cwd=tmp_path)) == []
    explicit = amplint("check", "legacy/old.py", "src/model.py", "--format", "json", cwd=tmp_path)
    assert (explicit.returncode, codes(explicit)) == (0, [])
    assert "1 file checked" in explicit.stderr  # legacy/old.py is excluded


def test_dimensions_below_8_are_not_reported_unless_asked(tmp_path, amplint):
    """Padding a layer of 1-7 to 8 adds 14% (7) to 700% (1) to a layer that costs little: the
    default min-dimension is 8. Real odd sizes (10 classes, 21 VOC classes, 75 = 3 anchors x 25,
    255 = 3 x 85 in YOLO heads, BERT's 30522-token vocabulary) stay findings."""
    sizes = (1, 4, 6, 7, 10, 21, 75, 255, 30522)
    layers = "".join(f"net.add(nn.Dense({size}))\n" for size in sizes)
    (tmp_path / "train.py").write_text(
        "from mxnet.contrib import amp\nfrom mxnet.gluon import nn\namp.init()\n"
        "net = nn.HybridSequential()\n" + layers
    )

    def reported(*options: str) -> list[int]:
        result = amplint(
            "check", ".", "--format", "json", "--select", "AMP201", *options, cwd=tmp_path
        )
        return [int(d["message"].split("=")[1].split()[0]) for d in json.loads(result.stdout)]

    assert reported() == [10, 21, 75, 255, 30522]
    assert reported("--min-dimension", "0") == list(sizes)
    (tmp_path / "pyproject.toml").write_text("[tool.amplint]\nmin-dimension = 0\n")
    assert reported() == list(sizes)
    assert reported("--min-dimension", "16") == [21, 75, 255, 30522]


def test_named_paths_that_are_all_excluded_say_why_and_pass(tmp_path, amplint):
    """pre-commit passes every changed file, excluded ones too: each gets one line naming the
    exclude, and the run passes. Built-in and .gitignore excludes apply as the configured ones."""
    make_project(tmp_path, '[tool.amplint]\nextend-exclude = ["legacy"]\n')
    hazard = MODEL + "from mxnet.contrib import amp\namp.init()\n"
    for name in ("build/train.py", "legacy/old.py", "out/gen.py"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(hazard)
    (tmp_path / ".gitignore").write_text("# generated code\nout/\n")
    assert codes(amplint("check", ".", "--format", "json", cwd=tmp_path)) == [
        ("src/model.py", 7, "AMP201")
    ]
    result = amplint("check", "build/train.py", "legacy/old.py", "out/gen.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "amplint: build/train.py: not checked, excluded by the built-in exclude 'build'",
        "amplint: legacy/old.py: not checked, excluded by extend-exclude 'legacy' in "
        "pyproject.toml",
        "amplint: out/gen.py: not checked, excluded by 'out/' in .gitignore",
    ]
    assert "0 files checked" in result.stdout
    in_folder = amplint("check", "train.py", cwd=tmp_path / "build")
    assert in_folder.returncode == 0 and "the built-in exclude 'build'" in in_folder.stderr
    buffer = ("check", "-", "--stdin-filename", "out/gen.py")
    from_stdin = amplint(*buffer, cwd=tmp_path, stdin=hazard)
    assert from_stdin.stderr.startswith("amplint: out/gen.py: not checked, excluded by 'out/'")
    mixed = amplint("check", "build/train.py", "src/model.py", "--format", "json", cwd=tmp_path)
    assert codes(mixed) == [("src/model.py", 7, "AMP201")]
    assert mixed.stderr == "Found 1 finding (1 file checked).\n"  # no line per excluded file


def test_sarif_and_github_and_output_file(tmp_path, amplint):
    make_project(tmp_path)
    result = amplint(
        "check", ".", "--format", "sarif", "--output-file", "reports/out.sarif", cwd=tmp_path
    )
    assert result.returncode == 1 and result.stdout == ""
    log = json.loads((tmp_path / "reports" / "out.sarif").read_text())
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    (finding,) = log["runs"][0]["results"]
    assert finding["ruleId"] == "AMP201"
    assert finding["locations"][0]["physicalLocation"]["region"]["startLine"] == 7
    described = {rule["id"] for rule in log["runs"][0]["tool"]["driver"]["rules"]}
    assert {"AMP101", "AMP201", "AMP301"} <= described
    github = amplint("check", ".", "--format", "github", cwd=tmp_path)
    assert github.stdout.startswith(
        "::error file=src/model.py,line=7,col=22,endLine=7,endColumn=24,"
    )


def test_stdin_with_a_filename_uses_the_project_context(tmp_path, amplint):
    make_project(tmp_path)
    edited = MODEL.replace("nn.Dense(10)", "nn.Dense(12)")
    result = amplint(
        "check",
        "-",
        "--stdin-filename",
        "src/model.py",
        "--format",
        "json",
        cwd=tmp_path,
        stdin=edited,
    )
    assert result.returncode == 1, result.stderr
    assert codes(result) == [("src/model.py", 7, "AMP201")]
    assert "Dense units=12" in json.loads(result.stdout)[0]["message"]
    alone = amplint("check", "-", "--format", "json", cwd=tmp_path, stdin=edited)
    assert (alone.returncode, codes(alone)) == (0, [])  # no name: no project context


def test_the_file_stdin_stands_for_is_checked_from_disk_too(tmp_path, amplint):
    """``check - src/model.py --stdin-filename src/model.py``: the buffer and the file on disk
    are two texts; each gets its own findings (a cached result of the other is never reused)."""
    make_project(tmp_path)
    model = tmp_path / "src" / "model.py"
    old = model.read_text()
    amplint("check", "src/model.py", cwd=tmp_path)  # caches the findings of the old text
    model.write_text(old.replace("nn.Dense(10)", "nn.Dense(16)"))
    both = ("check", "-", "src/model.py", "--stdin-filename", "src/model.py", "--format", "json")
    result = amplint(*both, cwd=tmp_path, stdin=old)
    assert codes(result) == [("src/model.py", 7, "AMP201")]  # the buffer's, once
    assert codes(amplint(*both, "--no-cache", cwd=tmp_path, stdin=old)) == codes(result)


def notebook(*sources: str) -> str:
    cells = [{"cell_type": "markdown", "source": "# Tutorial", "metadata": {}}]
    cells += [
        {"cell_type": "code", "source": s, "metadata": {}, "outputs": [], "execution_count": None}
        for s in sources
    ]
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells})


def test_notebooks_are_checked_by_cell(tmp_path, amplint):
    (tmp_path / "tutorial.ipynb").write_text(
        notebook(
            "%matplotlib inline\n!pip install mxnet\n"
            "from mxnet.contrib import amp\nfrom mxnet.gluon import nn",
            "amp.init()\nnet = nn.HybridSequential()\nnet.add(nn.Dense(10))",
        )
    )
    (tmp_path / "broken.ipynb").write_text("{ not json")
    result = amplint("check", ".", "--format", "json", cwd=tmp_path)
    data = json.loads(result.stdout)
    assert result.returncode == 2
    assert [(d["path"], d["code"], d.get("cell"), d["line"]) for d in data] == [
        ("broken.ipynb", "AMP000", None, 1),
        ("tutorial.ipynb", "AMP201", 3, 3),
    ]
    text = amplint("check", "tutorial.ipynb", cwd=tmp_path)
    assert text.stdout.startswith("tutorial.ipynb[cell 3]:3:")


def test_parallel_and_serial_runs_agree(tmp_path, amplint):
    make_project(tmp_path)
    for number in range(24):
        (tmp_path / "src" / f"layer_{number}.py").write_text(
            MODEL.replace("nn.Dense(10)", f"nn.Dense({number + 1})")
        )
        (tmp_path / "train.py").write_text(
            (tmp_path / "train.py").read_text() + f"from src import layer_{number}\n"
        )
    serial = amplint("check", ".", "--format", "json", "--jobs", "1", "--no-cache", cwd=tmp_path)
    parallel = amplint("check", ".", "--format", "json", "--jobs", "2", "--no-cache", cwd=tmp_path)
    assert serial.stdout == parallel.stdout
    # Dense(1) ... Dense(24): 1-7 are below min-dimension, 8, 16 and 24 are multiples of 8.
    assert len(json.loads(serial.stdout)) == 1 + 14
    assert not (tmp_path / ".amplint_cache").exists()


def test_concurrent_processes_share_one_cache(tmp_path, amplint):
    make_project(tmp_path)
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = list(
            pool.map(lambda _: amplint("check", ".", "--format", "json", cwd=tmp_path), range(4))
        )
    assert {run.stdout for run in runs} == {runs[0].stdout}
    assert codes(runs[0]) == [("src/model.py", 7, "AMP201")]
    cache = tmp_path / ".amplint_cache"
    assert (cache / ".gitignore").is_file()
    assert not list(cache.rglob(".tmp-*"))
    assert amplint("check", ".", "--format", "json", cwd=tmp_path).stdout == runs[0].stdout


@pytest.mark.parametrize("args", [["--jobs", "0"], ["--format", "xml"]])
def test_bad_options_are_usage_errors(tmp_path, amplint, args):
    result = amplint("check", ".", *args, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_a_fully_cached_run_does_not_load_the_rules_or_libcst(tmp_path, amplint):
    make_project(tmp_path)
    first = amplint("check", ".", "--format", "json", cwd=tmp_path)
    trace = {"PYTHONPROFILEIMPORTTIME": "1"}
    again = amplint("check", ".", "--format", "json", cwd=tmp_path, env=trace)
    assert again.stdout == first.stdout and codes(again) == [("src/model.py", 7, "AMP201")]
    assert "libcst" not in again.stderr and "amplint.rules" not in again.stderr
    edited = amplint("check", ".", "--format", "json", "--alignment", "5", cwd=tmp_path, env=trace)
    assert codes(edited) == [] and "libcst" in edited.stderr  # new settings: checked again


def test_a_file_that_cannot_hold_a_hazard_is_checked_without_libcst(tmp_path, amplint):
    (tmp_path / "util.py").write_text("import os\n\n\ndef home():\n    return os.getcwd()\n")
    trace = {"PYTHONPROFILEIMPORTTIME": "1"}
    result = amplint("check", "util.py", "--no-cache", cwd=tmp_path, env=trace)
    assert result.returncode == 0, result.stderr
    assert "libcst" not in result.stderr  # selecting rules reads the catalog, not the rules
    hazard = tmp_path / "model.py"
    hazard.write_text("import torch\nnet = torch.nn.Linear(10, 10).half()\n")
    result = amplint("check", "model.py", "--no-cache", cwd=tmp_path, env=trace)
    assert result.returncode == 1 and "libcst" in result.stderr


def test_an_unknown_rule_in_per_file_ignores_is_reported(tmp_path, amplint):
    make_project(tmp_path, '[tool.amplint.per-file-ignores]\n"tests/*" = ["AMP2O1"]\n')
    result = amplint("check", ".", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert 'per-file-ignores "tests/*"' in result.stderr and "AMP2O1" in result.stderr
