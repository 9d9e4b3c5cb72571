"""SARIF 2.1.0 (validated against the vendored OASIS schema) and GitHub annotations."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from amplint.findings import Finding, parse_error
from amplint.report import github, sarif
from amplint.rules import RULES

SCHEMA = json.loads((Path(__file__).parent / "sarif-schema-2.1.0.json").read_text())

FINDINGS = [
    Finding("src/model.py", 4, 9, 4, 23, "AMP201", "dim-not-multiple-of-8", "Dense(1000) ..."),
    Finding("nb/tutorial.ipynb", 2, 1, 2, 5, "AMP201", "dim-not-multiple-of-8", "m", cell=3),
    parse_error("src/broken.py", "syntax error: invalid syntax"),
]


def validate(log):
    validator = jsonschema.Draft4Validator(
        SCHEMA, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(log), key=str)
    assert not errors, errors[0]


def test_sarif_validates_and_carries_rule_docs(tmp_path):
    log = json.loads(sarif.render(FINDINGS, RULES.items(), root=tmp_path, successful=False))
    validate(log)
    run = log["runs"][0]
    rules = {rule["id"]: rule for rule in run["tool"]["driver"]["rules"]}
    for code, rule in RULES.items():
        assert rules[code]["name"] == rule.name
        assert rules[code]["help"]["text"].startswith(rule.doc.strip().splitlines()[0])
        assert rules[code]["shortDescription"]["text"] == rule.doc.strip().splitlines()[0]
    assert "AMP000" in rules
    first, cell, broken = run["results"]
    assert first["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 4,
        "startColumn": 9,
        "endLine": 4,
        "endColumn": 23,
    }
    assert first["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "src/model.py"
    assert first["level"] == "warning" and broken["level"] == "error"
    assert run["tool"]["driver"]["rules"][first["ruleIndex"]]["id"] == "AMP201"
    assert cell["locations"][0]["physicalLocation"]["region"] == {"startLine": 1}
    assert cell["properties"]["cell"] == 3 and cell["message"]["text"].startswith("cell 3, line 2")
    assert run["invocations"] == [{"executionSuccessful": False}]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == tmp_path.as_uri() + "/"


def test_an_empty_run_validates_and_a_broken_log_does_not():
    log = sarif.to_sarif([], RULES.items())
    validate(log)
    log["runs"][0]["results"] = [{"ruleId": "AMP201"}]  # no message: invalid SARIF
    with pytest.raises(AssertionError):
        validate(log)


def test_github_annotations_escape_properties_and_data():
    odd = Finding("a,b:c.py", 1, 2, 3, 4, "AMP301", "missing-loss-scaling", "50% off\nnext")
    assert github.annotation(odd) == (
        "::error file=a%2Cb%3Ac.py,line=1,col=2,endLine=3,endColumn=4,"
        "title=amplint AMP301 (missing-loss-scaling)::AMP301 50%25 off%0Anext"
    )
    lines = github.render(FINDINGS).splitlines()
    assert lines[0].startswith("::error file=src/model.py,line=4,col=9,endLine=4,endColumn=23,")
    assert lines[1] == (
        "::error file=nb/tutorial.ipynb,title=amplint AMP201 (dim-not-multiple-of-8)"
        "::cell 3, line 2: AMP201 m"
    )


def test_sarif_uris_are_encoded_relative_or_absolute(tmp_path):
    odd = Finding("dir with space/m#1.py", 1, 1, 1, 2, "AMP201", "dim-not-multiple-of-8", "m")
    absolute = Finding(str(tmp_path / "a.py"), 1, 1, 1, 2, "AMP201", "dim-not-multiple-of-8", "m")
    log = sarif.to_sarif([odd, absolute], RULES.items())
    validate(log)
    first, second = (r["locations"][0]["physicalLocation"] for r in log["runs"][0]["results"])
    assert first["artifactLocation"] == {
        "uri": "dir%20with%20space/m%231.py",
        "uriBaseId": "%SRCROOT%",
    }
    assert second["artifactLocation"] == {"uri": (tmp_path / "a.py").as_uri()}
