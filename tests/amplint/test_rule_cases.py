"""Every rule's VALID cases give no finding of that rule; INVALID cases give one on each line
marked ``# CODE`` and nowhere else."""

from __future__ import annotations

import re
import textwrap

import pytest

from amplint.engine import lint_source
from amplint.rules import RULES
from amplint.settings import Settings

CASES = [
    pytest.param(rule, kind, i, source, id=f"{code}-{kind}-{i}")
    for code, rule in RULES.items()
    for kind, cases in (("valid", rule.valid), ("invalid", rule.invalid))
    for i, source in enumerate(cases)
]


def marked_lines(source: str, code: str) -> set[int]:
    pattern = re.compile(rf"#\s*{code}\b")
    return {n for n, line in enumerate(source.splitlines(), 1) if pattern.search(line)}


@pytest.mark.parametrize(("rule", "kind", "number", "source"), CASES)
def test_rule_case(rule, kind, number, source):
    source = textwrap.dedent(source)
    findings = lint_source(source, "case.py", settings=Settings(select=frozenset({rule.code})))
    assert all(f.code != "AMP000" for f in findings), findings
    reported = {f.line for f in findings if f.code == rule.code}
    expected = marked_lines(source, rule.code) if kind == "invalid" else set()
    assert reported == expected, [f.message for f in findings]
    if kind == "invalid":
        assert expected, "an INVALID case must mark at least one line"


def test_every_rule_has_cases_and_docs():
    for rule in RULES.values():
        assert rule.valid and rule.invalid, rule.code
        assert re.fullmatch(r"AMP\d{3}", rule.code) and re.fullmatch(r"[a-z0-9-]+", rule.name)
        for heading in ("Why it matters", "Example", "Fix"):
            assert heading in rule.doc, (rule.code, heading)


def test_keras_softmax_with_an_explicit_float16_dtype_is_reported():
    # Kept out of AMP101's INVALID list: the --fix tests run every INVALID case, and this one
    # needs a fix that replaces an existing dtype argument.
    source = (
        "from tensorflow import keras\nfrom tensorflow.keras import layers\n"
        'keras.mixed_precision.set_global_policy("mixed_float16")\n'
        'model = keras.Sequential([layers.Softmax(dtype="mixed_float16")])\n'
    )
    findings = lint_source(source, "m.py", settings=Settings(select=frozenset({"AMP101"})))
    assert [(f.line, f.code) for f in findings] == [(4, "AMP101")]


@pytest.mark.parametrize(("batch", "advice"), [(4, "use 8"), (100, "use 96 or 104")])
def test_batch_size_advice_names_distinct_sizes(batch, advice):
    source = (
        "import torch\nfrom torch.utils.data import DataLoader\n"
        f"loader = DataLoader(data, batch_size={batch})\n"
        "model = torch.nn.Linear(512, 16).half()\n"
        "for x, y in loader:\n    model(x).float().sum().backward()\n"
    )
    findings = lint_source(source, "m.py", settings=Settings(select=frozenset({"AMP202"})))
    assert [f.message.rsplit("; ", 1)[1] for f in findings] == [advice]
