"""Copies of an attached scaler: pickled (for a worker process), deep-copied alone or with its
trainer; each copy carries the state and belongs to the trainer a user expects."""

import copy
import pickle

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon
from mxnet.gluon import nn

import gluon_amp as amp

X = mx.nd.array(np.random.RandomState(1).uniform(-1, 1, size=(4, 3)))


def trained(steps=3):
    """A Dense layer and its trainer after ``steps`` steps, the second one overflowing."""
    net = nn.Dense(2, in_units=3)
    net.initialize(mx.init.Xavier())
    trainer = amp.init_trainer(
        gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1, "momentum": 0.9}),
        amp.DynamicLossScaler(init_scale=2.0**20, growth_interval=2, hysteresis=2),
    )
    for step in range(steps):
        train(net, trainer, big=step == 1)
    return net, trainer


def train(net, trainer, big=False):
    with autograd.record():
        loss = net(X).sum() * (1e36 if big else 1.0)  # 1e36 * 2**20 overflows float32
    with amp.scale_loss(loss, trainer) as scaled:
        scaled.backward()
    trainer.step(4)


def other_trainer():
    net = nn.Dense(2, in_units=3)
    net.initialize()
    return net, gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})


@pytest.mark.parametrize(
    "duplicate", [lambda s: pickle.loads(pickle.dumps(s)), copy.deepcopy, copy.copy]
)
def test_a_copy_of_an_attached_scaler_keeps_its_state_and_serves_a_new_trainer(duplicate):
    _, trainer = trained()
    scaler = amp.loss_scaler(trainer)
    assert scaler.num_skipped == 1  # the state to carry over is not the initial one
    twin = duplicate(scaler)
    assert twin is not scaler and twin.state_dict() == scaler.state_dict()
    net, fresh = other_trainer()
    assert amp.loss_scaler(amp.init_trainer(fresh, twin)) is twin
    train(net, fresh)
    assert twin.num_steps == scaler.num_steps + 1  # counts its own trainer's steps only
    assert amp.loss_scaler(trainer) is scaler and scaler.num_steps == 3
    with pytest.raises(ValueError, match="belongs to another trainer"):
        amp.init_trainer(other_trainer()[1], scaler)  # the original still serves its trainer


def test_deepcopy_of_a_trainer_gives_the_copy_its_own_scaler():
    net, trainer = trained()
    clone_net, clone = copy.deepcopy((net, trainer))
    scaler, clone_scaler = amp.loss_scaler(trainer), amp.loss_scaler(clone)
    assert clone_scaler is not scaler and clone_scaler.state_dict() == scaler.state_dict()
    assert clone_scaler._trainer() is clone and scaler._trainer() is trainer
    assert amp.loss_scaler(amp.init_trainer(clone)) is clone_scaler
    with pytest.raises(ValueError, match="belongs to another trainer"):
        amp.init_trainer(other_trainer()[1], clone_scaler)
    # MXNet's deepcopy of a parameter drops its autograd marking: mark the copies again.
    for param in clone_net.collect_params().values():
        autograd.mark_variables(param.list_data(), param.list_grad())
    # Both train on: the same steps give the same weights, each scaler counts its own steps.
    for big in (False, True, False, False):
        train(net, trainer, big)
        train(clone_net, clone, big)
        assert clone_scaler.state_dict() == scaler.state_dict()
    assert scaler.num_steps == 7 and scaler.num_skipped == 2
    np.testing.assert_array_equal(clone_net.weight.data().asnumpy(), net.weight.data().asnumpy())
