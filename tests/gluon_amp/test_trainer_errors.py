"""Every trainer-side error path: one clear message naming the problem and the fix."""

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon
from mxnet.gluon import nn

import gluon_amp as amp


def dense(ctx=None):
    net = nn.Dense(2, in_units=3)
    net.initialize(ctx=ctx)
    return net


def test_scale_loss_without_init_trainer_names_init_trainer():
    trainer = gluon.Trainer(dense().collect_params(), "sgd")
    with pytest.raises(RuntimeError, match=r"call amp.init_trainer\(trainer\) first"):
        with amp.scale_loss(mx.nd.ones((1,)), trainer):
            pass
    with pytest.raises(RuntimeError, match="init_trainer"):
        amp.loss_scaler(trainer)
    with pytest.raises(RuntimeError, match="init_trainer"):
        amp.unscale(trainer)


def test_init_trainer_wants_a_trainer_and_a_scaler():
    with pytest.raises(TypeError, match="needs a gluon.Trainer, got SGD"):
        amp.init_trainer(mx.optimizer.SGD())
    trainer = gluon.Trainer(dense().collect_params(), "sgd")
    with pytest.raises(TypeError, match="loss_scaler must be an amp.DynamicLossScaler"):
        amp.init_trainer(trainer, loss_scaler=2.0**16)


def test_one_scaler_cannot_serve_two_trainers():
    scaler = amp.DynamicLossScaler()
    first = amp.init_trainer(gluon.Trainer(dense().collect_params(), "sgd"), scaler)
    with pytest.raises(ValueError, match="belongs to another trainer"):
        amp.init_trainer(gluon.Trainer(dense().collect_params(), "sgd"), scaler)
    assert amp.loss_scaler(first) is scaler


def test_init_trainer_twice_keeps_the_scaler_and_can_replace_it():
    trainer = gluon.Trainer(dense().collect_params(), "sgd")
    first = amp.loss_scaler(amp.init_trainer(trainer))
    assert amp.loss_scaler(amp.init_trainer(trainer)) is first
    second = amp.StaticLossScaler(4.0)
    assert amp.loss_scaler(amp.init_trainer(trainer, second)) is second


@pytest.mark.parametrize("kvstore", ["dist_async", "dist_device_async"])
def test_async_kvstore_is_refused_with_the_reason(kvstore):
    trainer = gluon.Trainer(dense().collect_params(), "sgd", kvstore=kvstore)
    with pytest.raises(ValueError, match="forces update_on_kvstore=True.*use 'dist_sync'"):
        amp.init_trainer(trainer)


def test_sparse_weights_are_refused_with_the_reason():
    weight = gluon.Parameter("weight", shape=(4, 2), stype="row_sparse", grad_stype="row_sparse")
    weight.initialize()
    trainer = gluon.Trainer([weight], "sgd")
    with pytest.raises(ValueError, match="sparse weights force update_on_kvstore=True"):
        amp.init_trainer(trainer)


def test_sparse_gradients_on_a_dist_kvstore_are_refused():
    net = nn.Embedding(10, 2, sparse_grad=True)
    net.initialize()
    trainer = gluon.Trainer(net.collect_params(), "sgd", kvstore="dist_sync")
    with pytest.raises(ValueError, match="sparse gradients on kvstore 'dist_sync'"):
        amp.init_trainer(trainer)


def test_init_trainer_after_updates_on_the_kvstore_asks_to_move_it_earlier():
    ctx = [mx.cpu(0), mx.cpu(1)]
    net = dense(ctx)
    trainer = gluon.Trainer(net.collect_params(), "sgd", kvstore="device")
    for c in ctx:
        with autograd.record():
            loss = net(mx.nd.ones((1, 3), ctx=c)).sum()
        loss.backward()
    trainer.step(1)
    assert trainer._update_on_kvstore
    with pytest.raises(ValueError, match=r"before the first trainer.step\(\)"):
        amp.init_trainer(trainer)


@pytest.mark.parametrize(
    "dtype, expected",
    [
        (None, amp.DynamicLossScaler),
        ("float16", amp.DynamicLossScaler),
        ("bfloat16", amp.StaticLossScaler),
    ],
)
def test_default_scaler_follows_the_autocast_dtype(dtype, expected):
    if dtype:
        amp.init(dtype)
    scaler = amp.loss_scaler(amp.init_trainer(gluon.Trainer(dense().collect_params(), "sgd")))
    assert type(scaler) is expected
    assert scaler.scale == (1.0 if dtype == "bfloat16" else 2.0**16) and scaler.checks_nonfinite


@pytest.mark.parametrize("call", ["step", "update"])
def test_a_step_that_raises_on_a_stale_gradient_leaves_the_scaler_unchanged(call):
    net = nn.HybridSequential()
    net.add(nn.Dense(3, in_units=3), nn.Dense(2, in_units=3))
    net.initialize()
    trainer = amp.init_trainer(
        gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1}),
        amp.DynamicLossScaler(init_scale=8.0, growth_interval=1),
    )
    scaler = amp.loss_scaler(trainer)
    x = mx.nd.ones((1, 3))

    def backward(block):
        with autograd.record():
            loss = block(x).sum()
        with amp.scale_loss(loss, trainer) as scaled:
            scaled.backward()
        amp.unscale(trainer)

    backward(net)
    getattr(trainer, call)(1)
    before = scaler.state_dict()
    backward(net[0])  # the second layer's gradients are stale
    with pytest.raises(UserWarning, match="has not been updated by backward"):
        getattr(trainer, call)(1)
    assert scaler.state_dict() == before  # not counted, not grown
    grad = net[0].weight.grad().asnumpy()
    amp.unscale(trainer)  # still unscaled: a second call divides nothing
    np.testing.assert_array_equal(net[0].weight.grad().asnumpy(), grad)
    getattr(trainer, call)(1, ignore_stale_grad=True)
    assert scaler.num_steps == before["num_steps"] + 1 and scaler.scale == 2 * before["scale"]
