"""Every rule that has a fixer, on its own INVALID cases (kept beside the rule): the fixed text
parses, a second fix changes nothing, findings that stay say why, and each fixer fixes at least
one of its rule's cases (so a rule that starts reporting another node is noticed here).

AMP306's cases import no amp, which its fix needs: they are also replayed with gluon_amp
imported."""

from __future__ import annotations

import textwrap

import pytest
from fixcase import fix, lint

from amplint.fix import FIXERS
from amplint.fix.apply import parses
from amplint.rules import RULES

# Cases of these rules are also replayed with this line in front of them.
WITH_AMP = {"AMP306": "import gluon_amp\n"}


@pytest.mark.parametrize("code", sorted(code for code in FIXERS if code in RULES))
def test_fixer_on_its_rule_cases(code):
    fixed_any = False
    cases = [textwrap.dedent(case) for case in RULES[code].invalid]
    if code in WITH_AMP:
        cases += [WITH_AMP[code] + case.lstrip("\n") for case in cases]
    for source in cases:
        result = fix(source, code)
        assert parses(result.fixed), result.fixed
        again = fix(result.fixed, code)
        assert again.fixed == result.fixed and again.applied == 0, result.fixed
        for finding in lint(result.fixed, code):
            assert again.reasons.get(finding), (finding, result.fixed)
        fixed_any |= result.applied > 0 and not any(f.code == code for f in result.remaining)
    assert fixed_any, f"no {code} case was fixed"
