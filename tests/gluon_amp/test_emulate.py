"""float16 emulation on CPU: the opt-in, and parity of emulated GEMMs and convolutions with a GPU.

The reference for a GPU's float16 GEMM (float32 accumulation, MXNET_FC_TRUE_FP16 unset) is the
float64 product of the float16 inputs, rounded once to float16: the emulation must be within one
float16 ulp of it, overflow to inf where float16 overflows and flush to zero where it underflows.
"""

import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon
from mxnet.gluon import nn

import gluon_amp as amp
from gluon_amp import emulate

F16_MAX = float(np.finfo(np.float16).max)  # 65504


# --- the opt-in ------------------------------------------------------------------------------


def test_the_keyword_turns_it_on_and_float16_runs_on_cpu():
    amp.init("float16", emulate=True)
    layer = nn.Dense(4, in_units=8)
    layer.initialize()
    seen = []
    layer.register_forward_hook(lambda block, inputs, out: seen.append(out.dtype))
    out = layer(mx.nd.ones((2, 8)))  # the outermost call: float32 back
    assert out.dtype == np.float32 and np.isfinite(out.asnumpy()).all()
    amp.init("float16", emulate=True)  # same arguments: a no-op
    with pytest.raises(ValueError, match=r"emulate=True; call amp.reset\(\)"):
        amp.init("float16")


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_the_variable_makes_a_plain_init_pick_float16_on_cpu(monkeypatch, value):
    assert mx.context.num_gpus() == 0
    monkeypatch.setenv(emulate.ENV_VAR, value)
    amp.init()
    assert amp.target_dtype() == "float16"
    layer = nn.Dense(4, in_units=8)
    layer.initialize()
    layer(mx.nd.ones((2, 8))).wait_to_read()


@pytest.mark.parametrize("value", ["0", "false", "off", ""])
def test_the_variable_set_off_changes_nothing(monkeypatch, value):
    monkeypatch.setenv(emulate.ENV_VAR, value)
    amp.init("float16")
    with pytest.raises(amp.Float16OnCPUError):
        _dense_call()


def _dense_call():
    layer = nn.Dense(4, in_units=8)
    layer.initialize()
    return layer(mx.nd.ones((2, 8)))


def test_the_keyword_beats_the_variable(monkeypatch):
    monkeypatch.setenv(emulate.ENV_VAR, "1")
    amp.init("float16", emulate=False)
    with pytest.raises(amp.Float16OnCPUError):
        _dense_call()
    amp.reset()
    monkeypatch.setenv(emulate.ENV_VAR, "0")
    amp.init("float16", emulate=True)
    assert _dense_call().dtype == np.float32


def test_a_bad_variable_value_is_one_clear_error(monkeypatch):
    monkeypatch.setenv(emulate.ENV_VAR, "maybe")
    with pytest.raises(ValueError, match=r"GLUON_AMP_EMULATE_FLOAT16='maybe' is neither on"):
        amp.init()
    assert amp.target_dtype() is None


def test_the_opt_in_with_bfloat16_is_a_valueerror(monkeypatch):
    with pytest.raises(ValueError, match=r"^emulate=True emulates float16, but amp.init got "):
        amp.init("bfloat16", emulate=True)
    monkeypatch.setenv(emulate.ENV_VAR, "1")
    with pytest.raises(ValueError, match=r"^GLUON_AMP_EMULATE_FLOAT16=1 emulates float16"):
        amp.init("bfloat16")
    assert amp.target_dtype() is None and not hasattr(mx.nd.FullyConnected, "__wrapped__")
    with pytest.raises(TypeError, match="emulate must be True, False or None"):
        amp.init("float16", emulate="yes")


def test_without_the_opt_in_the_error_names_it():
    amp.init("float16")
    with pytest.raises(amp.Float16OnCPUError) as error:
        _dense_call()
    message = str(error.value)
    assert "amp.init('float16', emulate=True) (or GLUON_AMP_EMULATE_FLOAT16=1)" in message
    assert "to check float16 numerics on a CPU" in message and "amp.init('bfloat16')" in message


def test_the_bfloat16_error_names_float16_emulation():
    error = amp.BFloat16UnavailableError("this CPU has no AVX-512 (x)")
    assert "to check float16 numerics on this CPU, use amp.init('float16', emulate=True)" in str(
        error
    )


