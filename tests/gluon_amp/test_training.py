"""Real Gluon networks trained in bfloat16 on CPU through gluon_amp, both front ends."""

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon
from nets import batch, build, train_step

import gluon_amp as amp

CASES = [
    (front, kind, hybridize)
    for front in ("legacy", "numpy")
    for kind in ("mlp", "conv", "lstm", "gru")
    for hybridize in (False, True)
    # MXNet 1.9.1 cannot hybridize a numpy-mode RNN layer even in float32 (state shape error).
    if not (front == "numpy" and hybridize and kind in ("lstm", "gru"))
]


@pytest.mark.parametrize("front, kind, hybridize", CASES)
def test_bfloat16_training_learns(front, kind, hybridize):
    if front == "numpy":
        mx.npx.set_np()
    amp.init("bfloat16")
    net = build(kind, hybridize)
    trainer = amp.init_trainer(gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 0.05}))
    x, y = batch(kind)
    losses = [train_step(net, trainer, x, y) for _ in range(6)]
    scaler = amp.loss_scaler(trainer)
    assert isinstance(scaler, amp.StaticLossScaler) and scaler.scale == 1.0
    assert (scaler.num_steps, scaler.num_skipped) == (6, 0)
    assert losses[-1] < 0.5 * losses[0]
    for param in net.collect_params().values():
        assert np.isfinite(param.data().asnumpy()).all()


@pytest.mark.parametrize("kind", ["conv", "lstm"])
def test_init_after_the_network_is_built_and_hybridized_but_before_its_first_forward(kind):
    net = build(kind, hybridize=True)  # parameters still deferred, no graph cached yet
    amp.init("bfloat16")
    trainer = amp.init_trainer(gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 0.05}))
    x, y = batch(kind)
    losses = [train_step(net, trainer, x, y) for _ in range(6)]
    assert losses[-1] < 0.5 * losses[0]
    inputs, graph = net._cached_graph
    internals = graph.get_internals()
    _, types, _ = internals.infer_type(**{i.name: np.float32 for i in inputs})
    dense_output = net[-1].name + "_fwd_output"
    assert dict(zip(internals.list_outputs(), types))[dense_output] == amp.autocast.bfloat16


def test_layers_really_run_in_bfloat16_inside_the_network():
    amp.init("bfloat16")
    net = build("mlp", hybridize=False)
    seen = []
    net[0].register_forward_hook(lambda block, inputs, out: seen.append(out.dtype))
    out = net(batch("mlp")[0])
    assert seen == [amp.autocast.bfloat16]  # inner Dense output: bfloat16
    assert out.dtype == np.float32  # outermost output: float32 (cast_outputs=True)


def _accumulated_grads(net, x, passes):
    for _ in range(passes):
        with autograd.record():
            loss = (net(x) ** 2).sum()  # not just sum: BatchNorm output sums to zero
        loss.backward()
    params = net.collect_params().items()
    return {k: p.grad().asnumpy().copy() for k, p in params if p.grad_req != "null"}


@pytest.mark.parametrize("front", ["legacy", "numpy"])
@pytest.mark.parametrize("kind", ["mlp", "lstm"])
@pytest.mark.parametrize("hybridize", [False, True])
@pytest.mark.parametrize("when", ["before_init", "after_first_call"])
def test_grad_req_add_accumulates_through_the_casts(front, kind, hybridize, when):
    """MXNet's CPU amp_cast drops kAddTo gradients; gluon_amp routes them around it."""
    if front == "numpy" and hybridize and kind == "lstm":
        pytest.skip("MXNet 1.9.1 cannot hybridize a numpy-mode RNN layer")
    if front == "numpy":
        mx.npx.set_np()
    net = build(kind, hybridize)
    x = batch(kind)[0]
    if when == "before_init":
        net.collect_params().setattr("grad_req", "add")
        amp.init("bfloat16")
    else:
        amp.init("bfloat16")
        _accumulated_grads(net, x, 1)  # builds the graph with grad_req='write'
        net.collect_params().setattr("grad_req", "add")
    once = _accumulated_grads(net, x, 1)
    twice = _accumulated_grads(net, x, 1)
    for name, grad in once.items():
        assert np.abs(grad).max() > 0, name
        np.testing.assert_allclose(twice[name], 2 * grad, rtol=1e-2, atol=1e-5, err_msg=name)
