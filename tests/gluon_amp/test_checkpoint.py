"""save_states / load_states: optimizer and scaler together, atomic, resume reproduces the run."""

import os
import pickle

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon
from mxnet.gluon import nn

import gluon_amp as amp

LOSS = gluon.loss.L2Loss()


def setup(params_file=None):
    mx.random.seed(3)
    net = nn.Dense(2, in_units=4)
    net.initialize(mx.init.Xavier())
    if params_file:
        net.load_parameters(str(params_file))
    trainer = amp.init_trainer(
        gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 0.01}),
        amp.DynamicLossScaler(init_scale=64.0, growth_interval=2, hysteresis=2),
    )
    return net, trainer


def steps(net, trainer, start, stop, poisoned=(2, 4, 5)):
    rng = np.random.RandomState(7)
    data = [(rng.uniform(size=(4, 4)), rng.uniform(size=(4, 2))) for _ in range(stop)]
    trajectory = []
    for step in range(start, stop):
        x, y = (mx.nd.array(a) for a in data[step])
        with autograd.record():
            loss = LOSS(net(x), y)
        with amp.scale_loss(loss, trainer) as scaled:
            scaled.backward()
        if step in poisoned:
            net.weight.grad()[0, 0] = np.nan
        trainer.step(4)
        scaler = amp.loss_scaler(trainer)
        trajectory.append((scaler.scale, scaler.last_skipped))
    return trajectory


def test_resume_reproduces_the_trajectory_parameters_and_optimizer_state(tmp_path):
    net, trainer = setup()
    full = steps(net, trainer, 0, 8)

    net2, trainer2 = setup()
    head = steps(net2, trainer2, 0, 4)
    net2.save_parameters(str(tmp_path / "net.params"))
    amp.save_states(trainer2, tmp_path / "trainer.states")

    net3, trainer3 = setup(tmp_path / "net.params")
    amp.load_states(trainer3, tmp_path / "trainer.states")
    tail = steps(net3, trainer3, 4, 8)
    assert head + tail == full
    assert amp.loss_scaler(trainer3).state_dict() == amp.loss_scaler(trainer).state_dict()
    np.testing.assert_array_equal(net3.weight.data().asnumpy(), net.weight.data().asnumpy())
    assert trainer3._optimizer.num_update == trainer._optimizer.num_update
    for key, (mean, var) in trainer._updaters[0].states.items():
        mean3, var3 = trainer3._updaters[0].states[key]
        np.testing.assert_array_equal(mean3.asnumpy(), mean.asnumpy())
        np.testing.assert_array_equal(var3.asnumpy(), var.asnumpy())
    assert list(tmp_path.iterdir()) and all(not p.name.startswith(".") for p in tmp_path.iterdir())


@pytest.mark.parametrize(
    "owner, name",
    [
        (gluon.Trainer, "save_states"),  # writing the optimizer part
        (pickle, "dumps"),  # assembling the file
        (os, "fsync"),  # the temporary file is written but not yet renamed
        (os, "replace"),  # the rename itself
    ],
)
def test_a_failed_save_keeps_the_old_file_and_leaves_nothing_behind(
    tmp_path, monkeypatch, owner, name
):
    net, trainer = setup()
    steps(net, trainer, 0, 1)
    target = tmp_path / "trainer.states"
    amp.save_states(trainer, target)
    before = target.read_bytes()
    steps(net, trainer, 1, 2)  # the state to save now differs

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(owner, name, broken)
    with pytest.raises(OSError, match="disk full"):
        amp.save_states(trainer, target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trainer.states"]


def test_loading_a_file_that_is_not_ours_is_a_clear_error(tmp_path):
    net, trainer = setup()
    plain = tmp_path / "plain.states"
    trainer.save_states(str(plain))
    with pytest.raises(ValueError, match=r"not a gluon_amp states file \(write it with amp.save"):
        amp.load_states(trainer, plain)
    text = tmp_path / "notes.txt"
    text.write_text("not a pickle")
    with pytest.raises(ValueError, match="notes.txt is not a gluon_amp states file"):
        amp.load_states(trainer, text)


@pytest.mark.parametrize("broken", ["optimizer", "scaler"])
def test_a_failed_load_changes_neither_the_optimizer_nor_the_scaler(tmp_path, broken):
    net, trainer = setup()
    steps(net, trainer, 0, 3)
    amp.save_states(trainer, tmp_path / "trainer.states")
    payload = pickle.loads((tmp_path / "trainer.states").read_bytes())
    if broken == "optimizer":
        payload["optimizer"] = payload["optimizer"][:20]  # truncated
    else:
        payload["scaler"]["scale"] = -1.0
    (tmp_path / "bad.states").write_bytes(pickle.dumps(payload))

    fresh_net, fresh = setup()
    steps(fresh_net, fresh, 0, 2, poisoned=(0,))
    scaler_before = amp.loss_scaler(fresh).state_dict()
    states_before = fresh._updaters[0].get_states(dump_optimizer=False)
    assert scaler_before != payload["scaler"] and fresh._optimizer.num_update == 1
    error = ValueError if broken == "scaler" else Exception  # MXNet's unpickling error
    with pytest.raises(error):
        amp.load_states(fresh, tmp_path / "bad.states")
    assert fresh._optimizer.num_update == 1
    assert amp.loss_scaler(fresh).state_dict() == scaler_before
    assert fresh._updaters[0].get_states(dump_optimizer=False) == states_before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.states", "trainer.states"]
