"""amp.init / amp.reset: what gets cast, outputs, numpy front end, imported models, errors."""

import json
import logging

import mxnet as mx
import numpy as np
import pytest
from machine import LOW_PRECISIONS, amp_init
from mxnet import gluon
from mxnet.gluon import nn

import gluon_amp as amp
from gluon_amp.autocast import bfloat16

LOW_DTYPES = {"bfloat16": bfloat16, "float16": np.dtype(np.float16)}
OTHER = {"bfloat16": "float16", "float16": "bfloat16"}


def dense(hybridize=False, units=16):
    net = nn.HybridSequential()
    net.add(nn.Dense(units, activation="relu"), nn.Dense(4))
    net.initialize(mx.init.Xavier())
    if hybridize:
        net.hybridize()
    return net


@pytest.mark.parametrize("dtype", LOW_PRECISIONS)
def test_init_twice_with_same_arguments_is_a_noop_and_other_arguments_raise(dtype):
    amp_init(dtype)
    patched = mx.nd.FullyConnected
    amp_init(dtype)
    assert mx.nd.FullyConnected is patched
    with pytest.raises(ValueError, match=r"call amp.reset\(\) before amp.init"):
        amp.init(OTHER[dtype], emulate=False)
    with pytest.raises(ValueError, match="custom fp32_ops"):
        amp_init(dtype, fp32_ops=["softmax"])


@pytest.mark.parametrize("dtype", LOW_PRECISIONS)
def test_reset_restores_every_patched_function(dtype):
    names = ["FullyConnected", "Convolution", "softmax", "broadcast_add", "Activation"]
    originals = {n: (getattr(mx.nd, n), getattr(mx.sym, n), getattr(mx.nd.op, n)) for n in names}
    call, imports = gluon.Block.__call__, gluon.SymbolBlock.imports
    npx_fc = mx.nd.numpy_extension.fully_connected
    amp_init(dtype)
    assert mx.nd.FullyConnected is not originals["FullyConnected"][0]
    assert mx.nd.numpy_extension.fully_connected is not npx_fc
    amp.reset()
    for name, funcs in originals.items():
        assert (getattr(mx.nd, name), getattr(mx.sym, name), getattr(mx.nd.op, name)) == funcs
    assert gluon.Block.__call__ is call and gluon.SymbolBlock.imports is imports
    assert mx.nd.numpy_extension.fully_connected is npx_fc
    assert amp.target_dtype() is None


@pytest.mark.parametrize("dtype", LOW_PRECISIONS)
def test_reset_drops_graphs_built_under_autocast(dtype):
    net = dense(hybridize=True)
    x = mx.nd.random.uniform(shape=(2, 8))
    reference = net(x).asnumpy()
    net.hybridize()
    amp_init(dtype)
    assert not np.array_equal(net(x).asnumpy(), reference)  # low precision inside
    amp.reset()
    out = net(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out.asnumpy(), reference)
    nodes = net._cached_graph[1].get_internals().list_outputs()
    assert not any("amp_cast" in n for n in nodes)


@pytest.mark.parametrize("bad", ["float32", "int8", 3])
def test_unknown_target_dtype_is_a_valueerror(bad):
    with pytest.raises(ValueError, match="target_dtype must be 'float16', 'bfloat16' or None"):
        amp.init(bad)


def test_default_dtype_is_bfloat16_without_gpu():
    assert mx.context.num_gpus() == 0
    amp.init()
    assert amp.target_dtype() == "bfloat16"


@pytest.mark.parametrize("dtype", LOW_PRECISIONS)
def test_unknown_operator_in_a_custom_list_is_named(dtype):
    with pytest.raises(ValueError, match="no operator .NoSuchOp.: remove it from the op lists"):
        amp_init(dtype, target_precision_ops=["NoSuchOp"])
    assert amp.target_dtype() is None and not hasattr(mx.nd.FullyConnected, "__wrapped__")


