"""amp.report on hybridized and imported graphs: per-layer precision, shapes, FLOPs and findings,
checked against shapes and dtypes worked out by hand. Nothing here runs a low-precision kernel:
the graphs are read, not run, so float16 and bfloat16 are checked on any CPU."""

import json
import math
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon
from mxnet.gluon import nn, rnn
from mxnet.gluon.model_zoo import vision

import gluon_amp as amp
from gluon_amp import autocast
from gluon_amp.reporting import collect
from gluon_amp.reporting.graph import Tensor

GOLDEN = Path(__file__).parent / "golden"
CORPUS = """the loss scale backs off when a gradient overflows and grows again after a run of
clean steps so the scale settles where float16 gradients neither overflow nor underflow while
the network keeps learning from every batch it sees"""


@pytest.fixture
def bfloat16_graphs(monkeypatch):
    """bfloat16 autocast on any CPU: these tests build and read graphs, they run no kernel."""
    monkeypatch.setattr(autocast, "cpu_bfloat16_problem", lambda: None)


@pytest.fixture
def fixed_device(monkeypatch):
    """The device line depends on the machine: fixed where a test compares whole output."""
    monkeypatch.setattr(collect, "_device_line", lambda rules, arrays: "(device line)")


def resnet(classes=10):
    net = vision.resnet18_v1(thumbnail=True, classes=classes)
    net.initialize(mx.init.Xavier())
    net.hybridize()
    return net


