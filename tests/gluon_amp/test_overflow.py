"""Overflow injection: exactly the poisoned steps are skipped, nothing they touch changes.

Each test runs in every low precision this machine has (``machine.LOW_PRECISIONS``): the
machinery must not depend on the dtype.
"""

import logging

import mxnet as mx
import numpy as np
import pytest
from machine import LOW_PRECISIONS, amp_init
from mxnet import autograd, gluon
from mxnet.gluon import nn

import gluon_amp as amp

BATCH = 8


def dense_net(ctx=None, in_units=6):
    """Dense layers only: forward has no side effect, so a skipped step must change nothing."""
    mx.random.seed(1)
    net = nn.HybridSequential()
    net.add(nn.Dense(8, activation="relu", in_units=in_units), nn.Dense(3, in_units=8))
    net.initialize(mx.init.Xavier(), ctx=ctx or mx.cpu())
    net.hybridize()
    return net


def batches(n, ctx=None):
    rng = np.random.RandomState(0)
    return [
        (
            mx.nd.array(rng.uniform(-1, 1, (BATCH, 6)), ctx=ctx or mx.cpu()),
            mx.nd.array(rng.randint(0, 3, BATCH), ctx=ctx or mx.cpu()),
        )
        for _ in range(n)
    ]


def snapshot(net, trainer):
    """Parameters and every piece of optimizer state on every context, as numpy / plain values."""
    params = {
        (k, i): d.asnumpy().copy()
        for k, p in net.collect_params().items()
        for i, d in enumerate(p.list_data())
    }
    opt = trainer._optimizer
    states = {
        (u, i): [
            s.asnumpy().copy()
            for s in (st if isinstance(st, (list, tuple)) else [st])
            if s is not None
        ]
        for u, updater in enumerate(trainer._updaters)
        for i, st in updater.states.items()
    }
    return params, states, opt.num_update, dict(opt._index_update_count)


def assert_same(a, b):
    for key in a[0]:
        np.testing.assert_array_equal(a[0][key], b[0][key])
    assert a[1].keys() == b[1].keys()
    for key in a[1]:
        for x, y in zip(a[1][key], b[1][key]):
            np.testing.assert_array_equal(x, y)
    assert a[2:] == b[2:]


LOSS = gluon.loss.SoftmaxCrossEntropyLoss()


def run(net, trainer, data, poison=None, scales_used=None, scales=None):
    """Train on ``data``; ``poison[step]`` is 'inf', 'nan' (written into a gradient) or 'loss'
    (an overflowing loss); ``scales[step]``, if given, is set as the scale before each step.
    Returns per-step (skipped, scale after the step)."""
    poison = poison or {}
    log = []
    for step, (x, y) in enumerate(data):
        if scales is not None:
            amp.loss_scaler(trainer).scale = scales[step]
        with autograd.record():
            loss = LOSS(net(x), y)
            if poison.get(step) == "loss":
                loss = loss * 1e38
        with amp.scale_loss(loss, trainer) as scaled:
            scaled.backward()
        if scales_used is not None:  # what the gradients get divided by at this step
            scales_used.append(trainer._amp_original_scale / trainer._scale)
        if poison.get(step) in ("inf", "nan"):
            net[1].weight.grad()[1, 2] = np.inf if poison[step] == "inf" else np.nan
        before = snapshot(net, trainer)
        trainer.step(BATCH)
        scaler = amp.loss_scaler(trainer)
        if scaler.last_skipped:
            assert_same(before, snapshot(net, trainer))
        log.append((scaler.last_skipped, scaler.scale))
    return log


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("dtype", LOW_PRECISIONS)
def test_injected_inf_nan_and_loss_overflow_skip_exactly_those_steps(optimizer, dtype):
    amp_init(dtype)
    net = dense_net()
    params = {"learning_rate": 0.01, **({"momentum": 0.9} if optimizer == "sgd" else {})}
    trainer = amp.init_trainer(
        gluon.Trainer(net.collect_params(), optimizer, params),
        amp.DynamicLossScaler(init_scale=1024.0, growth_interval=2),
    )
    used = []
    log = run(net, trainer, batches(8), {2: "inf", 5: "nan", 6: "loss"}, used)
    assert [skipped for skipped, _ in log] == [False, False, True, False, False, True, True, False]
    assert [scale for _, scale in log] == [1024, 2048, 1024, 1024, 2048, 1024, 512, 512]
    # The scale reacts on the very next step (no one-step lag): scale used by each backward.
    assert used == [1024, 1024, 2048, 1024, 1024, 2048, 1024, 512]
    scaler = amp.loss_scaler(trainer)
    assert (scaler.num_steps, scaler.num_skipped) == (8, 3)
    assert trainer._optimizer.num_update == 5