def casts_in(graph):
    """The dtypes of the graph's amp_cast nodes and whether it holds an amp_multicast."""
    nodes = json.loads(graph.tojson(remove_amp_cast=False))["nodes"]
    casts = {n["attrs"]["dtype"] for n in nodes if n["op"] == "amp_cast"}
    return casts, any(n["op"] == "amp_multicast" for n in nodes)


@pytest.mark.parametrize("dtype", LOW_PRECISIONS)
@pytest.mark.parametrize("emulate", [False, True])
def test_an_operator_moved_to_fp32_ops_runs_in_float32_only(dtype, emulate):
    """It leaves MXNet's target list: no round trip through the low precision first."""
    if dtype == "bfloat16" and emulate:
        pytest.skip("the emulation is float16's")
    amp.init(dtype, fp32_ops=["FullyConnected"], emulate=emulate)
    graph = mx.sym.FullyConnected(mx.sym.var("x"), num_hidden=4)
    assert casts_in(graph) == ({"float32"}, False)
    x, w = mx.nd.array([[1.0001, 3e-8]]), mx.nd.array([[1.0, 1.0]])
    out = mx.nd.FullyConnected(x, w, no_bias=True, num_hidden=1)  # float16 inputs would give 1.0
    assert out.dtype == np.float32 and out.asnumpy()[0, 0] == np.float32(1.0001) + np.float32(3e-8)
    net = dense()
    seen = []
    net[0].register_forward_hook(lambda block, inputs, out: seen.append(out.dtype))
    net(mx.nd.ones((2, 8)))
    assert seen == [np.float32]


@pytest.mark.parametrize("dtype", LOW_PRECISIONS)
def test_an_operator_moved_to_the_target_list_leaves_the_other_default_lists(dtype):
    # Graphs only, nothing runs: no emulation, whose float32 compute of dot would add casts.
    amp.init(dtype, target_precision_ops=["softmax", "Activation", "dot"], emulate=False)
    x, y = mx.sym.var("x"), mx.sym.var("y")
    for graph in (  # MXNet's float32, conditional float32 and widest-type lists
        mx.sym.softmax(x),
        mx.sym.Activation(x, act_type="softrelu"),
        mx.sym.dot(x, y),
    ):
        assert casts_in(graph) == ({dtype}, False), graph.name


@pytest.mark.parametrize(
    "lists, message",
    [
        (
            {"target_precision_ops": ["FullyConnected"], "fp32_ops": ["FullyConnected"]},
            "'FullyConnected' is named in target_precision_ops and fp32_ops: name each",
        ),
        ({"fp32_ops": ["softmax", "softmax"]}, "'softmax' is named twice in fp32_ops"),
        (
            {
                "fp32_ops": ["Activation"],
                "conditional_fp32_ops": [("Activation", "act_type", ["relu"])],
            },
            "'Activation' is named in fp32_ops and conditional_fp32_ops",
        ),
    ],
)
def test_an_operator_named_twice_in_the_lists_given_is_a_valueerror(lists, message):
    with pytest.raises(ValueError, match=message):
        amp.init("float16", emulate=True, **lists)
    assert amp.target_dtype() is None and not hasattr(mx.nd.FullyConnected, "__wrapped__")


@pytest.mark.parametrize("dtype", LOW_PRECISIONS)
@pytest.mark.parametrize("hybridize", [False, True])
def test_outputs_are_float32_only_for_the_outermost_call(hybridize, dtype):
    amp_init(dtype)
    net = dense(hybridize)
    x = mx.nd.random.uniform(shape=(2, 8))
    out = net(x)
    assert out.dtype == np.float32
    assert np.isfinite(out.asnumpy()).all() and out.asnumpy().dtype == np.float32
    amp.reset()
    amp_init(dtype, cast_outputs=False)
    net = dense(hybridize)
    # What contrib.amp hands back (bfloat16: raw uint16 records in numpy).
    assert net(x).dtype == LOW_DTYPES[dtype]


