"""Property tests: generated and mutated source never crashes amplint and gives the same,
sorted answer every time (also across hash seeds, through the real CLI)."""

from __future__ import annotations

import re
import textwrap

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amplint.engine import lint_source
from amplint.rules import RULES
from amplint.settings import Settings

SEEDS = [textwrap.dedent(case) for rule in RULES.values() for case in (*rule.valid, *rule.invalid)]
EVERY_RULE = Settings(select=frozenset(RULES), assume_amp=None)
TOKENS = [
    "(",
    ")",
    "[",
    "]",
    ":",
    ",",
    "\n",
    "    ",
    "\t",
    "#",
    "'",
    '"',
    '"""',
    "\\",
    "=",
    "*",
    "amp.init()",
    "net.cast('float16')",
    ".half()",
    "nn.Dense(10)",
    "with autograd.record():",
    "loss.backward()",
    "if args.amp:",
    "else:",
    "def f(x=3):",
    "é",
    "\x00",
    "\r",
    "lambda: 0",
]


@st.composite
def mutated(draw) -> str:
    source = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(0, 4))):
        position = draw(st.integers(0, len(source)))
        action = draw(st.sampled_from(["insert", "delete", "duplicate-line", "swap-lines"]))
        if action == "insert":
            source = source[:position] + draw(st.sampled_from(TOKENS)) + source[position:]
        elif action == "delete":
            end = position + draw(st.integers(1, 30))
            source = source[:position] + source[end:]
        else:
            lines = source.splitlines(keepends=True) or [""]
            i = draw(st.integers(0, len(lines) - 1))
            j = draw(st.integers(0, len(lines) - 1))
            if action == "duplicate-line":
                lines.insert(i, lines[j])
            else:
                lines[i], lines[j] = lines[j], lines[i]
            source = "".join(lines)
    return source


@st.composite
def recombined(draw) -> str:
    """Valid modules: several cases one after another, their numbers and strings changed."""
    source = "\n".join(draw(st.lists(st.sampled_from(SEEDS), min_size=1, max_size=4)))
    numbers = draw(st.lists(st.integers(-3, 70000), min_size=1, max_size=8))
    source = re.sub(r"\b\d+\b", lambda m: str(numbers[int(m.group()) % len(numbers)]), source)
    words = draw(st.lists(st.sampled_from(["float16", "bfloat16", "float32", "softmax", "amp"])))
    for word in words:
        source = source.replace("float16", word, 1)
    return source


def assert_well_formed(source: str) -> None:
    first = lint_source(source, "gen.py", settings=EVERY_RULE)
    assert first == lint_source(source, "gen.py", settings=EVERY_RULE)
    assert first == sorted(first)
    line_count = len(re.split(r"\r\n|\r|\n", source))
    for finding in first:
        assert finding.code == "AMP000" or finding.code in RULES
        if finding.code == "AMP000":
            assert (finding.line, finding.column) == (1, 1)
        assert 1 <= finding.line <= finding.end_line <= line_count
        assert "internal error" not in finding.message, finding.message


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_cases_never_crash(source):
    assert_well_formed(source)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recombined())
def test_recombined_valid_modules_never_crash(source):
    assert_well_formed(source)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(TOKENS + list("abcxyz0189 .")), max_size=60))
def test_token_soup_never_crashes(tokens):
    assert_well_formed("".join(tokens))


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes(source):
    assert_well_formed(source)


def test_same_answer_across_hash_seeds(tmp_path, amplint):
    for number, source in enumerate(SEEDS):
        (tmp_path / f"case_{number}.py").write_text(source)
    outputs = {
        amplint(
            "check",
            ".",
            "--select",
            "ALL,AMP306",
            "--format",
            "json",
            cwd=tmp_path,
            env={"PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("0", "1", "4242")
    }
    assert len(outputs) == 1
    assert '"code": "AMP301"' in outputs.pop()