@pytest.mark.parametrize("dtype", LOW_PRECISIONS)
def test_skipped_steps_leave_the_same_weights_as_never_seeing_those_batches(dtype):
    """A run with skips equals a clean run without those steps, at the same scales (float16
    rounds a gradient differently at another scale only where it is subnormal)."""
    amp_init(dtype)
    data = batches(6)
    net = dense_net()
    trainer = amp.init_trainer(
        gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 0.01}),
        amp.DynamicLossScaler(init_scale=256.0, growth_interval=1000),
    )
    used = []
    run(net, trainer, data, {1: "inf", 4: "nan"}, scales_used=used)
    kept = [i for i in range(len(data)) if i not in (1, 4)]
    clean = dense_net()
    clean_trainer = amp.init_trainer(
        gluon.Trainer(clean.collect_params(), "adam", {"learning_rate": 0.01}),
        amp.StaticLossScaler(1.0),
    )
    run(clean, clean_trainer, [data[i] for i in kept], scales=[used[i] for i in kept])
    for (name, p), q in zip(net.collect_params().items(), clean.collect_params().values()):
        np.testing.assert_array_equal(p.data().asnumpy(), q.data().asnumpy(), err_msg=name)


def test_bfloat16_default_trainer_skips_nonfinite_without_scaling():
    amp.init("bfloat16")
    net = dense_net()
    trainer = amp.init_trainer(gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1}))
    log = run(net, trainer, batches(3), {1: "nan"})
    assert log == [(False, 1.0), (True, 1.0), (False, 1.0)]


def test_huge_but_finite_gradients_are_not_skipped():
    """A sum of squares overflows for 1e30, but the gradient is finite: the step happens."""
    net = dense_net()
    trainer = amp.init_trainer(
        gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 1e-12}),
        amp.StaticLossScaler(1.0),
    )
    x, y = batches(1)[0]
    with autograd.record():
        loss = LOSS(net(x), y)
    with amp.scale_loss(loss, trainer) as scaled:
        scaled.backward()
    net[0].weight.grad()[:] = 1e30
    trainer.step(BATCH)
    assert not amp.loss_scaler(trainer).last_skipped
    assert trainer._optimizer.num_update == 1


@pytest.mark.parametrize("dtype", LOW_PRECISIONS)
def test_gradient_accumulation_skip_zeroes_the_accumulated_gradients(dtype):
    amp_init(dtype)
    net = dense_net()
    net.collect_params().setattr("grad_req", "add")
    trainer = amp.init_trainer(
        gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1}),
        amp.DynamicLossScaler(init_scale=64.0),
    )
    data = batches(4)
    for step in range(2):
        scales = []
        for micro, (x, y) in enumerate(data[2 * step : 2 * step + 2]):
            with autograd.record():
                loss = LOSS(net(x), y)
            with amp.scale_loss(loss, trainer) as scaled:
                scaled.backward()
            scales.append(float((scaled[0] / loss[0]).asscalar()))
            if step == 0 and micro == 0:
                net[0].bias.grad()[0] = np.inf
        assert scales[0] == scales[1]  # the scale never changes inside one accumulation
        before = {k: p.data().asnumpy().copy() for k, p in net.collect_params().items()}
        trainer.step(2 * BATCH)
        if step == 0:
            assert amp.loss_scaler(trainer).last_skipped
            for key, param in net.collect_params().items():
                np.testing.assert_array_equal(param.data().asnumpy(), before[key])
                assert not param.grad().asnumpy().any(), key
        else:
            assert not amp.loss_scaler(trainer).last_skipped
            assert amp.loss_scaler(trainer).scale == 32.0
            net.collect_params().zero_grad()