@pytest.mark.parametrize("dtype", LOW_PRECISIONS)
@pytest.mark.parametrize("hybridize", [False, True])
def test_integer_outputs_are_left_alone(hybridize, dtype):
    class ArgMax(gluon.HybridBlock):
        def hybrid_forward(self, F, x):
            return F.cast(F.argmax(x, axis=1), "int32"), x

    amp_init(dtype)
    block = ArgMax()
    if hybridize:
        block.hybridize()
    idx, same = block(mx.nd.array([[1, 3], [4, 2]]))
    assert idx.dtype == np.int32 and idx.asnumpy().tolist() == [1, 0]
    assert same.dtype == np.float32


@pytest.mark.parametrize("dtype", LOW_PRECISIONS)
@pytest.mark.parametrize("hybridize", [False, True])
def test_numpy_front_end_is_cast_and_stays_float32_outside(hybridize, dtype):
    mx.npx.set_np()
    net = dense(hybridize, units=64)
    x = mx.np.random.uniform(size=(8, 256))
    reference = net(x).asnumpy()
    if hybridize:
        net.hybridize()  # rebuild the graph under autocast
    amp_init(dtype)
    out = net(x)
    assert isinstance(out, mx.np.ndarray) and out.dtype == np.float32
    error = np.abs(out.asnumpy() - reference).max()
    # Low-precision rounding (bfloat16's 8 bits, float16's 11): cast, but not broken.
    assert {"bfloat16": 1e-4, "float16": 1e-5}[dtype] < error < 5e-2


@pytest.mark.parametrize("dtype", LOW_PRECISIONS)
def test_a_graph_cached_before_init_warns_and_says_what_to_do(caplog, dtype):
    net = dense(hybridize=True)
    x = mx.nd.random.uniform(shape=(2, 8))
    net(x)
    amp_init(dtype)
    with caplog.at_level(logging.WARNING, logger="gluon_amp"):
        net(x)
        net(x)
    warnings = [r.getMessage() for r in caplog.records if "before amp.init" in r.getMessage()]
    assert len(warnings) == 1 and "call net.hybridize() again" in warnings[0]
    net.hybridize()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gluon_amp"):
        net(x)
    assert "before amp.init" not in caplog.text


@pytest.mark.parametrize("dtype", LOW_PRECISIONS)
def test_init_after_building_the_network_still_casts(dtype):
    net = dense()
    net(mx.nd.ones((1, 8)))  # parameters initialized before init
    amp_init(dtype)
    seen = []
    net[0].register_forward_hook(lambda block, inputs, out: seen.append(out.dtype))
    net(mx.nd.ones((1, 8)))
    assert seen == [LOW_DTYPES[dtype]]


@pytest.mark.parametrize("front", ["legacy", "numpy"])
def test_symbolblock_imports_after_init_is_cast(tmp_path, front):
    if front == "numpy":
        mx.npx.set_np()
    net = dense(hybridize=True, units=32)
    x = (
        mx.np.random.uniform(size=(2, 100))
        if front == "numpy"
        else mx.nd.random.uniform(shape=(2, 100))
    )
    reference = net(x).asnumpy()
    net.export(str(tmp_path / "model"))
    amp.init("bfloat16")
    block = gluon.SymbolBlock.imports(
        str(tmp_path / "model-symbol.json"), ["data"], str(tmp_path / "model-0000.params")
    )
    nodes = block._cached_graph[1].get_internals().list_outputs()
    # data and both layers' weights and biases (the relu output is already bfloat16)
    assert sum(n.endswith("_amp_cast_bfloat16_output") for n in nodes) == 5
    out = block(x)
    assert out.dtype == np.float32 and isinstance(out, mx.np.ndarray) == (front == "numpy")
    assert 0 < np.abs(out.asnumpy() - reference).max() < 5e-2


