"""Real Gluon networks trained in low precision on CPU through gluon_amp, both front ends.

float16 runs here for real (emulated on a CPU, gluon_amp/emulate.py): its gradients overflow,
and the dynamic loss scaler backs off and grows again on its own, with no injected infinity.
"""

import math

import mxnet as mx
import numpy as np
import pytest
from machine import LOW_PRECISIONS, amp_init
from mxnet import autograd, gluon
from nets import batch, build, digits, digits_cnn, train_step

import gluon_amp as amp

CASES = [
    (front, kind, hybridize)
    for front in ("legacy", "numpy")
    for kind in ("mlp", "conv", "lstm", "gru")
    for hybridize in (False, True)
    # MXNet 1.9.1 cannot hybridize a numpy-mode RNN layer even in float32 (state shape error).
    if not (front == "numpy" and hybridize and kind in ("lstm", "gru"))
]
LOW_DTYPES = {"bfloat16": amp.autocast.bfloat16, "float16": np.dtype(np.float16)}


@pytest.mark.parametrize("dtype", LOW_PRECISIONS)
@pytest.mark.parametrize("front, kind, hybridize", CASES)
def test_training_learns(front, kind, hybridize, dtype):
    if front == "numpy":
        mx.npx.set_np()
    amp_init(dtype)
    net = build(kind, hybridize)
    trainer = amp.init_trainer(gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 0.05}))
    x, y = batch(kind)
    losses = [train_step(net, trainer, x, y) for _ in range(10)]
    scaler = amp.loss_scaler(trainer)
    assert scaler.num_steps == 10
    if dtype == "bfloat16":
        assert isinstance(scaler, amp.StaticLossScaler) and scaler.scale == 1.0
        assert scaler.num_skipped == 0
    else:  # the summed per-sample losses overflow float16 gradients at 2**16: real skips
        assert isinstance(scaler, amp.DynamicLossScaler) and 1 <= scaler.num_skipped <= 5
        assert scaler.scale < 2.0**16
    assert losses[-1] < 0.5 * losses[0]
    for param in net.collect_params().values():
        assert np.isfinite(param.data().asnumpy()).all()


@pytest.mark.parametrize("dtype", LOW_PRECISIONS)
@pytest.mark.parametrize("kind", ["conv", "lstm"])
def test_init_after_the_network_is_built_and_hybridized_but_before_its_first_forward(kind, dtype):
    net = build(kind, hybridize=True)  # parameters still deferred, no graph cached yet
    amp_init(dtype)
    trainer = amp.init_trainer(gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 0.05}))
    x, y = batch(kind)
    losses = [train_step(net, trainer, x, y) for _ in range(10)]
    assert losses[-1] < 0.5 * losses[0]
    inputs, graph = net._cached_graph
    internals = graph.get_internals()
    _, types, _ = internals.infer_type(**{i.name: np.float32 for i in inputs})
    # The last Dense layer's output is low precision (with float16 emulation, the cast after
    # its float32 computation).
    dense = [t for n, t in zip(internals.list_outputs(), types) if n.startswith(net[-1].name)]
    assert dense[-1] == LOW_DTYPES[dtype]


@pytest.mark.parametrize("dtype", LOW_PRECISIONS)
def test_layers_really_run_in_low_precision_inside_the_network(dtype):
    amp_init(dtype)
    net = build("mlp", hybridize=False)
    seen = []
    net[0].register_forward_hook(lambda block, inputs, out: seen.append(out.dtype))
    out = net(batch("mlp")[0])
    assert seen == [LOW_DTYPES[dtype]]  # inner Dense output
    assert out.dtype == np.float32  # outermost output: float32 (cast_outputs=True)


def _accumulated_grads(net, x, passes):
    for _ in range(passes):
        with autograd.record():
            loss = (net(x) ** 2).sum()  # not just sum: BatchNorm output sums to zero
        loss.backward()
    params = net.collect_params().items()
    return {k: p.grad().asnumpy().copy() for k, p in params if p.grad_req != "null"}