class LanguageModel(gluon.HybridBlock):
    """A word-level LSTM language model whose vocabulary size comes from the data."""

    def __init__(self, vocab_size, units=64, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.embedding = nn.Embedding(vocab_size, units)
            self.encoder = rnn.LSTM(units, num_layers=2, layout="TNC", input_size=units)
            self.decoder = nn.Dense(vocab_size, flatten=False, in_units=units)

    def hybrid_forward(self, F, tokens):
        return self.decoder(self.encoder(self.embedding(tokens)))


def corpus_batch(steps=12, batch=20):
    words = CORPUS.split()
    vocab = {word: i for i, word in enumerate(sorted(set(words)))}
    ids = [vocab[words[i % len(words)]] for i in range(steps * batch)]
    return len(vocab), mx.nd.array(ids).reshape((steps, batch))


class ExpHead(gluon.HybridBlock):
    """Dense -> exp (on MXNet's float32 list) -> Dense: activations cast both ways every step."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.hidden = nn.Dense(64, in_units=32)
            self.out = nn.Dense(16, in_units=64)

    def hybrid_forward(self, F, x):
        return self.out(F.exp(self.hidden(x)))


def exp_head():
    net = ExpHead(prefix="head_")  # fixed graph node names, whatever ran before
    net.initialize(mx.init.Xavier())
    net.hybridize()
    return net


def by_layer(report):
    return {row.layer: row for row in report.rows}


def codes(report):
    return sorted((f.code, f.layer) for f in report.findings)


def test_resnet_float16_every_convolution_and_its_shapes():
    amp.init("float16")
    net = resnet()
    report = amp.report(net, mx.nd.ones((4, 3, 32, 32)))
    rows = by_layer(report)
    assert len(report.rows) == 21 and all(row.precision == "float16" for row in report.rows)
    assert {row.why for row in report.rows} == {"MXNet's float16 list"}
    stem = rows["features.0"]
    assert (stem.op, stem.input.shape, stem.weight.shape) == (
        "Convolution",
        (4, 3, 32, 32),
        (64, 3, 3, 3),
    )
    assert stem.output == Tensor((4, 64, 32, 32), "float16")
    # M = batch × output pixels, N = out-channels, K = in-channels × kernel
    assert (stem.gemm.m, stem.gemm.n, stem.gemm.k) == (4 * 32 * 32, 64, 3 * 9)
    down = rows["features.2.0.downsample.0"]
    assert down.output.shape == (4, 128, 16, 16)
    assert (down.gemm.m, down.gemm.n, down.gemm.k) == (4 * 16 * 16, 128, 64)
    head = rows["output"]
    assert (head.gemm.m, head.gemm.n, head.gemm.k) == (4, 10, 512)
    # Per stage: two 3×3 convolutions per block, two blocks, plus a strided first one and a 1×1
    # downsample from stage 2 on; FLOPs = 2·M·N·K.
    stage1 = 4 * (2 * 4096 * 64 * 576)
    later = 2 * 1024 * 128 * 576 + 3 * (2 * 1024 * 128 * 1152) + 2 * 1024 * 128 * 64
    stem_flops, head_flops = 2 * 4096 * 64 * 27, 2 * 4 * 10 * 512
    assert report.gemm_flops == stage1 + 3 * later + stem_flops + head_flops
    assert report.low_precision_share == 1.0
    # Only the class count misses the alignment; the stem's 3 input channels are never one.
    assert codes(report) == [("AMP201", "output")]
    assert report.findings[0].size == 10 and report.findings[0].padded == 16
    assert "GPU Tensor Core rule" in report.findings[0].message
    assert "casts per step: 23 (1 input, 22 parameters)" in str(report)


def test_resnet_with_a_thousand_classes_has_no_finding():
    amp.init("float16")
    assert amp.report(resnet(classes=1000), mx.nd.ones((8, 3, 32, 32))).findings == []


def test_image_channels_are_exempt_even_when_every_size_is_reported():
    amp.init("float16")
    report = amp.report(resnet(), mx.nd.ones((4, 3, 32, 32)), min_dimension=1)
    assert codes(report) == [("AMP201", "output")]


def test_language_model_vocabulary_from_data_batch_and_rnn():
    vocab_size, tokens = corpus_batch(steps=12, batch=20)
    assert vocab_size % 8  # the data decides: 35 words here
    amp.init("float16")
    net = LanguageModel(vocab_size)
    net.initialize(mx.init.Xavier())
    net.hybridize()
    report = amp.report(net, tokens)
    rows = by_layer(report)
    assert list(rows) == ["encoder", "decoder"]
    lstm, decoder = rows["encoder"], rows["decoder"]
    assert (lstm.op, lstm.precision, lstm.input.shape) == ("RNN", "float16", (12, 20, 64))
    # Per layer: 2 · steps · batch · 4 gates · hidden · (input + hidden)
    assert lstm.gemm.flops == 2 * (2 * 12 * 20 * 4 * 64 * (64 + 64))
    assert (lstm.gemm.m, lstm.gemm.rows) == (20, 20)
    assert decoder.output == Tensor((12, 20, vocab_size), "float16")
    assert (decoder.gemm.m, decoder.gemm.n, decoder.gemm.k) == (12 * 20, vocab_size, 64)
    dims = [f for f in report.findings if f.code == "AMP201"]
    assert [(f.layer, f.size, f.padded) for f in dims] == [
        ("decoder", vocab_size, math.ceil(vocab_size / 8) * 8)
    ]
    assert f"Dense units={vocab_size} is not a multiple of 8" in dims[0].message
    # The batch (20) is the row count of the RNN's GEMMs, most of the FLOPs.
    [batch] = [f for f in report.findings if f.code == "AMP202"]
    assert (batch.size, batch.padded) == (20, 24)
    assert "make them 16 or 24" in batch.message and "data (12, 20)" in batch.message
    # The embedding runs in its weights' dtype, float32: its output is cast for the RNN.
    [activation] = [cast for cast in report.casts if cast.of == "activation"]
    assert (activation.layer, activation.source, activation.dtype, activation.around) == (
        "encoder",
        Tensor((12, 20, 64), "float32"),
        "float16",
        "RNN",
    )
    assert activation.nbytes == 12 * 20 * 64 * (4 + 2)


def test_a_cnn_batch_is_not_a_finding_an_mlp_batch_is():
    amp.init("float16")
    cnn = amp.report(resnet(), mx.nd.ones((12, 3, 32, 32)))  # only the cheap head sees 12 rows
    assert [f.code for f in cnn.findings] == ["AMP201"]
    mlp = nn.HybridSequential()
    mlp.add(nn.Dense(256, activation="relu"), nn.Dense(16))
    mlp.initialize()
    mlp.hybridize()
    report = amp.report(mlp, mx.nd.ones((100, 64)))
    assert codes(report) == [("AMP202", "")]
    assert report.findings[0].message.startswith("GEMM rows M=100 ")
    assert "make them 96 or 104" in report.findings[0].message
    assert not amp.report(mlp, mx.nd.ones((4, 64))).findings  # below 8: inference, not reported


def test_alignment_and_min_dimension():
    amp.init("float16")
    mlp = nn.HybridSequential()
    mlp.add(nn.Dense(24, activation="relu"), nn.Dense(4))
    mlp.initialize()
    mlp.hybridize()
    x = mx.nd.ones((32, 64))
    assert amp.report(mlp, x).findings == []  # 4 is below the default min_dimension 8
    assert [(f.layer, f.size) for f in amp.report(mlp, x, min_dimension=1).findings] == [("1", 4)]
    sixteen = amp.report(mlp, x, alignment=16)
    assert [(f.code, f.layer, f.size, f.padded) for f in sixteen.findings] == [
        ("AMP201", "0", 24, 32),
        ("AMP201", "1", 24, 32),
    ]
    assert "not a multiple of 16" in sixteen.findings[0].message
    with pytest.raises(ValueError, match="alignment must be positive"):
        amp.report(mlp, x, alignment=0)


def test_convolution_channels_groups_and_depthwise():
    amp.init("float16")
    net = nn.HybridSequential()
    net.add(
        nn.Conv2D(36, 3, in_channels=3),  # out-channels 36: a finding
        nn.Conv2D(36, 3, groups=36, in_channels=36),  # depthwise: never
        nn.Conv2D(48, 1, groups=3, in_channels=36),  # 12 in-channels per group: a finding
    )
    net.initialize()
    net.hybridize()
    report = amp.report(net, mx.nd.ones((8, 3, 16, 16)))
    assert [(f.layer, f.message.split(" is ")[0]) for f in report.findings] == [
        ("0", "Conv2D channels=36"),
        ("2", "Conv2D in_channels/groups=12"),
    ]
    assert by_layer(report)["1"].gemm.dims == ()


def test_a_transposed_convolution_is_a_gemm_over_its_input_positions():
    amp.init("float16")
    net = nn.HybridSequential()
    net.add(nn.Conv2DTranspose(20, 4, strides=2, in_channels=12))  # upsamples 8x8 to 18x18
    net.initialize()
    net.hybridize()
    report = amp.report(net, mx.nd.ones((2, 12, 8, 8)))
    gemm = by_layer(report)["0"].gemm
    # M: every input position (2 x 8 x 8); N: 20 output channels; K: 12 in-channels x 4 x 4.
    assert (gemm.m, gemm.n, gemm.k, gemm.flops) == (128, 20, 192, 2 * 128 * 20 * 192)
    assert [f.message.split(" is ")[0] for f in report.findings] == [
        "Conv2DTranspose channels=20",
        "Conv2DTranspose in_channels=12",
    ]


def test_a_float32_listed_operator_in_the_middle_casts_activations_both_ways(fixed_device):
    amp.init("float16")
    report = amp.report(exp_head(), mx.nd.ones((32, 32)))
    kinds = [(cast.layer, cast.of, cast.source.dtype, cast.dtype) for cast in report.casts]
    assert kinds == [
        ("hidden", "input", "float32", "float16"),
        ("hidden", "parameter", "float32", "float16"),
        ("hidden", "parameter", "float32", "float16"),
        ("", "activation", "float16", "float32"),  # into exp, float32 by MXNet's list
        ("", "activation", "float32", "float16"),  # exp's output back to float16
        ("out", "parameter", "float32", "float16"),
        ("out", "parameter", "float32", "float16"),
    ]
    activation = (
        32 * 64 * (2 + 4)
    )  # one (32, 64) activation read in one dtype, written in the other
    params = (64 * 32 + 64 + 16 * 64 + 16) * (4 + 2)
    assert report.cast_bytes == 32 * 32 * (4 + 2) + params + 2 * activation
    assert "casts per step: 7 (1 input, 4 parameters, 2 activations)" in str(report)
    assert [(f.code, f.layer) for f in report.findings] == [("AMP403", "")]
    assert report.findings[0].message.startswith(
        "2 activation casts per step (float16->float32, float32->float16) around exp move 24.58 kB"
    )
    assert {cast.around for cast in report.casts if cast.of == "activation"} == {"exp"}


def test_fp32_ops_override_is_amp402_per_layer():
    amp.init("float16", fp32_ops=["FullyConnected"])
    report = amp.report(exp_head(), mx.nd.ones((32, 32)))
    assert [(row.layer, row.precision, row.why, row.code) for row in report.rows] == [
        ("hidden", "float32", "your fp32_ops", "AMP402"),
        ("out", "float32", "your fp32_ops", "AMP402"),
    ]
    found = [f for f in report.findings if f.code == "AMP402"]
    assert [f.layer for f in found] == ["hidden", "out"]
    assert found[0].message.endswith(
        "where a float16 kernel exists [input (32, 32)]; remove FullyConnected from fp32_ops"
    )


def test_bfloat16_rnn_and_dot_have_no_kernel_so_no_finding(bfloat16_graphs):
    vocab_size, tokens = corpus_batch()
    amp.init("bfloat16")
    net = LanguageModel(vocab_size)
    net.initialize()
    net.hybridize()
    report = amp.report(net, tokens)
    rows = by_layer(report)
    assert (rows["encoder"].precision, rows["encoder"].why, rows["encoder"].code) == (
        "float32",
        "no bfloat16 kernel",
        None,
    )
    assert (rows["decoder"].precision, rows["decoder"].why) == ("bfloat16", "MXNet's bfloat16 list")
    assert "no bfloat16 kernel" in str(report)
    assert "AMP402" not in {f.code for f in report.findings}
    # Only the decoder runs in bfloat16: its rows are steps × batch = 240, a multiple of 8.
    assert [(f.code, f.layer) for f in report.findings] == [("AMP201", "decoder")]


class Attention(gluon.HybridBlock):
    def hybrid_forward(self, F, q, k):
        return F.batch_dot(q, k, transpose_b=True)


def test_batch_dot_is_a_gemm_of_the_widest_input_type():
    amp.init("float16")
    net = Attention()
    net.hybridize()
    report = amp.report(net, mx.nd.ones((4, 10, 24)), mx.nd.ones((4, 12, 24)))
    [row] = report.rows
    assert (row.op, row.precision, row.why) == (
        "batch_dot",
        "float32",
        "widest type of its inputs: one is float32",
    )
    assert (row.gemm.m, row.gemm.n, row.gemm.k, row.gemm.flops) == (
        10,
        12,
        24,
        2 * 4 * 10 * 12 * 24,
    )
    assert set(report.inputs) == {"data0", "data1"}


def test_graph_cached_before_init_is_amp401_and_the_fix_clears_it():
    net = exp_head()
    x = mx.nd.ones((32, 32))
    net(x)  # hybridized and run in float32
    amp.init("float16")
    report = amp.report(net, x)
    assert report.source == "cached graph"
    assert [(row.precision, row.why) for row in report.rows] == [
        ("float32", "graph cached before amp.init()")
    ] * 2
    [cached] = [f for f in report.findings if f.code == "AMP401"]
    assert cached.name == "graph-cached-before-init" and cached.layer == ""
    assert "call net.hybridize() again after amp.init()" in cached.message
    assert "ExpHead: AMP401 graph cached before amp.init(): its 2 GEMMs" in report.findings_text()
    net.hybridize()  # the fix the finding names
    fixed = amp.report(net, x)
    assert "AMP401" not in {f.code for f in fixed.findings}
    assert {row.precision for row in fixed.rows} == {"float16"}


def test_numpy_front_end(tmp_path):
    mx.npx.set_np()
    net = nn.HybridSequential()
    net.add(nn.Dense(64, activation="relu"), nn.Dense(10))
    net.initialize()
    net.hybridize()
    x = mx.np.ones((32, 24))
    net(x)
    amp.init("float16")
    assert {f.code for f in amp.report(net, x).findings} >= {"AMP401"}
    net.hybridize()
    report = amp.report(net, x)
    assert [(row.op, row.precision) for row in report.rows] == [("FullyConnected", "float16")] * 2
    assert [(f.code, f.layer, f.size) for f in report.findings if f.code == "AMP201"] == [
        ("AMP201", "1", 10)
    ]


def test_imported_models_before_and_after_init(tmp_path):
    net = exp_head()
    x = mx.nd.ones((32, 32))
    net(x)
    net.export(str(tmp_path / "head"))
    files = (str(tmp_path / "head-symbol.json"), ["data"], str(tmp_path / "head-0000.params"))
    before = gluon.SymbolBlock.imports(*files)
    amp.init("float16")
    stale = amp.report(before, x)
    assert stale.source == "imported graph"
    assert "load it again with SymbolBlock.imports after amp.init()" in stale.findings[0].message
    imported = gluon.SymbolBlock.imports(*files)
    report = amp.report(imported, x)
    assert report.net == "SymbolBlock"
    assert [(row.layer, row.precision) for row in report.rows] == [
        ("head_dense0", "float16"),
        ("head_dense1", "float16"),
    ]
    assert "AMP401" not in {f.code for f in report.findings}


def test_without_amp_everything_is_float32_and_nothing_is_found():
    report = amp.report(resnet(), mx.nd.ones((4, 3, 32, 32)))
    assert {(row.precision, row.why) for row in report.rows} == {
        ("float32", "amp.init() not called")
    }
    assert report.findings == [] and report.target_dtype is None
    assert "float32 (AMP off)" in str(report)


def test_bad_arguments_are_one_clear_error():
    with pytest.raises(TypeError, match="needs a Gluon Block"):
        amp.report(lambda x: x, mx.nd.ones(1))
    with pytest.raises(TypeError, match=r"example inputs, as it is called: amp.report\(net, x\)"):
        amp.report(resnet())
    dense = nn.Dense(16, in_units=64)
    dense.initialize()
    dense.hybridize()
    with pytest.raises(ValueError, match=r"inputs do not fit the network \(Error in operator .*"):
        amp.report(dense, mx.nd.ones((8, 32)))


def test_report_leaves_the_network_as_it_was():
    """Parameters, gradients (grad_req='add' accumulations included), BatchNorm statistics, the
    RNG and the cached graph: before and after a report, identical."""
    net = resnet()
    x = mx.nd.random.uniform(shape=(4, 3, 32, 32))
    params = net.collect_params()
    net.output.weight.grad_req = "add"
    with mx.autograd.record():
        net(x).sum().backward()
    with mx.autograd.record():
        net(x).sum().backward()  # accumulated twice
    # MXNet can return a stale BatchNorm statistic read right after backward (seen in static_alloc
    # graphs): wait for every write first, so the snapshot is what the report starts from.
    mx.nd.waitall()
    snapshot = {name: p.data().asnumpy().copy() for name, p in params.items()}
    grads = {name: p.grad().asnumpy().copy() for name, p in params.items() if p.grad_req != "null"}
    cached_op, cached_graph = net._cached_op, net._cached_graph
    amp.init("float16")
    mx.random.seed(7)
    amp.report(net, x)
    drawn = mx.nd.random.uniform(shape=(4,)).asnumpy()
    mx.random.seed(7)
    assert np.array_equal(drawn, mx.nd.random.uniform(shape=(4,)).asnumpy())
    assert net._cached_op is cached_op and net._cached_graph is cached_graph
    for name, p in params.items():
        assert np.array_equal(p.data().asnumpy(), snapshot[name]), name
        if name in grads:
            assert np.array_equal(p.grad().asnumpy(), grads[name]), name
    fresh = resnet()
    amp.report(fresh, x)  # built for the report from symbols: the block's cache stays empty
    assert fresh._cached_graph == () and fresh._cached_op is None


def test_json_is_sorted_versioned_and_matches_the_golden_file(fixed_device):
    amp.init("float16")
    report = amp.report(exp_head(), mx.nd.ones((32, 32)))
    text = report.to_json()
    data = json.loads(text)
    assert data["schema_version"] == 1
    assert text == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert text == (GOLDEN / "report_exp_head_float16.json").read_text()


def test_text_table_and_findings_in_amplint_form(fixed_device):
    amp.init("float16")
    report = amp.report(exp_head(), mx.nd.ones((32, 32)))
    text = str(report)
    assert text == (GOLDEN / "report_exp_head_float16.txt").read_text()
    for line in report.findings_text().splitlines():
        layer, rest = line.split(": ", 1)
        assert (layer, rest.split(" ", 1)[0]) == ("ExpHead", "AMP403")


def test_summary_is_the_report_without_its_table(fixed_device):
    amp.init("float16")
    report = amp.report(exp_head(), mx.nd.ones((32, 32)))
    full, rows = str(report).splitlines(), len(report.rows)
    assert full[3].startswith("layer ") and full[4 + rows] == ""  # the table, between blanks
    assert report.summary().splitlines() == full[:2] + full[5 + rows :]