def test_convert_hybrid_block_wants_a_hybridblock():
    with pytest.raises(TypeError, match="convert_hybrid_block needs a HybridBlock, got Block"):
        amp.convert_hybrid_block(gluon.Block())


def test_convert_hybrid_block_defaults_to_the_parameters_context_on_cpu():
    net = nn.HybridSequential()
    net.add(nn.Conv2D(8, 3), nn.BatchNorm(), nn.Activation("relu"), nn.Dense(4))
    net.initialize()
    net.hybridize()
    x = mx.nd.random.uniform(shape=(2, 3, 8, 8))
    reference = net(x).asnumpy()
    converted = amp.convert_hybrid_block(net)  # contrib would default to gpu(0) and fail
    assert isinstance(converted, gluon.SymbolBlock)
    out = converted(x)
    assert out.context == mx.cpu()
    assert np.abs(out.astype("float32").asnumpy() - reference).max() < 5e-2


class TestFloat16OnCPU:
    @pytest.mark.parametrize("front", ["legacy", "numpy"])
    @pytest.mark.parametrize("hybridize", [False, True])
    def test_a_dense_call_raises_at_the_call(self, front, hybridize):
        if front == "numpy":
            mx.npx.set_np()
        amp.init("float16")
        layer = nn.Dense(4, in_units=8)
        layer.initialize()
        if hybridize:
            layer.hybridize()
        x = mx.np.ones((2, 8)) if front == "numpy" else mx.nd.ones((2, 8))
        with pytest.raises(
            amp.Float16OnCPUError, match="needs a GPU context, or amp.init.'float16', emulate=True"
        ):
            layer(x)

    @pytest.mark.parametrize("hybridize", [False, True])
    def test_deferred_and_hybridized_calls_raise_the_same_error(self, hybridize):
        amp.init("float16")
        net = nn.HybridSequential()
        net.add(nn.Conv2D(2, 3), nn.Dense(4))
        net.initialize()
        if hybridize:
            net.hybridize()
        with pytest.raises(amp.Float16OnCPUError, match="^Convolution has no float16 kernel"):
            net(mx.nd.ones((1, 1, 5, 5)))

    def test_an_imported_model_raises_at_the_call(self, tmp_path):
        net = dense(hybridize=True)
        x = mx.nd.ones((2, 8))
        net(x)
        net.export(str(tmp_path / "model"))
        amp.init("float16")
        block = gluon.SymbolBlock.imports(
            str(tmp_path / "model-symbol.json"), ["data"], str(tmp_path / "model-0000.params")
        )
        with pytest.raises(amp.Float16OnCPUError, match="^FullyConnected has no float16 kernel"):
            block(x)  # MXNet itself would fail only at the next sync, naming CuDNN

    def test_convert_hybrid_block_to_float16_for_cpu_raises_at_conversion(self):
        net = dense(hybridize=True)
        net(mx.nd.ones((2, 8)))
        with pytest.raises(amp.Float16OnCPUError, match="convert with emulate=True, or target"):
            amp.convert_hybrid_block(net, "float16")

    def test_float16_elementwise_arithmetic_still_runs(self):
        amp.init("float16")
        a = mx.nd.ones((3,), dtype="float16")
        b = mx.nd.ones((3,), dtype="float32")
        out = mx.nd.broadcast_add(a, b)  # widest-type cast: float32
        assert out.dtype == np.float32 and out.asnumpy().tolist() == [2, 2, 2]
        assert (a * 3).asnumpy().dtype == np.float16


@pytest.mark.parametrize("spelling", ["bfloat16", bfloat16, None])
def test_list_helpers_accept_every_dtype_spelling(spelling):
    assert amp.list_lp16_ops(spelling) == ["Convolution", "FullyConnected"]
    assert "BatchNorm" in amp.list_lp16_use_fp32_params(spelling)
    assert "RNN" in amp.list_lp16_ops("float16") and "RNN" in amp.list_fp32_ops(spelling)
