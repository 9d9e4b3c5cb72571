"""examples/hazards: amplint reports exactly the marked lines (``# AMP201``) of every hazard
script and nothing on its corrected twin; the project's other examples lint clean."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from amplint.files import discover
from amplint.rules import RULES
from amplint.runner import Request, run

REPO = Path(__file__).resolve().parents[2]
HAZARDS = REPO / "examples" / "hazards"
MARK = re.compile(r"#\s*((?:AMP\d{3}\s*)+)$")
SCRIPTS = sorted(p for p in HAZARDS.glob("*.py") if not p.stem.endswith("_fixed"))


def marked(path: Path) -> list[tuple[int, str]]:
    found = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = MARK.search(line)
        if match:
            found += [(number, code) for code in match.group(1).split()]
    return sorted(found)


EVERY_RULE = ("ALL", "AMP306")  # AMP306 is off by default and only its own code turns it on


def lint(*paths: Path, select: tuple[str, ...] = EVERY_RULE):
    request = Request(paths=tuple(map(str, paths)), select=select, use_cache=False, jobs=1)
    return run(request).findings


def alone(script: Path, folder: Path) -> Path:
    """A copy of ``script`` in a folder of its own: a hazard script is self-contained, and its
    findings must not depend on the rest of the repository."""
    copy = folder / script.name
    copy.write_text(script.read_text())
    return copy


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_hazard_script_reports_exactly_its_marked_lines(script, tmp_path):
    expected = marked(script)
    assert expected, "a hazard example must mark its mistakes"
    assert sorted({(f.line, f.code) for f in lint(alone(script, tmp_path))}) == expected


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_fixed_twin_is_clean(script, tmp_path):
    twin = script.with_name(f"{script.stem}_fixed.py")
    assert twin.exists(), f"{script.name} needs a corrected twin"
    assert marked(twin) == []
    assert lint(alone(twin, tmp_path)) == []


def test_examples_cover_every_rule():
    codes = {code for script in SCRIPTS for _, code in marked(script)}
    assert codes == set(RULES)


def test_project_examples_outside_hazards_lint_clean():
    """In their real context (the repository), as the main job checks them."""
    found = discover([str(REPO / "examples")])
    files = [p for p, _ in found.files if HAZARDS not in p.resolve().parents]
    assert files
    assert lint(*files, select=()) == []