@pytest.mark.parametrize("dtype", LOW_PRECISIONS)
def test_unscale_is_idempotent_and_the_step_does_not_unscale_again(dtype):
    amp_init(dtype)
    (x, y), results = batches(1)[0], []
    for clip in (False, True):
        net = dense_net()
        trainer = amp.init_trainer(
            gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1}),
            amp.DynamicLossScaler(init_scale=512.0),
        )
        with autograd.record():
            loss = LOSS(net(x), y)
        with amp.scale_loss(loss, trainer) as scaled:
            scaled.backward()
        if clip:
            scaled_grad = net[0].weight.grad().asnumpy().copy()
            amp.unscale(trainer)
            amp.unscale(trainer)
            np.testing.assert_array_equal(net[0].weight.grad().asnumpy(), scaled_grad / 512)
            grads = [p.grad() for p in net.collect_params().values()]
            gluon.utils.clip_global_norm(grads, 1e6)  # no actual clipping at this bound
        trainer.step(BATCH)
        results.append(net[0].weight.data().asnumpy())
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize("dtype", LOW_PRECISIONS)
def test_scale_loss_works_outside_record_and_for_several_losses(dtype):
    amp_init(dtype)
    (x, y), grads = batches(1)[0], []
    for inside in (True, False):
        net = dense_net()
        trainer = amp.init_trainer(
            gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1}),
            amp.DynamicLossScaler(init_scale=128.0),
        )
        with autograd.record():
            out = net(x)
            losses = [LOSS(out, y), (out**2).mean(axis=1)]
            if inside:
                with amp.scale_loss(losses, trainer) as scaled:
                    autograd.backward(scaled)
        if not inside:
            with amp.scale_loss(losses, trainer) as scaled:
                assert isinstance(scaled, list) and len(scaled) == 2
                autograd.backward(scaled)
        grads.append(net[0].weight.grad().asnumpy())
    np.testing.assert_array_equal(grads[0], grads[1])
    assert np.abs(grads[0]).max() > 0


@pytest.mark.parametrize("dtype", LOW_PRECISIONS)
def test_each_trainer_has_its_own_scaler(dtype):
    amp_init(dtype)
    nets = [dense_net(), dense_net()]
    trainers = [
        amp.init_trainer(
            gluon.Trainer(n.collect_params(), "sgd", {"learning_rate": 0.1}),
            amp.DynamicLossScaler(init_scale=16.0),
        )
        for n in nets
    ]
    data = batches(1)
    run(nets[0], trainers[0], data, {0: "inf"})
    run(nets[1], trainers[1], data)
    assert [amp.loss_scaler(t).scale for t in trainers] == [8.0, 16.0]
    assert trainers[0]._amp_loss_scaler.loss_scale == 8.0  # contrib's attribute path


class ReducingTrainer(gluon.Trainer):
    """Like Horovod's DistributedTrainer: overrides _allreduce_grads (here: adds a peer's inf)."""

    peer_overflows = False

    def _allreduce_grads(self):
        if self.peer_overflows:
            self._params[0].list_grad()[0][:] = np.inf


@pytest.mark.parametrize("dtype", LOW_PRECISIONS)
def test_the_check_sees_the_reduced_gradients_of_a_subclassed_allreduce(dtype):
    amp_init(dtype)
    net = dense_net()
    trainer = amp.init_trainer(
        ReducingTrainer(net.collect_params(), "sgd", {"learning_rate": 0.1}, kvstore=None),
        amp.DynamicLossScaler(init_scale=4.0),
    )
    x, y = batches(1)[0]
    for peer_overflows in (False, True, False):
        trainer.peer_overflows = peer_overflows
        with autograd.record():
            loss = LOSS(net(x), y)
        with amp.scale_loss(loss, trainer) as scaled:
            scaled.backward()
        trainer.step(BATCH)
        assert amp.loss_scaler(trainer).last_skipped == peer_overflows
    assert amp.loss_scaler(trainer).scale == 2.0


