"""Outputs of the outermost Block call: float32 leaves, in the structure MXNet itself returns.

Each Block returns float16 arrays (a float32 one, an int32 one beside them) in some structure;
under ``amp.init`` the call must give what the same call gives without it, float16 leaves cast to
float32. Float16 casts run on any CPU; one bfloat16 test needs bfloat16 kernels.
"""

import collections

import mxnet as mx
import numpy as np
import pytest
from machine import needs_bfloat16
from mxnet import autograd, gluon

import gluon_amp as amp

Pair = collections.namedtuple("Pair", "low high")


class Tagged(dict):
    """A dict subclass carrying an attribute."""

    tag = "none"


def tagged(**items):
    value = Tagged(items)
    value.tag = "heads"
    return value


# name -> (structure of low, high, index arrays, allowed in a hybridized block)
STRUCTURES = {
    "tensor": (lambda low, high, idx: low, True),
    "tuple": (lambda low, high, idx: (low, high, idx), True),
    "list": (lambda low, high, idx: [low, high], True),
    "namedtuple": (lambda low, high, idx: Pair(low, high), True),
    "nested_sequences": (lambda low, high, idx: (low, [high, (low, idx)]), True),
    "dict": (lambda low, high, idx: {"low": low, "high": high, "idx": idx}, False),
    "ordered_dict": (lambda low, high, idx: collections.OrderedDict(b=low, a=high), False),
    "defaultdict": (lambda low, high, idx: collections.defaultdict(list, low=low), False),
    "dict_subclass": (lambda low, high, idx: tagged(low=low, high=high), False),
    "nested": (lambda low, high, idx: {"pair": Pair(low, [high, idx]), "all": [low]}, False),
    "objects": (lambda low, high, idx: (low, "name", 3, None, Pair(1, 2.5)), False),
}
CELLS = [
    (front, name, hybridize)
    for front in ("legacy", "numpy")
    for name, (_, hybridizable) in STRUCTURES.items()
    for hybridize in (False, True)
    if hybridizable or not hybridize  # MXNet rejects anything else from a hybridized block
]


class Structured(gluon.HybridBlock):
    def __init__(self, make):
        super().__init__()
        self.make = make

    def hybrid_forward(self, F, x):
        low = (x * 3).astype("float16")  # 1/3 steps: float16 rounding shows
        return self.make(low, x + 1, x.astype("int32"))


def call(name, hybridize, x):
    block = Structured(STRUCTURES[name][0])
    if hybridize:
        block.hybridize()
    return block(x)


def assert_same_structure(got, expected, path="out"):
    """``got`` is ``expected`` with float16 leaves as float32: same types, keys, values."""
    assert type(got) is type(expected), path
    if isinstance(expected, mx.nd.NDArray):
        want = np.float32 if expected.dtype == np.float16 else expected.dtype
        assert got.dtype == want, path
        np.testing.assert_array_equal(got.asnumpy(), expected.asnumpy().astype(want), path)
    elif isinstance(expected, dict):
        assert list(got) == list(expected), path
        assert getattr(got, "__dict__", None) == getattr(expected, "__dict__", None), path
        assert getattr(got, "default_factory", None) is getattr(expected, "default_factory", None)
        for key in expected:
            assert_same_structure(got[key], expected[key], f"{path}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        assert len(got) == len(expected), path
        for i, (g, e) in enumerate(zip(got, expected)):
            assert_same_structure(g, e, f"{path}[{i}]")
    else:
        assert got == expected, path


@pytest.mark.parametrize("front, name, hybridize", CELLS)
def test_outputs_come_back_float32_in_the_structure_mxnet_returns(front, name, hybridize):
    if front == "numpy":
        mx.npx.set_np()
    x = mx.nd.random.uniform(-1, 1, shape=(2, 3))
    x = x.as_np_ndarray() if front == "numpy" else x
    expected = call(name, hybridize, x)  # MXNet without amp: a list for a hybridized tuple
    amp.init("float16")
    assert_same_structure(call(name, hybridize, x), expected)


def test_gradients_flow_through_the_cast_outputs():
    amp.init("float16")
    x = mx.nd.random.uniform(-1, 1, shape=(2, 3))
    x.attach_grad()
    with autograd.record():
        out = call("nested", False, x)
        loss = out["pair"].low.sum() + out["all"][0].sum()
    loss.backward()
    assert out["pair"].low.dtype == np.float32
    np.testing.assert_array_equal(x.grad.asnumpy(), np.full((2, 3), 6.0))


def test_what_holds_no_low_precision_array_is_returned_as_is_and_nothing_is_mutated():
    class Returns(gluon.Block):
        def __init__(self, value):
            super().__init__()
            self.value = value

        def forward(self, x):
            return self.value

    amp.init("float16")
    x = mx.nd.ones((2,))
    kept = {"a": [x, 1], "b": (x,), "c": object()}
    assert Returns(kept)(x) is kept
    mixed = {"low": x.astype("float16"), "high": [x]}
    out = Returns(mixed)(x)
    assert out is not mixed and out["high"] is mixed["high"]
    assert mixed["low"].dtype == np.float16 and out["low"].dtype == np.float32


@needs_bfloat16
@pytest.mark.parametrize("name", ["namedtuple", "dict"])
def test_bfloat16_outputs_of_a_dense_network_come_back_float32(name):
    """The reported case: a dict of bfloat16 logits gave raw uint16 records to numpy."""

    class Head(gluon.Block):
        def __init__(self):
            super().__init__()
            self.dense = gluon.nn.Dense(3, in_units=4)

        def forward(self, x):
            logits = self.dense(x)
            return Pair(logits, x) if name == "namedtuple" else {"logits": logits, "x": x}

    head = Head()
    head.initialize()
    x = mx.nd.random.uniform(-1, 1, shape=(2, 4))
    expected = head(x)
    amp.init("bfloat16")
    out = head(x)
    assert type(out) is type(expected)
    logits, want = (
        (out[0], expected[0]) if name == "namedtuple" else (out["logits"], expected["logits"])
    )
    assert logits.dtype == np.float32
    np.testing.assert_allclose(logits.asnumpy(), want.asnumpy(), rtol=2**-6, atol=2**-6)
