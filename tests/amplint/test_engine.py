"""The engine: selection, assume-amp, isolation of a failing rule, picklable results."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from amplint import rules as rules_module
from amplint.engine import lint_source
from amplint.findings import Finding
from amplint.rules import RULES, resolve
from amplint.settings import Settings

FLOAT32_SCRIPT = "from torch import nn\nlayer = nn.Linear(100, 30)\n"
FLOAT16_SCRIPT = """\
import torch.nn.functional as F
from torch import nn
model = nn.Linear(128, 30).cuda().half()
loss = F.cross_entropy(model(x), y)
loss.backward()
optimizer.step()
"""


def test_selection_by_code_name_prefix_and_all():
    assert resolve(["AMP201"]) == {"AMP201"}
    assert resolve(["dim-not-multiple-of-8", "amp3"]) == {
        "AMP201",
        "AMP301",
        "AMP302",
        "AMP303",
        "AMP304",
        "AMP305",
        "AMP307",
    }
    assert "AMP306" not in resolve(["ALL"]) | resolve(["AMP"])  # off by default: explicit only
    assert resolve(["master-weights-without-scaling"]) == {"AMP306"}
    with pytest.raises(ValueError, match="unknown rule 'AMP999'"):
        resolve(["AMP999"])
    assert "AMP306" not in Settings().select


def test_assume_amp_treats_float32_files_as_reduced_precision():
    assert lint_source(FLOAT32_SCRIPT, "m.py") == []
    findings = lint_source(FLOAT32_SCRIPT, "m.py", settings=Settings(assume_amp="bfloat16"))
    assert [(f.line, f.code) for f in findings] == [(2, "AMP201"), (2, "AMP201")]
    assert "bfloat16" in findings[0].message


def test_alignment_and_min_dimension_settings():
    findings = lint_source(FLOAT16_SCRIPT, "m.py", settings=Settings(select=frozenset({"AMP201"})))
    assert [f.message.split(" is")[0] for f in findings] == ["Linear out_features=30"]
    assert lint_source(FLOAT16_SCRIPT, "m.py", settings=Settings(alignment=2)) == [
        f for f in lint_source(FLOAT16_SCRIPT, "m.py") if f.code != "AMP201"
    ]
    quiet = Settings(select=frozenset({"AMP201"}), min_dimension=32)
    assert lint_source(FLOAT16_SCRIPT, "m.py", settings=quiet) == []


def test_a_failing_rule_is_reported_and_the_others_still_run(monkeypatch):
    def boom(ctx):
        raise KeyError("unexpected node")
        yield  # pragma: no cover

    broken = dataclasses.replace(RULES["AMP201"], check=boom)
    monkeypatch.setitem(rules_module.RULES, "AMP201", broken)
    findings = lint_source(FLOAT16_SCRIPT, "m.py")
    codes = [f.code for f in findings]
    assert "AMP000" in codes and "AMP301" in codes and "AMP101" in codes
    error = next(f for f in findings if f.code == "AMP000")
    assert "internal error in AMP201 (KeyError" in error.message


def test_findings_are_plain_sortable_picklable_data():
    findings = lint_source(FLOAT16_SCRIPT, "m.py")
    assert findings == sorted(findings) and findings
    assert pickle.loads(pickle.dumps(findings)) == findings
    data = findings[0].to_dict()
    assert set(data) >= {
        "path",
        "line",
        "column",
        "end_line",
        "end_column",
        "code",
        "name",
        "message",
    }
    assert Finding(**data) == findings[0]


def test_files_without_any_switch_are_not_parsed_but_syntax_is_checked():
    assert lint_source("x = nn.Dense(10)\n", "a.py") == []
    [error] = lint_source("x = (\n", "a.py")
    assert error.code == "AMP000" and error.message.startswith("syntax error at 1:")


def test_package_is_python39_syntax_and_never_imports_mxnet_or_numpy():
    import ast
    from pathlib import Path

    import amplint

    for path in Path(amplint.__file__).parent.rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source, feature_version=(3, 9))
        has_code = any(not isinstance(node, (ast.Expr, ast.ImportFrom)) for node in tree.body)
        if has_code and "|" in source:
            assert "from __future__ import annotations" in source, path
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            (node.module or "").split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
        }
        assert not imported & {"mxnet", "numpy", "torch", "tensorflow", "keras"}, path


def test_an_issue_on_a_foreign_node_is_an_internal_error_not_a_crash(monkeypatch):
    import libcst as cst

    from amplint.rules.api import Issue

    def stray(ctx):
        yield Issue(cst.Name("elsewhere"), "not in this tree")

    monkeypatch.setitem(
        rules_module.RULES, "AMP201", dataclasses.replace(RULES["AMP201"], check=stray)
    )
    [error] = lint_source(FLOAT16_SCRIPT, "m.py", settings=Settings(select=frozenset({"AMP201"})))
    assert error.code == "AMP000" and "internal error in locating findings" in error.message


@pytest.mark.parametrize(
    ("source", "parsed"),
    [
        ("x = clip(boxes, 0)  # clip with (0, float16.max)\n", False),
        ('"""Works in float16 and bfloat16 alike."""\nx = 1\n', False),
        ("net.cast('float16')\n", True),
        ("from mxnet.contrib import amp\namp.init()\n", True),
        ("net.cast('float16'\n", True),  # does not tokenize: kept, the text test cannot tell
    ],
)
def test_only_code_that_mentions_reduced_precision_is_parsed(source, parsed):
    from amplint.engine import might_hold_hazard
    from amplint.project import NO_CONTEXT

    assert might_hold_hazard(source, NO_CONTEXT, Settings()) is parsed


@pytest.mark.parametrize(
    "helper",
    [
        # a helper of a training script: the scaler and the optimizer arrive as parameters
        "def step(loss, optimizer, grad_scaler):\n"
        "    grad_scaler.scale(loss).backward()\n"
        "    optimizer.step()\n",
        # Accelerate's factory, a scaler named like nothing in particular
        "from accelerate.utils import get_grad_scaler\n"
        "def train(model, loader, optimizer):\n"
        "    gs = get_grad_scaler()\n"
        "    for x, y in loader:\n"
        "        gs.scale(model(x, y)).backward()\n"
        "        optimizer.step()\n",
    ],
)
def test_a_grad_scaler_without_any_precision_switch_is_parsed_and_checked(helper):
    """AMP307 needs no switch in the file: the pre-filter holds the words of the scalers of the
    switch table (its constructors, and calls of objects named like a scaler)."""
    source = "import torch\n" + helper
    [finding] = lint_source(source, "step.py")
    assert finding.code == "AMP307" and "bypasses the GradScaler" in finding.message