@pytest.mark.parametrize("dtype", LOW_PRECISIONS)
@pytest.mark.parametrize("front", ["legacy", "numpy"])
@pytest.mark.parametrize("kind", ["mlp", "lstm"])
@pytest.mark.parametrize("hybridize", [False, True])
@pytest.mark.parametrize("when", ["before_init", "after_first_call"])
def test_grad_req_add_accumulates_through_the_casts(front, kind, hybridize, when, dtype):
    """MXNet's CPU amp_cast drops kAddTo gradients; gluon_amp routes them around it."""
    if front == "numpy" and hybridize and kind == "lstm":
        pytest.skip("MXNet 1.9.1 cannot hybridize a numpy-mode RNN layer")
    if front == "numpy":
        mx.npx.set_np()
    net = build(kind, hybridize)
    x = batch(kind)[0]
    if when == "before_init":
        net.collect_params().setattr("grad_req", "add")
        amp_init(dtype)
    else:
        amp_init(dtype)
        _accumulated_grads(net, x, 1)  # builds the graph with grad_req='write'
        net.collect_params().setattr("grad_req", "add")
    once = _accumulated_grads(net, x, 1)
    twice = _accumulated_grads(net, x, 1)
    for name, grad in once.items():
        assert np.abs(grad).max() > 0, name
        np.testing.assert_allclose(twice[name], 2 * grad, rtol=1e-2, atol=1e-5, err_msg=name)


# --- float16 with dynamic loss scaling, for real ---------------------------------------------

DIGITS_STEPS = 400
GROWTH_INTERVAL = 50


def train_digits(dtype: str | None, steps: int, scaler=None, seed: int = 0):
    """Train ``digits_cnn`` (adam, cosine decay, batch 64); return its test accuracy and, per
    step, (skipped, scale used, scale after) — or Nones without amp."""
    x_train, y_train, x_test, y_test = digits()
    mx.random.seed(seed)
    if dtype is not None:
        amp_init(dtype)
    net = digits_cnn()
    net.initialize(mx.init.Xavier())
    net.hybridize(static_alloc=True, static_shape=True)
    schedule = mx.lr_scheduler.CosineScheduler(steps, base_lr=5e-3, final_lr=0)
    trainer = gluon.Trainer(net.collect_params(), "adam", {"lr_scheduler": schedule})
    if dtype is not None:
        amp.init_trainer(trainer, scaler)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    rng = np.random.RandomState(seed)
    log = []
    for _ in range(steps):
        rows = rng.choice(len(x_train), 64, replace=False)
        x, y = mx.nd.array(x_train[rows]), mx.nd.array(y_train[rows])
        with autograd.record():
            loss = loss_fn(net(x), y)
        if dtype is None:
            loss.backward()
            trainer.step(64)
            continue
        scaler = amp.loss_scaler(trainer)
        used = scaler.scale
        with amp.scale_loss(loss, trainer) as scaled:
            scaled.backward()
        trainer.step(64)
        log.append((scaler.last_skipped, used, scaler.scale))
    accuracy = float((net(mx.nd.array(x_test)).asnumpy().argmax(axis=1) == y_test).mean())
    amp.reset()
    return accuracy, log


def test_float16_overflows_backs_off_settles_grows_and_matches_float32_accuracy():
    """No injected infinity: float16 gradients overflow at 2**16 by themselves."""
    fp32_accuracy, _ = train_digits(None, DIGITS_STEPS)
    scaler = amp.DynamicLossScaler(growth_interval=GROWTH_INTERVAL)
    fp16_accuracy, log = train_digits("float16", DIGITS_STEPS, scaler)
    skipped = [s for s, _, _ in log]
    # Overflow in the first steps at 2**16, halving the scale each time, until one fits.
    first_clean = skipped.index(False)
    assert first_clean >= 1 and log[0][1] == 2.0**16
    assert [used for _, used, _ in log[: first_clean + 1]] == [
        2.0 ** (16 - i) for i in range(first_clean + 1)
    ]
    # Then it settles (few overflows), and grows again after GROWTH_INTERVAL clean steps.
    clean_run = 0
    growths = 0
    for was_skipped, used, after in log:
        clean_run = 0 if was_skipped else clean_run + 1
        if was_skipped:
            assert after == used / 2
        elif clean_run % GROWTH_INTERVAL == 0:
            assert after == used * 2
            growths += 1
        else:
            assert after == used
    assert growths >= 2
    assert sum(skipped[first_clean:]) <= (DIGITS_STEPS - first_clean) * 0.05
    assert scaler.num_steps == DIGITS_STEPS and scaler.num_skipped == sum(skipped)
    assert abs(fp16_accuracy - fp32_accuracy) <= 0.01, (fp16_accuracy, fp32_accuracy)
    assert fp32_accuracy > 0.9