def test_reset_undoes_the_emulation_everywhere():
    names = ["FullyConnected", "dot", "batch_dot", "BatchNorm", "sort", "UpSampling"]
    before = {n: (getattr(mx.nd, n), getattr(mx.sym, n)) for n in names}
    np_before = (mx.np.matmul, mx.nd.np.matmul, mx.sym.np.matmul, mx.np.dot, mx.npx.batch_dot)
    amp.init("float16", emulate=True)
    assert all(getattr(mx.nd, n) is not before[n][0] for n in names)
    assert mx.np.matmul is not np_before[0] and mx.npx.batch_dot is not np_before[4]
    amp.reset()
    assert {n: (getattr(mx.nd, n), getattr(mx.sym, n)) for n in names} == before
    assert (mx.np.matmul, mx.nd.np.matmul, mx.sym.np.matmul, mx.np.dot, mx.npx.batch_dot) == (
        np_before
    )


# --- parity with a GPU's float16 GEMM --------------------------------------------------------


def _ordinal(x: np.ndarray) -> np.ndarray:
    """float16 values as integers in value order: adjacent floats differ by 1."""
    bits = x.astype(np.float16).view(np.int16).astype(np.int32)
    return np.where(bits < 0, -32768 - bits, bits)


def assert_within_one_ulp(out: np.ndarray, reference: np.ndarray) -> None:
    assert out.dtype == reference.dtype == np.float16
    np.testing.assert_array_equal(np.isinf(out), np.isinf(reference))
    finite = np.isfinite(reference)
    assert np.abs(_ordinal(out[finite]) - _ordinal(reference[finite])).max() <= 1


def float16_values(rng, shape):
    """Positive float16 values: sums of their products are well conditioned, so float32
    accumulation (a GPU's, and the emulation's) stays within one float16 ulp of float64. With
    cancellation a tiny result can be many of its own ulps off on a GPU too."""
    return rng.uniform(0.25, 2.0, shape).astype(np.float16)


def gemm_reference(x16, w16, b16=None):
    out = x16.astype(np.float64) @ w16.astype(np.float64).T
    if b16 is not None:
        out += b16.astype(np.float64)
    return out.astype(np.float16)


def conv_reference(x16, w16, b16):
    windows = np.lib.stride_tricks.sliding_window_view(
        x16.astype(np.float64), w16.shape[2:], (2, 3)
    )
    out = np.einsum("nchwij,kcij->nkhw", windows, w16.astype(np.float64))
    return (out + b16.astype(np.float64)[None, :, None, None]).astype(np.float16)


def run_layer(layer, x16, hybridize):
    """The layer's float16 output under emulation: float16 in, float32 back from the outermost
    call (exact: every float16 value is a float32 value)."""
    if hybridize:
        layer.hybridize()
    out = layer(mx.nd.array(x16, dtype=np.float32)).asnumpy()
    np.testing.assert_array_equal(out.astype(np.float16).astype(np.float32), out)
    return out.astype(np.float16)


def dense_with(w16, b16):
    """A Dense layer whose float32 parameters hold these (float16-representable) values."""
    layer = nn.Dense(w16.shape[0], in_units=w16.shape[1])
    layer.initialize()
    layer.weight.set_data(mx.nd.array(w16, dtype=np.float32))
    layer.bias.set_data(mx.nd.array(b16, dtype=np.float32))
    return layer


@pytest.mark.parametrize("hybridize", [False, True])
def test_dense_matches_a_float64_product_rounded_once(hybridize):
    amp.init("float16", emulate=True)
    rng = np.random.RandomState(0)
    x16, w16, b16 = (float16_values(rng, s) for s in [(64, 512), (96, 512), (96,)])
    out = run_layer(dense_with(w16, b16), x16, hybridize)
    reference = gemm_reference(x16, w16, b16)
    assert_within_one_ulp(out, reference)
    assert (out == reference).mean() > 0.95  # float32 accumulation: almost always exact


@pytest.mark.parametrize("hybridize", [False, True])
def test_convolution_matches_a_float64_product_rounded_once(hybridize):
    amp.init("float16", emulate=True)
    rng = np.random.RandomState(1)
    x16, w16, b16 = (float16_values(rng, s) for s in [(4, 16, 9, 9), (24, 16, 3, 3), (24,)])
    layer = nn.Conv2D(24, 3, in_channels=16)
    layer.initialize()
    layer.weight.set_data(mx.nd.array(w16, dtype=np.float32))
    layer.bias.set_data(mx.nd.array(b16, dtype=np.float32))
    out = run_layer(layer, x16, hybridize)
    assert_within_one_ulp(out, conv_reference(x16, w16, b16))


