"""``amplint check --fix / --diff``: fix the files of a check run and say what remains.

The new text of a file is re-linted through the same runner as the check (its configuration, its
project context, the file's path), reading the new text in place of the file. After ``--fix`` has
written the files, the check runs again on disk so the findings that remain are exactly what a
plain ``amplint check`` reports next. Standard input is fixed in memory: ``--fix`` writes the
fixed source to standard output (as ruff does, for editors) and the report to standard error.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

from amplint.findings import Finding
from amplint.fix.apply import fix_source
from amplint.fix.files import FixRun, fix_files, unified_diff


def fix_outcome(request, outcome, unsafe: bool, write: bool):
    """Fix what ``outcome`` (the result of ``runner.run(request)``) found. Returns the outcome
    of the findings that remain, annotated with why they were not fixed, and the FixRun (whose
    ``stdin`` holds the fixed standard input, if it was checked)."""
    from amplint.runner import STDIN, run

    stdin_name = request.stdin_filename or STDIN if STDIN in request.paths else None
    on_disk = [f for f in outcome.findings if f.path != stdin_name]
    paths = {f.path: Path(f.path) for f in on_disk if f.cell is None}
    paths = {shown: path for shown, path in paths.items() if not shown.endswith(".ipynb")}

    def relint(display: str, text: str) -> list[Finding]:
        again = dataclasses.replace(request, paths=(STDIN,), stdin=text, stdin_filename=display)
        return [f for f in run(again).findings if f.path == display]

    fixed = fix_files(on_disk, paths, relint, unsafe=unsafe, write=write)
    remaining = fixed.remaining
    if write and fixed.diffs:
        remaining = [f for f in run(request).findings if f.path != stdin_name]
    if stdin_name is not None and request.stdin is not None:
        own = [f for f in outcome.findings if f.path == stdin_name]
        result = fix_source(request.stdin, own, functools.partial(relint, stdin_name), unsafe)
        if result.changed:
            fixed.diffs.append(unified_diff(stdin_name, result.original, result.fixed))
        fixed.fixed += result.applied
        fixed.reasons.update(result.reasons)
        fixed.stdin = result.fixed
        remaining = sorted([*remaining, *result.remaining])
    final = dataclasses.replace(
        outcome,
        findings=[annotate(f, fixed) for f in remaining],
        problems=[*outcome.problems, *fixed.errors],
    )
    return final, fixed


def annotate(finding: Finding, fixed: FixRun) -> Finding:
    """The finding with the reason it was not fixed appended to its message, if there is one."""
    reason = fixed.reasons.get(finding)
    if reason is None:
        return finding
    return dataclasses.replace(finding, message=f"{finding.message} [not fixed: {reason}]")


def summary(fixed: FixRun, remaining: int, write: bool) -> str:
    """``N fixed, M remaining.`` (``Would fix ...`` for ``--diff``)."""
    noun = "finding" if fixed.fixed == 1 else "findings"
    if write:
        return f"{fixed.fixed} fixed, {remaining} remaining."
    return f"Would fix {fixed.fixed} {noun}, {remaining} would remain."