def _conv_run(start, stop, losses_per_step=1, clip=None, before_training=None):
    """nets.build('conv') trained in float16 on batches ``start``..``stop`` (real overflows);
    returns the net, the trainer and per step (skipped, scale after)."""
    amp_init("float16")
    mx.random.seed(0)
    net = build("conv", hybridize=True)
    trainer = amp.init_trainer(
        gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.05, "momentum": 0.9}),
        amp.DynamicLossScaler(growth_interval=3),
    )
    if before_training is not None:
        before_training(net, trainer)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    log = []
    for step in range(start, stop):
        x, y = batch("conv", seed=step)
        with autograd.record():
            out = net(x)
            losses = [loss_fn(out, y) / losses_per_step for _ in range(losses_per_step)]
        with amp.scale_loss(losses if losses_per_step > 1 else losses[0], trainer) as scaled:
            autograd.backward(scaled if losses_per_step > 1 else [scaled])
        if clip is not None:
            amp.unscale(trainer)
            clip([p.grad() for p in net.collect_params().values() if p.grad_req != "null"])
        trainer.step(x.shape[0])
        log.append((amp.loss_scaler(trainer).last_skipped, amp.loss_scaler(trainer).scale))
    amp.reset()
    return net, trainer, log


def _params(net) -> list[np.ndarray]:
    """The trained parameters (BatchNorm's running statistics, moved by every forward, aside)."""
    return [
        p.data().asnumpy().copy() for p in net.collect_params().values() if p.grad_req != "null"
    ]


def test_several_losses_scale_and_skip_like_their_sum():
    """scale_loss with a list of losses: each is scaled, backward sums their gradients; the
    float16 overflows and skips are those of the one summed loss."""
    net_one, _, log_one = _conv_run(0, 8)
    net_two, _, log_two = _conv_run(0, 8, losses_per_step=2)
    assert [skipped for skipped, _ in log_one][:2] == [True, True]  # real float16 overflows
    assert log_two == log_one
    for a, b in zip(_params(net_one), _params(net_two)):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


def test_unscale_then_clip_on_real_float16_gradients():
    """Clipping sees unscaled gradients; an overflowing step is still skipped after clipping
    (its norm is not finite) and leaves the weights untouched."""
    norms = []

    def clip(grads):
        norm = gluon.utils.clip_global_norm(grads, 1.0, check_isfinite=False)
        norms.append(float(norm.asscalar()))

    _, _, log = _conv_run(0, 6, clip=clip)
    skipped = [s for s, _ in log]
    first = skipped.index(False)
    assert first >= 1  # real overflows first
    for was_skipped, norm in zip(skipped, norms):
        assert math.isfinite(norm) != was_skipped
        if not was_skipped:
            assert norm < 1e3  # the unscaled norm, not the norm times a 2**k loss scale
    untouched, _, _ = _conv_run(0, first)  # only the skipped steps: the weights never moved
    mx.random.seed(0)
    fresh = build("conv", hybridize=True)
    fresh(batch("conv")[0])
    for a, b in zip(_params(untouched), _params(fresh)):
        np.testing.assert_array_equal(a, b)


def test_the_scaler_saved_mid_run_resumes_the_same_trajectory(tmp_path):
    """save_states after real float16 overflows: a new network and trainer that load it
    continue the uninterrupted run's scale trajectory and parameters exactly."""
    net_full, _, log_full = _conv_run(0, 10)
    net_head, trainer_head, log_head = _conv_run(0, 5)
    assert any(skipped for skipped, _ in log_head)  # overflows before the checkpoint
    net_head.save_parameters(str(tmp_path / "net.params"))
    amp.save_states(trainer_head, tmp_path / "trainer.states")

    def resume(net, trainer):
        net(batch("conv")[0])  # materialise the deferred parameters
        net.load_parameters(str(tmp_path / "net.params"))
        amp.load_states(trainer, tmp_path / "trainer.states")

    net_tail, _, log_tail = _conv_run(5, 10, before_training=resume)
    assert log_head + log_tail == log_full
    for a, b in zip(_params(net_tail), _params(net_full)):
        np.testing.assert_array_equal(a, b)