@pytest.mark.parametrize("hybridize", [False, True])
def test_float16_inputs_are_rounded_first_as_autocast_does_on_a_gpu(hybridize):
    """float32 weights are cast to float16 before the product: 1 + 2**-12 becomes 1."""
    amp.init("float16", emulate=True)
    layer = dense_with(np.full((1, 4), 1 + 2**-12, np.float32), np.zeros(1, np.float32))
    out = run_layer(layer, np.ones((1, 4), np.float16), hybridize)
    assert out.tolist() == [[4.0]]


@pytest.mark.parametrize("hybridize", [False, True])
def test_sums_overflow_to_inf_where_float16_overflows(hybridize):
    """Every product is small; the float32 sum is not: inf in float16, as on a GPU."""
    amp.init("float16", emulate=True)
    x16 = np.stack([np.full(256, 300, np.float16), np.full(256, 255, np.float16)])
    out = run_layer(dense_with(np.ones((1, 256), np.float16), np.zeros(1)), x16, hybridize)
    assert 256 * 300 > F16_MAX and out[0, 0] == np.inf
    assert out[1, 0] == 255 * 256  # 65280: still a float16
    assert_within_one_ulp(out, gemm_reference(x16, np.ones((1, 256), np.float16)))


@pytest.mark.parametrize("hybridize", [False, True])
def test_small_sums_become_subnormal_or_zero_where_float16s_do(hybridize):
    amp.init("float16", emulate=True)
    rng = np.random.RandomState(2)
    x16 = float16_values(rng, (8, 256))
    smallest = np.float16(2**-24)  # the smallest float16 subnormal
    w16 = np.full((1, 256), smallest)
    out = run_layer(dense_with(w16, np.zeros(1)), x16, hybridize)
    reference = gemm_reference(x16, w16)
    assert (np.abs(reference) < np.finfo(np.float16).tiny).all()  # all subnormal or zero
    assert_within_one_ulp(out, reference)
    # 8 * 2**-12 * 2**-14 = 2**-23 is a subnormal; 8 * 2**-12 * 2**-16 = 2**-25 is half the
    # smallest one and rounds to even: zero.
    x16 = np.full((1, 8), 2**-12, np.float16)
    w16 = np.array([[2**-14] * 8, [2**-16] * 8], np.float16)
    out = run_layer(dense_with(w16, np.zeros(2)), x16, hybridize)
    assert out.tolist() == [[2**-23, 0.0]]


def test_the_gemm_operators_of_both_front_ends_match_the_reference():
    amp.init("float16", emulate=True)
    rng = np.random.RandomState(3)
    a16, b16 = float16_values(rng, (3, 40, 64)), float16_values(rng, (3, 64, 24))
    reference = np.matmul(a16.astype(np.float64), b16.astype(np.float64)).astype(np.float16)
    a, b = mx.nd.array(a16, dtype=np.float16), mx.nd.array(b16, dtype=np.float16)
    assert_within_one_ulp(mx.nd.batch_dot(a, b).asnumpy(), reference)
    assert_within_one_ulp(mx.nd.dot(a[0], b[0]).asnumpy(), reference[0])
    a, b = a.as_np_ndarray(), b.as_np_ndarray()
    for result in (mx.np.matmul(a, b), a @ b, mx.npx.batch_dot(a, b)):
        assert result.dtype == np.float16
        assert_within_one_ulp(result.asnumpy(), reference)
    assert_within_one_ulp(mx.np.dot(a[1], b[1]).asnumpy(), reference[1])
    assert_within_one_ulp(mx.np.tensordot(a[2], b[2], axes=1).asnumpy(), reference[2])


def test_gradients_flow_back_in_float16_through_the_emulated_gemm():
    """The gradient of a float16 output is float16, as on a GPU; parameters get float32."""
    amp.init("float16", emulate=True)
    x = mx.nd.array([[1.0, 2.0]])
    x.attach_grad()
    layer = dense_with(np.array([[3.0, 4.0]], np.float32), np.zeros(1, np.float32))
    with autograd.record():
        out = layer(x)
    out.backward(mx.nd.array([[2.0**-25]]))  # half the smallest float16 subnormal: zero
    assert x.grad.asnumpy().tolist() == [[0.0, 0.0]]
    with autograd.record():
        out = layer(x)
    out.backward(mx.nd.array([[0.5]]))
    assert x.grad.asnumpy().tolist() == [[1.5, 2.0]]
    assert layer.weight.grad().dtype == np.float32
    assert layer.weight.grad().asnumpy().tolist() == [[0.5, 1.0]]


