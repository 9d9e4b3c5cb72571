"""amp.recording around real training steps: the loss scale and skips of the steps inside the
block (real overflows: float32 gradients under a loss scale of 2^120), the report of the network
as it ran, and nothing recorded or changed outside the block."""

import copy
import math
import pickle

import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon
from nets import batch, build, train_step

import gluon_amp as amp
from gluon_amp import trainer as trainer_module
from gluon_amp.trainer import step_hook


def overflowing_run():
    """An MLP whose scaled float32 gradients overflow at 2^120 and not at 2^114: every third
    clean step grows the scale back to 2^120, and the next step overflows again."""
    net = build("mlp", hybridize=True)
    x, y = batch("mlp")
    scaler = amp.DynamicLossScaler(
        2.0**120, max_scale=2.0**120, growth_interval=3, growth_factor=2**6, backoff_factor=2**-6
    )
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
    return net, amp.init_trainer(trainer, scaler), x * 1e3, y


def test_steps_inside_the_block_are_recorded_with_the_scale_they_used():
    net, trainer, x, y = overflowing_run()
    scaler = amp.loss_scaler(trainer)
    for _ in range(2):
        train_step(net, trainer, x, y)  # before the block: not recorded
    seen = []
    with amp.recording(net, trainer) as report:
        for _ in range(8):
            used = scaler.scale
            train_step(net, trainer, x, y)
            seen.append((used, scaler.last_skipped, scaler.scale))
    train_step(net, trainer, x, y)  # after the block: not recorded
    assert [(s.scale, s.skipped, s.next_scale) for s in report.steps] == seen
    # Before the block: 2^120 overflowed, 2^114 was clean. Inside: two more clean steps grow it
    # back to 2^120, which overflows; three clean steps later again.
    assert [math.log2(s.scale) for s in report.steps] == [114, 114, 120, 114, 114, 114, 120, 114]
    assert [i for i, s in enumerate(report.steps, 1) if s.skipped] == [3, 7]
    text = str(report)
    assert "steps: 8 taken, 2 skipped (steps 3, 7); loss scale 2.07692e+34 at the start" in text
    assert report.source == "cached graph" and [r.op for r in report.rows] == ["FullyConnected"] * 2
    assert {name: t.shape for name, t in report.inputs.items()} == {"data": x.shape}
    assert trainer_module.step_hook is step_hook and not net._forward_pre_hooks


def test_recording_changes_nothing_in_training():
    results = []
    for record in (False, True):
        mx.random.seed(3)
        net, trainer, x, y = overflowing_run()
        with amp.recording(net, trainer) if record else mx.autograd.pause():
            for _ in range(5):
                train_step(net, trainer, x, y)
        params = [p.data().asnumpy() for p in net.collect_params().values()]
        results.append((params, amp.loss_scaler(trainer).state_dict()))
    (plain, plain_state), (recorded, recorded_state) = results
    assert plain_state == recorded_state
    for a, b in zip(plain, recorded):
        assert np.array_equal(a, b)


def test_a_block_without_a_call_of_the_network_says_so():
    net, trainer, x, y = overflowing_run()
    with amp.recording(net, trainer) as report:
        pass
    assert report.source == "no call of the network recorded" and report.rows == []
    assert report.steps == []


def test_a_trainer_without_a_loss_scaler_is_refused_before_anything_runs():
    net = build("mlp", hybridize=True)
    trainer = gluon.Trainer(net.collect_params(), "sgd")
    with pytest.raises(RuntimeError, match=r"call amp.init_trainer\(trainer\) first"):
        with amp.recording(net, trainer):
            pass
    assert not net._forward_pre_hooks


def test_a_scaler_being_recorded_is_left_alone():
    """Nothing is attached to the scaler: its copies, pickles and state are its own."""
    net, trainer, x, y = overflowing_run()
    scaler = amp.loss_scaler(trainer)
    with amp.recording(net, trainer) as report:
        train_step(net, trainer, x, y)
        assert set(vars(scaler)) == set(vars(copy.deepcopy(scaler)))
        before = scaler.state_dict()
        copy.deepcopy(scaler).update(True)  # a copy's decision is not this trainer's step
        assert scaler.state_dict() == before
        assert pickle.loads(pickle.dumps(scaler)).state_dict() == before
    assert len(report.steps) == 1


def test_two_trainers_recorded_at_once_each_get_their_steps():
    first, second = overflowing_run(), overflowing_run()
    with amp.recording(first[0], first[1]) as a, amp.recording(second[0], second[1]) as b:
        train_step(*first)
        for _ in range(2):
            train_step(*second)
    assert (len(a.steps), len(b.steps)) == (1, 2) and trainer_module.step_hook is step_hook