@pytest.mark.parametrize("update_on_kvstore", [None, True])
@pytest.mark.parametrize("dtype", LOW_PRECISIONS)
def test_two_cpu_contexts_with_device_kvstore_skip_together(update_on_kvstore, caplog, dtype):
    amp_init(dtype)
    ctx = [mx.cpu(0), mx.cpu(1)]
    net = dense_net(ctx=ctx)
    trainer = gluon.Trainer(
        net.collect_params(),
        "sgd",
        {"learning_rate": 0.1, "momentum": 0.9},
        kvstore="device",
        update_on_kvstore=update_on_kvstore,
    )
    with caplog.at_level(logging.WARNING, logger="gluon_amp"):
        amp.init_trainer(trainer, amp.DynamicLossScaler(init_scale=32.0))
    assert ("update_on_kvstore=True switched off" in caplog.text) == bool(update_on_kvstore)
    for step, (x, y) in enumerate(batches(4)):
        xs = gluon.utils.split_and_load(x, ctx)
        ys = gluon.utils.split_and_load(y, ctx)
        with autograd.record():
            losses = [LOSS(net(a), b) for a, b in zip(xs, ys)]
        with amp.scale_loss(losses, trainer) as scaled:
            autograd.backward(scaled)
        if step == 2:  # only the second device overflows
            net[1].weight.list_grad()[1][0, 0] = np.inf
        before = snapshot(net, trainer)
        trainer.step(BATCH)
        assert amp.loss_scaler(trainer).last_skipped == (step == 2)
        if step == 2:  # momentum on both devices untouched too
            assert len(trainer._updaters) == 2 and len(before[1]) == 8
            assert_same(before, snapshot(net, trainer))
    assert trainer._update_on_kvstore is False
    assert amp.loss_scaler(trainer).scale == 16.0
    for param in net.collect_params().values():
        first, second = (d.asnumpy() for d in param.list_data())
        assert np.isfinite(first).all()
        np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("autocast", [False, True])
def test_float16_elementwise_model_backs_off_until_the_scaled_loss_fits(autocast):
    """float16 elementwise ops on CPU, hand-cast or under amp.init('float16'): dynamic scaling."""
    if autocast:
        amp.init("float16")

    class Affine(gluon.HybridBlock):
        def __init__(self):
            super().__init__()
            self.w = self.params.get("w", shape=(1, 4), dtype="float16", init=mx.init.One())

        def hybrid_forward(self, F, x, w):
            return F.broadcast_mul(x, w)

    net = Affine()
    net.initialize()
    opt = {"learning_rate": 0.01, "multi_precision": True}
    trainer = amp.init_trainer(gluon.Trainer(net.collect_params(), "sgd", opt))
    scaler = amp.loss_scaler(trainer)
    assert isinstance(scaler, amp.DynamicLossScaler) and scaler.scale == 2.0**16
    x = mx.nd.full((8, 4), 3.0, dtype="float16")  # loss 72 per row: 72 * 2**16 overflows float16
    skipped = []
    for _ in range(12):
        with autograd.record():
            loss = ((net(x) - 1) ** 2).sum()
        with amp.scale_loss(loss, trainer) as scaled:
            scaled.backward()
        trainer.step(8)
        skipped.append(scaler.last_skipped)
    # The gradient 2*(3w-1)*3*8 = 96 (w=1) times the scale must stay below 65504 = 2**16:
    # 2**16 and 2**15 ... 2**10 overflow, 2**9 does not.
    assert skipped[:7] == [True] * 7 and not any(skipped[7:])
    assert scaler.scale == 2.0**9
    assert np.isfinite(net.w.data().asnumpy()).all()
    assert (net.w.data().asnumpy() < 1).all()