@pytest.mark.parametrize("hybridize", [False, True])
def test_layers_inside_a_network_run_in_float16(hybridize):
    amp.init("float16", emulate=True)
    net = nn.HybridSequential()
    net.add(nn.Conv2D(8, 3), nn.BatchNorm(), nn.Activation("relu"), nn.Dense(4))
    net.initialize()
    if hybridize:
        net.hybridize(static_alloc=True, static_shape=True)
    x = mx.nd.random.uniform(shape=(2, 3, 8, 8))
    out = net(x)
    assert out.dtype == np.float32
    if hybridize:
        inputs, graph = net._cached_graph
        internals = graph.get_internals()
        _, types, _ = internals.infer_type(**{i.name: np.float32 for i in inputs})
        dtypes = dict(zip(internals.list_outputs(), types))
        assert dtypes[net[2].name + "_fwd_output"] == np.float16  # relu after emulated BN
        assert dtypes[net[0].name + "_fwd_output"] == np.float32  # inside the emulation
    else:
        seen = []
        for block in net:
            block.register_forward_hook(lambda b, i, o: seen.append(o.dtype))
        net(x)
        assert seen == [np.float16] * 4


def test_contrib_amp_float16_on_cpu_fails_where_gluon_amp_emulates():
    """Side by side: mxnet.contrib.amp has no way to run float16 on a CPU (a subprocess, since
    contrib's init cannot be undone)."""
    code = (
        "from mxnet.contrib import amp\n"
        "import mxnet as mx\n"
        "from mxnet.gluon import nn\n"
        "amp.init('float16')\n"
        "layer = nn.Dense(4, in_units=8)\n"
        "layer.initialize()\n"
        "out = layer(mx.nd.ones((2, 8)))\n"
        "print('dtype', out.dtype.__name__)\n"
        "try:\n"
        "    out.asnumpy()\n"
        "except mx.base.MXNetError as error:\n"
        "    print('at the sync:', str(error).strip().splitlines()[-1])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "dtype float16" in result.stdout  # the call itself "succeeds"...
    assert "float16 fully connected layer is currentlyonly supported by CuDNN" in result.stdout
    amp.init("float16", emulate=True)
    assert np.isfinite(_dense_call().asnumpy()).all()


def test_a_sym_graph_built_by_hand_runs_emulated_on_a_cpu_only_machine():
    amp.init("float16", emulate=True)
    data = mx.sym.var("data")
    out = mx.sym.FullyConnected(data, num_hidden=3, name="fc")
    block = gluon.SymbolBlock(out, [data])
    block.initialize()
    result = block(mx.nd.ones((2, 5)))
    assert result.dtype == np.float32 and np.isfinite(result.asnumpy()).all()


# --- converted models --------------------------------------------------------------------------


def _conv_bn_net():
    net = nn.HybridSequential()
    net.add(nn.Conv2D(8, 3), nn.BatchNorm(), nn.Activation("relu"), nn.Dense(4))
    net.initialize(mx.init.Xavier())
    net.hybridize()
    return net


@pytest.mark.parametrize("how", ["keyword", "amp.init", "variable"])
def test_convert_hybrid_block_to_float16_runs_emulated_on_cpu(how, monkeypatch):
    net = _conv_bn_net()
    x = mx.nd.random.uniform(shape=(2, 3, 8, 8))
    reference = net(x).asnumpy()
    if how == "amp.init":
        amp.init("float16", emulate=True)
    if how == "variable":
        monkeypatch.setenv(emulate.ENV_VAR, "1")
    converted = amp.convert_hybrid_block(net, "float16", emulate=True if how == "keyword" else None)
    out = converted(x).asnumpy().astype(np.float32)
    relative = np.abs(out - reference).max() / np.abs(reference).max()
    assert 0 < relative < 1e-2  # float16 rounding, not float32 and not broken


def test_a_converted_resnet_matches_its_float32_self():
    from mxnet.gluon.model_zoo import vision

    net = vision.resnet18_v1(thumbnail=True, classes=10)
    net.initialize(mx.init.Xavier())
    net.hybridize()
    x = mx.nd.random.uniform(shape=(2, 3, 32, 32))
    reference = net(x).asnumpy()
    out = amp.convert_hybrid_block(net, "float16", emulate=True)(x).asnumpy()
    assert np.abs(out.astype(np.float32) - reference).max() < 1e-2 * np.abs(reference).max()


def test_a_converted_graph_mixing_float16_and_float32_runs_on_cpu():
    class Joined(gluon.HybridBlock):
        def __init__(self):
            super().__init__()
            self.dense = nn.Dense(4, in_units=4)

        def hybrid_forward(self, F, x):
            return F.concat(self.dense(x), F.softmax(x), dim=1)  # float16 and float32

    net = Joined()
    net.initialize()
    net.hybridize()
    x = mx.nd.random.uniform(shape=(2, 4))
    reference = net(x).asnumpy()
    out = amp.convert_hybrid_block(net, "float16", emulate=True)(x).asnumpy()
    np.testing.assert_allclose(out.astype(np.float32), reference, rtol=1e-3, atol=1e-3)


# --- imported models ---------------------------------------------------------------------------


def _export(net, x, path):
    net(x)
    net.export(str(path / "model"))
    return str(path / "model-symbol.json"), ["data"], str(path / "model-0000.params")


@pytest.mark.parametrize("front", ["legacy", "numpy"])
@pytest.mark.parametrize("hybridize", [False, True])
def test_an_imported_model_runs_emulated_on_cpu(tmp_path, front, hybridize):
    if front == "numpy":
        mx.npx.set_np()  # MXNet loads numpy-mode parameters only in numpy mode
    net = _conv_bn_net()  # Convolution, BatchNorm and FullyConnected: all emulated
    shape = (2, 3, 8, 8)
    x = mx.np.random.uniform(size=shape) if front == "numpy" else mx.nd.random.uniform(shape=shape)
    reference = net(x).asnumpy()
    files = _export(net, x, tmp_path)
    amp.init("float16", emulate=True)
    block = gluon.SymbolBlock.imports(*files)
    if hybridize:
        block.hybridize(static_alloc=True)
    out = block(x)
    assert out.dtype == np.float32 and isinstance(out, mx.np.ndarray) == (front == "numpy")
    relative = np.abs(out.asnumpy() - reference).max() / np.abs(reference).max()
    assert 0 < relative < 1e-2  # float16 rounding, not float32 and not broken
    report = amp.report(block, x)
    assert [row.precision for row in report.rows] == ["float16", "float16"]
    assert all("(emulated on CPU)" in row.why for row in report.rows)


def test_an_imported_model_inside_a_hybridized_block_runs_emulated(tmp_path):
    net = _conv_bn_net()
    x = mx.nd.random.uniform(shape=(2, 3, 8, 8))
    reference = net(x).asnumpy()
    files = _export(net, x, tmp_path)
    amp.init("float16", emulate=True)

    class Head(gluon.HybridBlock):
        def __init__(self, body):
            super().__init__()
            self.body = body

        def hybrid_forward(self, F, x):
            return self.body(x) * 2

    outer = Head(gluon.SymbolBlock.imports(*files))
    outer.hybridize()
    out = outer(x).asnumpy()  # the imported graph composed into the outer one
    np.testing.assert_allclose(out, 2 * reference, rtol=1e-2, atol=1e-2 * np.abs(reference).max())


def test_amp_multicast_in_a_saved_graph_becomes_static_casts():
    """MXNet's CPU amp_multicast fails on float16; a graph that holds one runs once rebuilt."""
    a, b = mx.sym.var("a", dtype="float16"), mx.sym.var("b", dtype="float32")
    joined = mx.sym.amp_multicast(a, b, num_outputs=2)
    graph = mx.sym.FullyConnected(joined[0] + joined[1], num_hidden=2, no_bias=True, name="fc")
    args = {
        "a": mx.nd.ones((1, 3), dtype="float16"),
        "b": mx.nd.ones((1, 3)),
        "fc_weight": mx.nd.ones((2, 3)),
    }
    with pytest.raises(mx.base.MXNetError):
        graph.bind(mx.cpu(), args).forward()[0].asnumpy()
    rebuilt = emulate.graph_for_cpu(graph, emulate.emulated_ops())
    assert "amp_multicast" not in rebuilt.tojson(remove_amp_cast=False)
    assert rebuilt.bind(mx.cpu(), args).forward()[0].asnumpy().tolist() == [[6.0, 6.0]]
