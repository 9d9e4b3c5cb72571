"""Syntax of a newer Python than the one running amplint: not a parse error, and checked like any
other code; code invalid in every version, and nesting deeper than Python allows, stay AMP000."""

from __future__ import annotations

import textwrap

import libcst
import pytest

from amplint.engine import lint_source
from amplint.project import code_only
from amplint.switches import in_code
from amplint.syntax import nesting, parse_problem

NEWER = {
    "pep695-type-alias": "type Batch = tuple[Tensor, Tensor]\n",
    "pep695-generic-alias": "type Pair[T] = tuple[T, T]\n",
    "pep695-generic-function": "def first[T](items: list[T]) -> T:\n    return items[0]\n",
    "pep695-generic-class": "class Box[T: (int, str), *Ts, **P](Base):\n    pass\n",
    "pep695-parameters-over-lines": "class B[\n  T,\n]:\n  pass\ndef f[\n  T,\n](x: T): ...\n",
    "pep696-default": "def f[T = int](x: T) -> T:\n    return x\n",
    "pep701-same-quotes": 'names = ["a"]\nprint(f"{", ".join(names)}")\n',
    "pep701-nested": 'x = f"{f"{f"{1}"}"}"\n',
    "pep701-backslash": "x = f\"{'\\n'.join(lines)}\"\n",
    "pep701-comment": 'x = f"""{\n    a  # the width\n}"""\n',
    "pep701-over-lines": 'x = f"{\n    a\n}"\ny = 2\n',
    "pep750-template": 'x = t"hello {name!r:>{width}}"\n',
    "pep758-except-without-parentheses": "try:\n    pass\nexcept KeyError, OSError:\n    pass\n",
    "pep654-except-star": "try:\n    pass\nexcept* ValueError:\n    pass\n",
    "pep634-match": "match x:\n  case [1, *rest]:\n    pass\n  case {'k': v}:\n    pass\n",
    "pep646-star-index-and-annotation": "def f(*args: *Ts) -> A[*Ts]:\n    pass\n",
}

INVALID_EVERYWHERE = {
    # Each has newer syntax before the mistake, which Python's parser (<3.12) stops at first.
    "after-alias": ("type X = int\nx = [*a for a in b]\n", 2),
    "after-generic": ("def f[T](x: T): pass\n1 = x\n", 2),
    "after-f-string": ('x = f"{", ".join(a)}"\ndef g(a=1, b): pass\n', 2),
    "after-match": ("match x:\n    case 1:\n        pass\nprint 'x'\n", 4),
    "in-a-generic-function": ("def f[T](x=1, y):\n    pass\n", 1),
    "unterminated-string": ("type X = int\nx = 'abc\n", 2),
    "plain": ("def f(:\n    pass\n", 1),
    # libcst parses it as a name, then its node check (this Python's isidentifier) refuses it
    "a-character-this-python-does-not-know": ("x = 1\n\U00013460\n", 2),
}


@pytest.mark.parametrize("source", NEWER.values(), ids=NEWER)
def test_syntax_of_a_newer_python_is_not_a_parse_error(source):
    assert parse_problem(source) is None
    assert lint_source(source, "m.py") == []


@pytest.mark.parametrize(("source", "line"), INVALID_EVERYWHERE.values(), ids=INVALID_EVERYWHERE)
def test_code_invalid_in_every_version_stays_a_parse_error(source, line):
    [error] = lint_source(source, "m.py")
    assert error.code == "AMP000"
    assert error.message.startswith(f"syntax error at {line}:"), error.message


def test_a_hazard_in_newer_syntax_is_found_like_any_other():
    """PEP 695/701 code is parsed by libcst and every rule runs on it."""
    source = textwrap.dedent(
        """
        import torch
        from torch import nn

        type Batch = tuple[torch.Tensor, torch.Tensor]

        class Head[T](nn.Module):
            def __init__(self, classes: int = 10):
                super().__init__()
                self.fc = nn.Linear(512, classes)

            def forward(self, x: T) -> T:
                print(f"{", ".join(str(d) for d in x.shape)}")
                return self.fc(x)

        model = Head().half()
        """
    )
    findings = lint_source(source, "head.py")
    assert [(f.line, f.code) for f in findings] == [(10, "AMP201")], findings


def test_nesting_deeper_than_python_allows_is_refused_before_libcst(monkeypatch):
    """libcst takes seconds on a thousand nested brackets and crashes past 1,500: it is never
    asked, also when Python's parser stopped earlier at newer syntax."""

    def refuse(*args, **kwargs):
        raise AssertionError("libcst must not parse this")

    monkeypatch.setattr(libcst, "parse_module", refuse)
    deep = "[" * 1600 + "]" * 1600
    for source in (f"x = {deep}\n", f"type X = int\nx = {deep}\n", 'x = f"{' * 300 + '}"' * 300):
        [error] = lint_source(source, "m.py")
        assert error.code == "AMP000"
        assert "nested" in error.message, error.message


def test_nesting_counts_brackets_and_f_string_fields_outside_strings_and_comments():
    assert nesting("f(a[1], {2: (3,)})  # ((((\n") == 3
    assert nesting('x = "(((("\ny = f"{a[f"{b}"]}"\n') == 3
    assert nesting("x = [(1,\n    'abc\n    ]\n") == 2  # up to the string that does not end


def test_strings_are_lexed_by_pep_701_also_on_older_pythons():
    """On Python 3.11 ``tokenize`` reads ``f"{'"'}"`` as a string that ends at the second quote,
    which turns the rest of the line inside out: the help text became code, a float16 switch."""
    source = 'label = f"{\'"\'}"; note = "call model.half() for speed"  # or .half()\n'
    assert code_only(source) == "label = f\"{''}\"; note = ''  \n"
    assert not in_code(source)
    switch = 'print(f"{", ".join(names)}")\nmodel = model.half()\n'
    assert in_code(switch)
    kept = "x = f'{args.dtype!r:>{width}} and {{literal}}' + 'float16' + r'\\d+'\n"
    assert code_only(kept) == "x = f'{args.dtype!r:{width}}' + 'float16' + ''\n"


def test_a_comment_holding_a_null_byte_at_the_end_without_a_line_break():
    """Found by the token-soup property test: libcst places the end of the module on a line
    after the last line break; Python 3.11 refuses the null byte."""
    problem = parse_problem("#\x00")
    assert problem == "syntax error: source code string cannot contain null bytes"