@pytest.mark.parametrize("dtype", LOW_PRECISIONS)
def test_a_stale_inf_gradient_does_not_skip_every_later_step(dtype):
    """A branch unused after a skipped step keeps its inf gradient; ignore_stale_grad steps on."""
    amp_init(dtype)
    used, unused = dense_net(), dense_net()
    params = {**used.collect_params(), **unused.collect_params()}
    trainer = amp.init_trainer(
        gluon.Trainer(params, "sgd", {"learning_rate": 0.1}), amp.DynamicLossScaler(init_scale=8.0)
    )
    data = batches(3)
    x, y = data[0]
    with autograd.record():
        loss = LOSS(used(x), y) + LOSS(unused(x), y)
    with amp.scale_loss(loss, trainer) as scaled:
        scaled.backward()
    unused[0].weight.grad()[0, 0] = np.inf
    trainer.step(BATCH)
    assert amp.loss_scaler(trainer).last_skipped
    frozen = unused[0].weight.data().asnumpy().copy()
    before = used[0].weight.data().asnumpy().copy()
    for x, y in data[1:]:
        with autograd.record():
            loss = LOSS(used(x), y)
        with amp.scale_loss(loss, trainer) as scaled:
            scaled.backward()
        trainer.step(BATCH, ignore_stale_grad=True)
        assert not amp.loss_scaler(trainer).last_skipped
    assert np.isinf(unused[0].weight.grad().asnumpy()[0, 0])  # still there, rightly ignored
    np.testing.assert_array_equal(unused[0].weight.data().asnumpy(), frozen)
    assert np.abs(used[0].weight.data().asnumpy() - before).max() > 0
    assert (amp.loss_scaler(trainer).num_skipped, amp.loss_scaler(trainer).scale) == (1, 4.0)
    with autograd.record():  # without ignore_stale_grad, Gluon's own stale-gradient error
        loss = LOSS(used(x), y)
    with amp.scale_loss(loss, trainer) as scaled:
        scaled.backward()
    with pytest.raises(UserWarning, match="has not been updated by backward"):
        trainer.step(BATCH)


@pytest.mark.parametrize("dtype", LOW_PRECISIONS)
def test_allreduce_grads_then_update_skips_like_step(dtype):
    amp_init(dtype)
    net = dense_net()
    trainer = amp.init_trainer(
        gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1, "momentum": 0.9}),
        amp.DynamicLossScaler(init_scale=32.0),
    )
    for step, (x, y) in enumerate(batches(3)):
        with autograd.record():
            loss = LOSS(net(x), y)
        with amp.scale_loss(loss, trainer) as scaled:
            scaled.backward()
        trainer.allreduce_grads()
        if step == 1:
            net[0].weight.grad()[0, 0] = np.nan
        before = snapshot(net, trainer)
        trainer.update(BATCH)
        assert amp.loss_scaler(trainer).last_skipped == (step == 1)
        if step == 1:
            assert_same(before, snapshot(net, trainer))
    assert (trainer._optimizer.num_update, amp.loss_scaler(trainer).scale) == (2, 16.0)


@pytest.mark.parametrize("dtype", LOW_PRECISIONS)
def test_numpy_front_end_scales_skips_and_unscales(dtype):
    mx.npx.set_np()
    amp_init(dtype)
    net = dense_net()
    trainer = amp.init_trainer(
        gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1, "momentum": 0.9}),
        amp.DynamicLossScaler(init_scale=64.0, growth_interval=2),
    )
    log = []
    for step, (x, y) in enumerate(batches(4)):
        x, y = x.as_np_ndarray(), y.as_np_ndarray()
        with autograd.record():
            loss = LOSS(net(x), y)
        with amp.scale_loss(loss, trainer) as scaled:
            assert isinstance(scaled, mx.np.ndarray)
            scaled.backward()
        if step == 1:
            net[1].weight.grad()[0, 0] = np.nan
        if step == 2:
            scaled_grad = net[0].weight.grad().asnumpy().copy()
            amp.unscale(trainer)
            np.testing.assert_array_equal(net[0].weight.grad().asnumpy(), scaled_grad / 32)
        before = snapshot(net, trainer)
        trainer.step(BATCH)
        if step == 1:
            assert_same(before, snapshot(net, trainer))
        log.append((amp.loss_scaler(trainer).last_skipped, amp.loss_scaler(trainer).scale))
    assert log == [(False, 64.0), (True, 32.0), (False, 32.0), (False, 64.0)]
    assert all(np.isfinite(p.data().asnumpy()).all() for p in net.collect_params().values())
