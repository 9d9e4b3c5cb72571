"""Shared helper of the real-code cases: a snippet marks each expected finding on its line as
``# AMP101`` or ``# AMP101 (--dtype float16)`` (its configurations, ``; `` between several);
a snippet without marks must give no finding at all."""

from __future__ import annotations

import re
import textwrap

from amplint.engine import lint_source
from amplint.settings import Settings

_MARK = re.compile(r"#\s*(AMP\d{3})(?:\s*\(([^)]*)\))?")
ALL = frozenset({"AMP101", "AMP201", "AMP202", "AMP301", "AMP302", "AMP303", "AMP304", "AMP305"})


def expected(source: str) -> set[tuple[int, str, str]]:
    """(line, code, configurations) of every mark."""
    found = set()
    for number, line in enumerate(source.splitlines(), 1):
        for match in _MARK.finditer(line):
            found.add((number, match.group(1), match.group(2) or ""))
    return found


def reported(source: str, path: str = "train.py", select=ALL) -> set[tuple[int, str, str]]:
    findings = lint_source(source, path, settings=Settings(select=frozenset(select)))
    assert all(f.code != "AMP000" for f in findings), [f.message for f in findings]
    return {(f.line, f.code, "; ".join(getattr(f, "configurations", ()))) for f in findings}


def check(source: str, path: str = "train.py", select=ALL) -> None:
    """The snippet gives exactly its marked findings, with their configurations."""
    source = textwrap.dedent(source)
    found = reported(source, path, select)
    assert found == expected(source), sorted(found)


def check_project(root, files: dict[str, str], select=ALL) -> None:
    """The files, written under ``root`` and checked as one project (``amplint check root``),
    give exactly their marked findings, file by file."""
    from pathlib import Path

    from amplint.runner import Request, run

    texts = {name: textwrap.dedent(text) for name, text in files.items()}
    for name, text in texts.items():
        path = Path(root) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    request = Request(paths=(str(root),), use_cache=False, jobs=1, select=tuple(sorted(select)))
    findings = run(request).findings
    assert all(f.code != "AMP000" for f in findings), [f.message for f in findings]
    found = {
        (Path(f.path).relative_to(root).as_posix(), f.line, f.code, "; ".join(f.configurations))
        for f in findings
        if f.code in select
    }
    wanted = {(name, *mark) for name, text in texts.items() for mark in expected(text)}
    assert found == wanted, sorted(found)
