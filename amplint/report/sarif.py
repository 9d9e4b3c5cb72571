"""SARIF 2.1.0 output for code scanning (GitHub, GitLab, VS Code's SARIF viewer).

Every rule is described in ``tool.driver.rules`` with its kebab-case name and its documentation
(the first line as the short description, the whole text as help); each finding is a result
with a region whose columns are 1-based and whose end is exclusive, as SARIF defines them.
Paths are relative to the current folder, resolved against ``%SRCROOT%``. Findings in
notebooks carry their cell and line in the message and in ``properties``, and point at the line
of the ``.ipynb`` file that holds that line of code (line 1 when the file is not laid out as
Jupyter writes it: GitHub code scanning needs a ``region.startLine`` on every result). A finding
that holds only in some configurations of the script lists them in ``properties.configurations``.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import amplint
from amplint.findings import Finding

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://pypi.org/project/gluon-amp/"


def level(code: str) -> str:
    """Performance rules (AMP2xx) are warnings; wrong results and parse errors are errors."""
    return "warning" if code.startswith("AMP2") else "error"


def _documentation(rule: Any) -> str:
    text = getattr(rule, "doc", None) or inspect.getdoc(rule) or ""
    return inspect.cleandoc(text) if text else ""


def rule_descriptor(code: str, rule: Any) -> dict[str, Any]:
    """The ``reportingDescriptor`` of one rule, from its name and documentation."""
    doc = _documentation(rule)
    name = getattr(rule, "name", code)
    summary = doc.splitlines()[0].strip() if doc else name
    return {
        "id": code,
        "name": name,
        "shortDescription": {"text": summary},
        "fullDescription": {"text": doc or summary},
        "help": {"text": doc or summary, "markdown": doc or summary},
        "defaultConfiguration": {
            "enabled": bool(getattr(rule, "default", True)),
            "level": level(code),
        },
        "properties": {"tags": ["mixed-precision"]},
    }


def _artifact(path: str) -> dict[str, str]:
    """A relative path resolved against ``%SRCROOT%``; an absolute one as a ``file:`` URI."""
    if Path(path).is_absolute():
        return {"uri": Path(path).as_uri()}
    return {"uri": quote(Path(path).as_posix(), safe="/"), "uriBaseId": "%SRCROOT%"}


def _result(finding: Finding, index: int) -> dict[str, Any]:
    location: dict[str, Any] = {"artifactLocation": _artifact(finding.path)}
    message = finding.message
    properties: dict[str, Any] = {"name": finding.name}
    if finding.configurations:
        properties["configurations"] = list(finding.configurations)
    if finding.cell is None:
        location["region"] = {
            "startLine": finding.line,
            "startColumn": finding.column,
            "endLine": finding.end_line,
            "endColumn": max(finding.end_column, 1),
        }
    else:
        location["region"] = {"startLine": finding.notebook_line or 1}
        message = f"cell {finding.cell}, line {finding.line}: {message}"
        properties.update(cell=finding.cell, line_in_cell=finding.line)
    return {
        "ruleId": finding.code,
        "ruleIndex": index,
        "level": level(finding.code),
        "message": {"text": message},
        "locations": [{"physicalLocation": location}],
        "properties": properties,
    }


def to_sarif(
    findings: Sequence[Finding],
    rules: Iterable[tuple[str, Any]],
    root: Path | None = None,
    successful: bool = True,
) -> dict[str, Any]:
    """A SARIF log with one run: the rules (as ``(code, rule)`` pairs) and the findings.

    ``successful`` is false when some file could not be analysed (exit code 2).
    """
    descriptors = [rule_descriptor(code, rule) for code, rule in rules]
    known = {descriptor["id"] for descriptor in descriptors}
    for finding in findings:  # codes outside the registry (AMP000) still need a descriptor
        if finding.code not in known:
            known.add(finding.code)
            descriptors.append(
                {
                    "id": finding.code,
                    "name": finding.name,
                    "shortDescription": {"text": finding.name},
                }
            )
    index = {descriptor["id"]: position for position, descriptor in enumerate(descriptors)}
    base = (root or Path.cwd()).absolute().as_uri().rstrip("/") + "/"
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "amplint",
                        "version": amplint.__version__,
                        "informationUri": INFORMATION_URI,
                        "rules": descriptors,
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"uri": base}},
                "invocations": [{"executionSuccessful": successful}],
                "columnKind": "unicodeCodePoints",
                "results": [_result(f, index[f.code]) for f in findings],
            }
        ],
    }


def render(
    findings: Sequence[Finding],
    rules: Iterable[tuple[str, Any]],
    root: Path | None = None,
    successful: bool = True,
) -> str:
    """The SARIF log as indented JSON text (newline-terminated)."""
    return json.dumps(to_sarif(findings, rules, root, successful), indent=2) + "\n"
