"""The one-sync inf/NaN check itself, on every gradient dtype and on several contexts."""

import mxnet as mx
import numpy as np
import pytest
from machine import LOW_PRECISIONS, amp_init

from gluon_amp.autocast import bfloat16
from gluon_amp.overflow import has_nonfinite


def arrays(dtype, ctx=None, bad=None):
    out = []
    for c in ctx or [mx.cpu()]:
        for shape in [(300,), (7, 5), (300, 300)]:
            a = mx.nd.random.uniform(-1, 1, shape=shape, ctx=c)
            out.append(a)
    if bad is not None:
        out[-1][1, 2] = bad
    if dtype == "bfloat16":
        return [mx.nd.amp_cast(a, dtype=bfloat16) for a in out]
    return [a.astype(dtype) for a in out]


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
@pytest.mark.parametrize(
    "bad, expected", [(None, False), (np.inf, True), (-np.inf, True), (np.nan, True)]
)
@pytest.mark.parametrize("autocast", [None, *LOW_PRECISIONS])
def test_every_dtype_and_value(dtype, bad, expected, autocast):
    if autocast is not None:
        amp_init(autocast)  # autocast must not change what the check computes
    assert has_nonfinite(arrays(dtype, bad=bad)) is expected


def test_huge_finite_values_are_confirmed_finite():
    grads = arrays("float32", bad=3e38)
    assert has_nonfinite(grads) is False


def test_a_nonfinite_value_on_the_second_context_is_found():
    ctx = (mx.cpu(0), mx.cpu(1))
    assert has_nonfinite(arrays("float32", ctx)) is False
    assert has_nonfinite(arrays("float32", ctx, bad=np.nan)) is True


def test_more_arrays_than_one_fused_call_takes():
    grads = [mx.nd.ones((3,)) for _ in range(450)]
    assert has_nonfinite(grads) is False
    grads[420][0] = np.inf
    assert has_nonfinite(grads) is True


def test_no_gradients_at_all():
    assert has_nonfinite([]) is False


def test_one_host_synchronisation_for_every_dtype_on_every_context(monkeypatch):
    """One read per check; only an infinite sum of squares (inf, or huge finite) costs a second."""
    ctx = (mx.cpu(0), mx.cpu(1))
    grads = [g for dtype in ("float32", "float16", "bfloat16") for g in arrays(dtype, ctx)]
    mx.nd.waitall()
    reads = []
    original = mx.nd.NDArray.asnumpy
    monkeypatch.setattr(
        mx.nd.NDArray, "asnumpy", lambda self: reads.append(self.shape) or original(self)
    )
    assert has_nonfinite(grads) is False
    assert len(reads) == 1
    grads[-1][0, 0] = np.nan
    assert has_nonfinite(grads) is True
    assert len(reads) == 2
    grads[-1][0, 0] = np.inf  # an infinite sum of squares might be overflow: one read confirms
    assert has_nonfinite(grads) is True
    assert len(reads) == 4
