"""``path:line:col: CODE message`` lines, then a summary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from amplint.findings import Finding


def location(finding: Finding) -> str:
    """``path:line:col`` (``path[cell N]:line:col`` in notebooks)."""
    cell = f"[cell {finding.cell}]" if finding.cell is not None else ""
    return f"{finding.path}{cell}:{finding.line}:{finding.column}"


def render(findings: Sequence[Finding], out: TextIO) -> None:
    """One ``path:line:col: CODE message`` line per finding."""
    for finding in findings:
        out.write(f"{location(finding)}: {finding.code} {finding.message}\n")


def summary(findings: Sequence[Finding], files: int, problems: int = 0) -> str:
    """One line: what was found in how many files (and how many given paths were unusable)."""
    errors = sum(1 for f in findings if f.code == "AMP000")
    hazards = len(findings) - errors
    checked = f"{files} file{'s' if files != 1 else ''} checked"
    if not findings and not problems:
        return f"All clear: {checked}, no mixed-precision hazards found."
    if not findings:
        paths = f"{problems} given path{'s' if problems != 1 else ''}"
        return f"No hazards found ({checked}), but {paths} could not be read."
    parts = []
    if hazards:
        parts.append(f"{hazards} finding{'s' if hazards != 1 else ''}")
    if errors:
        parts.append(f"{errors} file{'s' if errors != 1 else ''} could not be analysed")
    return f"Found {', '.join(parts)} ({checked})."
