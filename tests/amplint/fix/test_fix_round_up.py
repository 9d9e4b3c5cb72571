"""AMP201/AMP202 (unsafe): dimensions and batch sizes rounded up where they were written."""

from __future__ import annotations

from fixcase import assert_fixed, fix, lint

from amplint.engine import lint_source
from amplint.fix.apply import fix_source
from amplint.settings import Settings

HEADER = """\
import argparse
from mxnet import gluon
from mxnet.contrib import amp
amp.init()
"""


def test_literal_in_the_call_keeps_spacing_and_comments():
    assert_fixed(
        HEADER + "net = gluon.nn.Dense( 1000 ,in_units = 100 )  # keep me\n",
        HEADER + "net = gluon.nn.Dense( 1000 ,in_units = 104 )  # keep me\n",
        "AMP201",
    )


def test_module_constant_shared_by_two_layers_is_rounded_once():
    before = HEADER + (
        "NUM_CLASSES = 10  # the ten digits\n"
        "head = gluon.nn.Dense(NUM_CLASSES)\n"
        "aux = gluon.nn.Dense(NUM_CLASSES, in_units=512)\n"
    )
    result = assert_fixed(before, before.replace("= 10 ", "= 16 "), "AMP201")
    assert result.applied == 2


def test_argparse_default_and_default_argument():
    before = HEADER + (
        "parser = argparse.ArgumentParser()\n"
        "parser.add_argument('--batch-size', type=int, default=100,\n"
        "                    help='per device')\n"
        "args = parser.parse_args()\n"
        "def build(vocab=(33278)):\n"
        "    return gluon.nn.Embedding(vocab, 512)\n"
        "loader = gluon.data.DataLoader(data, args.batch_size)\n"
        "net = gluon.nn.Dense(16)\n"
        "for x, y in loader:\n"
        "    net(x).backward()\n"
    )
    after = before.replace("default=100", "default=104").replace("(33278)", "(33280)")
    assert_fixed(before, after, "AMP201", "AMP202")


def test_computed_value_stays_with_its_reason():
    before = HEADER + "K = 10\nnet = gluon.nn.Dense(K * 2 + 1)\n"
    result = fix(before, "AMP201")
    assert result.fixed == before and result.applied == 0
    (finding,) = result.remaining
    assert "computed" in result.reasons[finding]


def test_a_single_output_is_not_padded():
    before = HEADER + "score = gluon.nn.Dense(1, in_units=100)\n"
    result = fix(before, "AMP201")
    assert result.fixed == before.replace("100", "104")
    assert result.remaining == []  # below min-dimension (8 by default): not even reported
    everything = Settings(select=frozenset({"AMP201"}), min_dimension=0)
    findings = lint_source(before, "case.py", settings=everything)
    result = fix_source(
        before, findings, lambda new: lint_source(new, "case.py", settings=everything), True
    )
    (finding,) = result.remaining
    assert "single output" in result.reasons[finding]


def test_unsafe_fixes_need_the_flag():
    before = HEADER + "net = gluon.nn.Dense(100)\n"
    result = fix(before, "AMP201", unsafe=False)
    assert result.fixed == before
    assert "--unsafe-fixes" in result.reasons[result.remaining[0]]


def test_suppressed_line_is_never_rewritten():
    before = HEADER + (
        "HIDDEN = 100  # amplint: ignore[AMP201]\n"
        "net = gluon.nn.Dense(HIDDEN)\n"
        "ok = gluon.nn.Dense(20)  # noqa: AMP201\n"
    )
    result = fix(before, "AMP201")
    assert result.fixed == before
    assert [f.line for f in lint(before, "AMP201")] == [6]
    assert result.reasons[result.remaining[0]].endswith("line 5, which is suppressed")


def test_keras_and_torch_layers():
    assert_fixed(
        """\
        import torch
        from torch import nn
        model = nn.Sequential(
            nn.Conv2d(3, 60, 3),
            nn.Linear(60, 10),  # logits
        ).half()
        """,
        """\
        import torch
        from torch import nn
        model = nn.Sequential(
            nn.Conv2d(3, 64, 3),
            nn.Linear(64, 16),  # logits
        ).half()
        """,
        "AMP201",
    )


def test_a_file_in_newer_syntax_is_fixed_not_rolled_back():
    """PEP 695 aliases and PEP 701 f-strings are valid Python 3.12+: a fix of such a file is
    kept on any Python amplint runs on (it was rolled back on 3.11, whose own parser refuses
    them)."""
    before = HEADER + (
        "type Batch = list[int]\n"
        "def label[T](names: list[T]) -> str:\n"
        '    return f"{", ".join(names)}"\n'
        "net = gluon.nn.Dense(1000, in_units=100)\n"
    )
    result = assert_fixed(before, before.replace("in_units=100", "in_units=104"), "AMP201")
    assert result.applied == 1 and not result.reasons


def test_an_option_default_reached_through_the_model_constructor_is_rounded_where_written():
    """The width reaches the layer through a parameter and a ternary (the configuration model
    tells it, folding alone does not): the option's default is the one number to change."""
    before = HEADER + (
        "parser = argparse.ArgumentParser()\n"
        "parser.add_argument('--nhid', type=int, default=1150)\n"
        "args = parser.parse_args()\n"
        "class Net(gluon.nn.HybridBlock):\n"
        "    def __init__(self, nhid, last):\n"
        "        super().__init__()\n"
        "        self.out = gluon.nn.Dense(nhid if last else 2 * nhid)\n"
        "net = Net(args.nhid, True)\n"
    )
    result = assert_fixed(before, before.replace("default=1150", "default=1152"), "AMP201")
    assert result.applied == 1
