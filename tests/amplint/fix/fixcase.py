"""Helpers for the fix tests (imported by name, as tests are not packages): lint and fix a
text in memory, as ``--fix`` does for one file."""

from __future__ import annotations

import textwrap

from amplint.engine import lint_source
from amplint.fix.apply import FileFix, fix_source
from amplint.settings import Settings


def settings_for(*codes: str) -> Settings:
    from amplint.settings import default_selection

    return Settings(select=frozenset(codes) if codes else default_selection())


def lint(text: str, *codes: str) -> list:
    return lint_source(text, "case.py", settings=settings_for(*codes))


def fix(text: str, *codes: str, unsafe: bool = True) -> FileFix:
    """Fix ``text`` (dedented) for ``codes`` (default: the default rules)."""
    text = textwrap.dedent(text)
    return fix_source(text, lint(text, *codes), lambda new: lint(new, *codes), unsafe)


def assert_fixed(before: str, after: str, *codes: str, unsafe: bool = True) -> FileFix:
    """``before`` fixes to exactly ``after``; fixing again changes nothing; the fixed text no
    longer has findings of ``codes``."""
    result = fix(before, *codes, unsafe=unsafe)
    assert result.fixed == textwrap.dedent(after), result.fixed
    again = fix(result.fixed, *codes, unsafe=unsafe)
    assert again.fixed == result.fixed and again.applied == 0
    assert [f for f in lint(result.fixed, *codes) if f.code in codes] == []
    return result
