"""Conditions over configurations (amplint.conditions) and what options and cases make of code
(amplint.options, amplint.cases)."""

from __future__ import annotations

import libcst as cst
import pytest
from hypothesis import given
from hypothesis import strategies as st

from amplint.cases import DType, Evaluator, Symbol
from amplint.conditions import ALWAYS, BOOL, NEVER, TEXT, Option, limit, truthy
from amplint.index import FileIndex

AMP = Option("--amp", "--amp", BOOL, False, sets=True)
NO_AMP = Option("--no-amp", "--no-amp", BOOL, True, sets=False)
DTYPE = Option("--dtype", "--dtype", TEXT, "float32")
CHOSEN = Option("--precision", "--precision", TEXT, "32", choices=("32", "16", "bf16"))
TEST = Option("?cuda", "torch.cuda.is_available()", BOOL, test=True)
ATOMS = [
    truthy(AMP),
    truthy(AMP, False),
    truthy(NO_AMP),
    limit(DTYPE, {"float16"}),
    limit(DTYPE, {"float16", "bfloat16"}),
    limit(DTYPE, {"float32"}, inside=False),
    limit(CHOSEN, {"16"}),
    limit(CHOSEN, {"16", "bf16"}, inside=False),
    truthy(TEST),
]


def test_describe_names_what_users_set():
    assert (truthy(AMP) & limit(DTYPE, {"float16"})).describe() == ("--amp --dtype float16",)
    assert truthy(AMP, False).describe() == ("without --amp",)
    assert truthy(NO_AMP, False).describe() == ("--no-amp",)
    assert (limit(DTYPE, {"float16"}) | limit(DTYPE, {"bfloat16"})).describe() == (
        "--dtype bfloat16|float16",
    )
    assert limit(CHOSEN, {"32"}, inside=False).describe() == ("--precision 16|bf16",)
    assert (truthy(TEST) & truthy(AMP)).settings().describe() == ("--amp",)
    assert ALWAYS.describe() == () and not NEVER.possible


def test_a_flag_and_its_negation_cover_everything_and_nothing():
    assert (truthy(AMP) | truthy(AMP, False)).always
    assert not (truthy(AMP) & truthy(AMP, False)).possible
    assert ((truthy(AMP) & truthy(TEST, False)) | truthy(TEST)).describe() == (
        "--amp",
        "`torch.cuda.is_available()`",
    )


@given(st.lists(st.sampled_from(range(len(ATOMS))), min_size=1, max_size=4), st.booleans())
def test_algebra_laws(picked, conjoin):
    """A condition and its negation partition the configurations; simplification keeps them."""
    condition = ATOMS[picked[0]]
    for i in picked[1:]:
        condition = condition & ATOMS[i] if conjoin else condition | ATOMS[i]
    assert not (condition & ~condition).possible
    assert (condition | ~condition).always
    twice = ~~condition  # the same configurations
    assert not (twice & ~condition).possible and not (condition & ~twice).possible


def _evaluator(source: str) -> tuple[FileIndex, Evaluator]:
    index = FileIndex.build(cst.parse_module(source))
    return index, Evaluator(index)


def _value(source: str, name: str):
    index, evaluator = _evaluator(source)
    expr = cst.parse_expression(name)
    return [(c.describe(), v) for c, v in evaluator.cases(expr, index.module_scope)]


def test_options_take_every_value_of_their_type():
    source = (
        "import argparse\np = argparse.ArgumentParser()\n"
        "p.add_argument('--dtype', type=str, default='float32')\n"
        "p.add_argument('--fp16', action='store_true')\nargs = p.parse_args()\n"
        "d = 'float16' if args.fp16 else 'float32'\n"
    )
    ((condition, value),) = _value(source, "args.dtype")
    assert isinstance(value, Symbol) and value.option.key == "--dtype" and condition == ()
    assert _value(source, "d") == [(("--fp16",), "float16"), (("without --fp16",), "float32")]


def test_reaching_assignments_and_a_dtype_table():
    source = (
        "import torch\nflag = cfg.amp\ndtype = torch.float32\nif flag:\n"
        "    dtype = torch.float16\ntable = {'a': torch.bfloat16}\n"
    )
    assert _value(source, "dtype") == [
        (("cfg.amp",), DType("float16")),
        (("not cfg.amp",), DType("float32")),
    ]
    assert _value(source, "table['a']") == [((), DType("bfloat16"))]


@pytest.mark.parametrize(
    ("test", "expected"),
    [
        ("args.amp", ("--amp",)),
        ("not args.amp", ("without --amp",)),
        ("args.dtype != 'float32'", ("--dtype not float32",)),
        ("args.dtype in ('float16', 'bfloat16')", ("--dtype bfloat16|float16",)),
        ("scaler is not None", ("--amp",)),
    ],
)
def test_tests_over_options_and_objects(test, expected):
    source = (
        "import argparse, torch\np = argparse.ArgumentParser()\n"
        "p.add_argument('--amp', action='store_true')\np.add_argument('--dtype', default='x')\n"
        "args = p.parse_args()\nscaler = None\nif args.amp:\n"
        "    scaler = torch.cuda.amp.GradScaler()\n"
    )
    index, evaluator = _evaluator(source)
    condition = evaluator.condition(cst.parse_expression(test), index.module_scope)
    assert condition.describe() == expected
