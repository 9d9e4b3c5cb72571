"""amp.report and amp.recording on imperative networks: recorded from autocast's wrappers during a
real call (float16, emulated on a CPU), and the same table as the network's hybridized graph."""

import random

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon
from mxnet.gluon import nn
from test_report import LanguageModel, corpus_batch, exp_head, resnet

import gluon_amp as amp
from gluon_amp import autocast


def twins(build, x):
    """The same network twice, with the same weights: one imperative, one hybridized (both
    initialized by a float32 call before ``amp.init``, their graphs dropped)."""
    imperative, hybridized = build(), build()
    imperative(x), hybridized(x)
    for a, b in zip(imperative.collect_params().values(), hybridized.collect_params().values()):
        b.set_data(a.data())
    imperative.hybridize(active=False)
    hybridized.hybridize()
    return imperative, hybridized


def table(report):
    """The rows in a canonical order: a graph lists them in topological order (a downsample
    before the block body it runs beside), calls in the order they ran."""
    rows = sorted(report.rows, key=lambda r: (r.layer, r.node))
    return [
        (r.layer, r.op, r.input, r.weight, r.output, r.precision, r.why, r.gemm, r.code)
        for r in rows
    ]


def unordered(items):
    return sorted(items, key=repr)


def language_model():
    vocab_size, _ = corpus_batch()
    net = LanguageModel(vocab_size, prefix="lm_")
    net.initialize(mx.init.Xavier())
    return net


def numpy_mlp():
    """Numpy front end: autocast's npx wrappers return float32, so each Dense's output is cast
    up (into the next Dense, or into a ReLU the npx wrappers never see) and down again."""
    net = nn.HybridSequential(prefix="np_")
    with net.name_scope():
        net.add(nn.Dense(64, activation="relu", in_units=24), nn.Dense(32, in_units=64))
        net.add(nn.Dense(10, in_units=32))
    net.initialize()
    return net


@pytest.mark.parametrize(
    "build, x",
    [
        (resnet, lambda: mx.nd.ones((4, 3, 32, 32))),
        (language_model, lambda: corpus_batch()[1]),
        (exp_head, lambda: mx.nd.ones((32, 32))),
        (numpy_mlp, lambda: mx.np.ones((32, 24))),
    ],
    ids=["resnet", "lstm", "exp_head", "numpy"],
)
def test_the_imperative_table_is_the_graph_table(build, x):
    if build is numpy_mlp:
        mx.npx.set_np()
    x = x()
    imperative, hybridized = twins(build, x)
    amp.init("float16", emulate=True)
    calls, graph = amp.report(imperative, x), amp.report(hybridized, x)
    assert calls.source == "imperative calls" and graph.source == "graph its first call builds"
    assert table(calls) == table(graph) and calls.rows and calls.casts
    assert unordered(calls.casts) == unordered(graph.casts)
    assert calls.forward_bytes == graph.forward_bytes
    assert unordered(calls.findings) == unordered(graph.findings)


def test_a_hybridized_block_inside_an_imperative_network_is_read_from_its_graph():
    class Outer(gluon.Block):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            with self.name_scope():
                self.head = exp_head()  # hybridized
                self.tail = nn.Dense(8, in_units=16)

        def forward(self, x):
            return self.tail(mx.nd.relu(self.head(x)))

    amp.init("float16", emulate=True)
    net = Outer()
    net.tail.initialize()
    report = amp.report(net, mx.nd.ones((32, 32)))
    assert [(r.layer, r.precision) for r in report.rows] == [
        ("head.hidden", "float16"),
        ("head.out", "float16"),
        ("tail", "float16"),
    ]
    assert report.source == "imperative calls, the cached graph of head"
    assert net.head._cached_op is None  # built by the report's call, dropped again


def test_an_imperative_report_leaves_everything_as_it_was():
    net = resnet()
    net.hybridize(active=False)
    x = mx.nd.random.uniform(shape=(4, 3, 32, 32))
    net.output.weight.grad_req = "add"
    for _ in range(2):
        with autograd.record():
            net(x).sum().backward()
    params = net.collect_params()
    trainer = amp.init_trainer(gluon.Trainer(params, "sgd"), amp.DynamicLossScaler())
    amp.loss_scaler(trainer).update(True)  # a skipped step: counters and scale off their start
    scaler_state = amp.loss_scaler(trainer).state_dict()
    before = {n: p.data().asnumpy().copy() for n, p in params.items()}  # running stats too
    grads = {n: p.grad().asnumpy().copy() for n, p in params.items() if p.grad_req != "null"}
    amp.init("float16", emulate=True)
    mx.random.seed(11)
    random.seed(5)
    np.random.seed(5)
    amp.report(net, x)
    drawn = (mx.nd.random.uniform(shape=(3,)).asnumpy(), random.random(), np.random.rand())
    mx.random.seed(11)
    random.seed(5)
    np.random.seed(5)
    assert drawn == (
        pytest.approx(mx.nd.random.uniform(shape=(3,)).asnumpy()),
        random.random(),
        np.random.rand(),
    )
    for name, param in params.items():
        assert np.array_equal(param.data().asnumpy(), before[name]), name
        if name in grads:
            assert np.array_equal(param.grad().asnumpy(), grads[name]), name
    assert amp.loss_scaler(trainer).state_dict() == scaler_state
    assert autocast.observer is None and not any(
        block._forward_hooks or block._forward_pre_hooks for block in [net, *net.features]
    )


def test_deferred_initialization_is_refused_rather_than_drawn():
    amp.init("float16", emulate=True)
    net = nn.Dense(16)
    net.initialize()
    with pytest.raises(ValueError, match="is not initialized yet .* call the network once first"):
        amp.report(net, mx.nd.ones((8, 8)))
    assert net.weight._deferred_init  # still pending: nothing was drawn


def test_recording_an_imperative_training_run():
    amp.init("float16", emulate=True)
    net = exp_head()
    net.hybridize(active=False)
    trainer = amp.init_trainer(gluon.Trainer(net.collect_params(), "sgd"))
    x = mx.nd.random.uniform(-1, 1, shape=(32, 32))
    with amp.recording(net, trainer) as report:
        for _ in range(3):
            with autograd.record():
                loss = net(x).sum()
            with amp.scale_loss(loss, trainer) as scaled:
                scaled.backward()
            trainer.step(32)
        assert autocast.observer is None  # only the first call is watched
    assert report.source == "imperative calls" and len(report.steps) == 3
    assert [(r.layer, r.precision) for r in report.rows] == [
        ("hidden", "float16"),
        ("out", "float16"),
    ]
    assert [f.code for f in report.findings] == ["AMP403"]
