"""GitHub Actions workflow commands: one ``::error`` annotation per finding.

``::error file=PATH,line=L,col=C,endLine=L2,endColumn=C2,title=TITLE::MESSAGE``, escaped as the
runner expects (``%``, CR and LF in the message; also ``:`` and ``,`` in property values).
Notebook findings name their cell in the message and carry the line of the ``.ipynb`` file that
holds that line of code, where it is known (a cell's line is not a line of the file).
"""

from __future__ import annotations

from collections.abc import Iterable

from amplint.findings import Finding


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(finding: Finding) -> str:
    """The workflow command for one finding."""
    properties = [("file", finding.path)]
    message = f"{finding.code} {finding.message}"
    if finding.cell is None:
        properties += [
            ("line", str(finding.line)),
            ("col", str(finding.column)),
            ("endLine", str(finding.end_line)),
            ("endColumn", str(finding.end_column)),
        ]
    else:
        message = f"cell {finding.cell}, line {finding.line}: {message}"
        if finding.notebook_line is not None:
            properties.append(("line", str(finding.notebook_line)))
    properties.append(("title", f"amplint {finding.code} ({finding.name})"))
    joined = ",".join(f"{key}={_escape_property(value)}" for key, value in properties)
    return f"::error {joined}::{_escape_data(message)}"


def render(findings: Iterable[Finding]) -> str:
    """All annotations, one per line."""
    return "".join(annotation(finding) + "\n" for finding in findings)
