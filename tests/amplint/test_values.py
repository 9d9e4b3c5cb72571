"""Constant folding through literals, constants, defaults, argparse and arithmetic."""

from __future__ import annotations

import libcst as cst
import pytest

from amplint.index import FileIndex
from amplint.values import fold

PRELUDE = """\
import argparse
WIDTH = 64
HIDDEN = WIDTH * 3 + 4
SHADOWED = 1
SHADOWED = 2
CFG = {{"units": HIDDEN - 4, 3: 7, "sizes": (1, 2)}}
OPTS = dict(batch=96)
CHANGED = {{"units": 1}}
CHANGED["units"] = 2
SPREAD = {{**CFG, "units": 5}}
parser = argparse.ArgumentParser()
parser.add_argument("--nhid", type=int, default=650)
parser.add_argument("--emb-size", dest="emsize", default=HIDDEN)
parser.add_argument("--lr", type=float)
args = parser.parse_args()
def f(units=WIDTH + 1, other=None):
    loop = 0
    for loop in range(3):
        pass
    local = units * 2
    probe = {expr}
"""


def value_of(expr: str):
    index = FileIndex.build(cst.parse_module(PRELUDE.format(expr=expr)))
    probe = [a for a in index.assigns if a.targets == ("probe",)][0]
    folded = fold(probe.value, index, probe.scope)
    return None if folded is None else folded.value


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("10", 10),
        ("-(3 + 5) * 2", -16),
        ("2 ** 10 // 3 % 100", 41),
        ("HIDDEN", 196),
        ("args.nhid", 650),
        ("args.emsize", 196),
        ("units", 65),
        ("local", 130),
        ("int('12')", 12),
        ("'float16'", "float16"),
        ("7 / 2", 3.5),
        ("CFG['units']", 192),
        ("CFG[1 + 2]", 7),
        ("OPTS['batch'] // 2", 48),
    ],
)
def test_folds(expr, expected):
    assert value_of(expr) == expected


@pytest.mark.parametrize(
    "expr",
    [
        "SHADOWED",
        "loop",
        "other",
        "args.lr",
        "unknown",
        "len(x)",
        "1 / 0",
        "2 ** 1000",
        "CFG['missing']",
        "CFG[units]",
        "CHANGED['units']",
        "SPREAD['units']",
        "self.width",
    ],
)
def test_unknown_values_stay_unknown(expr):
    assert value_of(expr) is None


CLASS = """\
class Net:
    def __init__(self, width=24, depth=3):
        self.width = width
        self.depth = depth
        self.grown = 1
        self.probe = self.width
    def grow(self):
        self.grown += 1
    def probe_width(self):
        probe = self.width * 2
    def probe_depth(self):
        probe = self.depth
    def probe_grown(self):
        probe = self.grown
net = Net(depth=5)
"""


@pytest.mark.parametrize(
    ("method", "expected"),
    [("__init__", 24), ("probe_width", 48), ("probe_depth", 5), ("probe_grown", None)],
)
def test_self_attributes_set_in_init(method, expected):
    index = FileIndex.build(cst.parse_module(CLASS))
    scope = index.classes["Net"].methods[method]
    target = "self.probe" if method == "__init__" else "probe"
    folded = fold(scope.assigned[target][0], index, scope)
    assert (None if folded is None else folded.value) == expected
