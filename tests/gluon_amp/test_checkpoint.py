"""save_states / load_states: optimizer and scaler together, atomic, bit-exact resume, a format
whose loading runs no code, and files that are left as the user expects."""

import contextlib
import copy
import json
import math
import os
import pickle
import stat
import struct
import sys
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon
from mxnet.gluon import nn

import gluon_amp as amp

LOSS = gluon.loss.L2Loss()
MAGIC = b"gluon_amp states\n"  # the documented layout: magic, 8-byte header length, JSON, arrays


class Affine(gluon.HybridBlock):
    """float16 weights on elementwise operators (CPU has no float16 GEMM): master weights."""

    def __init__(self):
        super().__init__()
        self.weight = self.params.get("weight", shape=(1, 4), dtype="float16")

    def hybrid_forward(self, F, x, weight):
        return F.slice_axis(F.broadcast_mul(x, weight), axis=1, begin=0, end=2).astype("float32")


def setup(optimizer="adam", options=None, params_file=None, ctx=None, kind="dense"):
    mx.random.seed(3)
    options = copy.deepcopy(options)  # a scheduler of its own, as each run of a script has
    net = Affine() if kind == "float16" else nn.Dense(2, in_units=4)
    net.initialize(mx.init.Xavier(), ctx=ctx)
    if params_file:
        net.load_parameters(str(params_file), ctx=ctx)
    trainer = amp.init_trainer(
        gluon.Trainer(net.collect_params(), optimizer, {"learning_rate": 0.01, **(options or {})}),
        amp.DynamicLossScaler(init_scale=64.0, growth_interval=2, hysteresis=2),
    )
    return net, trainer


def steps(net, trainer, start, stop, poisoned=(2, 4, 5)):
    """Train steps ``start`` to ``stop``; the ``poisoned`` ones get a NaN gradient (skipped)."""
    rng = np.random.RandomState(7)
    data = [(rng.uniform(size=(4, 4)), rng.uniform(size=(4, 2))) for _ in range(stop)]
    ctx = trainer._contexts
    trajectory = []
    for step in range(start, stop):
        x, y = mx.nd.array(data[step][0], dtype=net.weight.dtype), mx.nd.array(data[step][1])
        with autograd.record():
            losses = [LOSS(net(xs), ys) for xs, ys in zip(*(split(a, ctx) for a in (x, y)))]
        with amp.scale_loss(losses, trainer) as scaled:
            autograd.backward(scaled)
        if step in poisoned:
            net.weight.grad(ctx[0])[0, 0] = np.nan
        trainer.step(4)
        scaler = amp.loss_scaler(trainer)
        trajectory.append((scaler.scale, scaler.last_skipped))
    return trajectory


def split(array, ctx):
    return gluon.utils.split_and_load(array, ctx, even_split=False)


def weights(net):
    return [p.data(c).asnumpy() for p in net.collect_params().values() for c in p.list_ctx()]


def updater_states(trainer):
    """Every optimizer-state array of every context, in a fixed order."""
    found = []

    def walk(state):
        if isinstance(state, mx.nd.NDArray):
            found.append(state.asnumpy())
        elif isinstance(state, (tuple, list)):
            for item in state:
                walk(item)

    for updater in trainer._updaters:
        for key in sorted(updater.states):
            walk(updater.states[key])
    return found


def resume(tmp_path, optimizer="adam", options=None, ctx=None, kind="dense", save=None):
    """The same 8 steps straight and as 4 + save + load into a new trainer + 4; both ends."""
    net, trainer = setup(optimizer, options, ctx=ctx, kind=kind)
    full = steps(net, trainer, 0, 8)
    net2, trainer2 = setup(optimizer, options, ctx=ctx, kind=kind)
    head = steps(net2, trainer2, 0, 4)
    net2.save_parameters(str(tmp_path / "net.params"))
    (save or amp.save_states)(trainer2, tmp_path / "trainer.states")
    net3, trainer3 = setup(optimizer, options, tmp_path / "net.params", ctx=ctx, kind=kind)
    return (net, trainer, full), (net3, trainer3, head)


def assert_same_run(tmp_path, load=amp.load_states, **case):
    (net, trainer, full), (net3, trainer3, head) = resume(tmp_path, **case)
    load(trainer3, tmp_path / "trainer.states")
    tail = steps(net3, trainer3, 4, 8)
    assert head + tail == full
    assert amp.loss_scaler(trainer3).state_dict() == amp.loss_scaler(trainer).state_dict()
    for mine, reference in zip(weights(net3), weights(net)):
        np.testing.assert_array_equal(mine, reference)
    for mine, reference in zip(updater_states(trainer3), updater_states(trainer)):
        np.testing.assert_array_equal(mine, reference)
    opt, opt3 = trainer._optimizer, trainer3._optimizer
    assert (opt3.num_update, opt3._index_update_count) == (opt.num_update, opt._index_update_count)
    assert len(updater_states(trainer3)) == len(updater_states(trainer)) > 0


@pytest.mark.parametrize(
    "optimizer, options",
    [
        ("sgd", {"momentum": 0.9}),
        ("nag", {"momentum": 0.9}),
        ("adam", {}),
        ("adamax", {}),
        ("nadam", {}),
        ("rmsprop", {"centered": True}),
        ("adagrad", {}),
        ("adadelta", {}),
        ("ftml", {}),
        ("ftrl", {}),
        ("lamb", {}),
        ("lars", {"momentum": 0.9}),
        ("lbsgd", {"momentum": 0.9}),
        ("signum", {"momentum": 0.9}),
        ("sgd", {"momentum": 0.9, "lr_scheduler": mx.lr_scheduler.FactorScheduler(2, 0.5)}),
        ("adam", {"lr_scheduler": mx.lr_scheduler.CosineScheduler(8, warmup_steps=2)}),
    ],
)
def test_resume_is_bit_exact(tmp_path, optimizer, options):
    assert_same_run(tmp_path, optimizer=optimizer, options=options)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "lamb"])
def test_resume_is_bit_exact_with_float16_master_weights(tmp_path, optimizer):
    options = {"multi_precision": True, **({"momentum": 0.9} if optimizer == "sgd" else {})}
    assert_same_run(tmp_path, optimizer=optimizer, options=options, kind="float16")


def test_resume_is_bit_exact_on_two_contexts(tmp_path):
    assert_same_run(tmp_path, ctx=[mx.cpu(0), mx.cpu(1)])


@pytest.mark.parametrize(
    "owner, name",
    [
        (mx.nd, "save"),  # writing the arrays
        (json, "dumps"),  # writing the header
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


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_a_new_file_gets_the_mode_trainer_save_states_gives_and_an_old_one_keeps_its_own(
    tmp_path, umask
):
    net, trainer = setup()
    steps(net, trainer, 0, 1)
    old = os.umask(umask)
    try:
        trainer.save_states(str(tmp_path / "gluon.states"))
        amp.save_states(trainer, tmp_path / "amp.states")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "amp.states").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "gluon.states").stat().st_mode) == 0o666 & ~umask
    os.chmod(tmp_path / "amp.states", 0o640)
    amp.save_states(trainer, tmp_path / "amp.states")
    assert stat.S_IMODE((tmp_path / "amp.states").stat().st_mode) == 0o640


def test_loading_writes_nothing_beside_the_checkpoint(tmp_path):
    net, trainer = setup()
    steps(net, trainer, 0, 3)
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    amp.save_states(trainer, folder / "trainer.states")
    os.utime(folder, ns=(0, 0))  # any file created or removed in it would change this
    amp.load_states(setup()[1], folder / "trainer.states")
    assert os.stat(folder).st_mtime_ns == 0
    assert [p.name for p in folder.iterdir()] == ["trainer.states"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_a_checkpoint_in_a_read_only_folder_loads(tmp_path):
    net, trainer = setup()
    steps(net, trainer, 0, 3)
    amp.save_states(trainer, tmp_path / "trainer.states")
    tmp_path.chmod(0o555)
    try:
        fresh = setup()[1]
        amp.load_states(fresh, tmp_path / "trainer.states")
    finally:
        tmp_path.chmod(0o755)
    assert amp.loss_scaler(fresh).state_dict() == amp.loss_scaler(trainer).state_dict()


def test_a_trainer_that_never_stepped_saves_and_loads(tmp_path):
    amp.save_states(setup("sgd", {"momentum": 0.9})[1], tmp_path / "trainer.states")
    net, trainer = setup("sgd", {"momentum": 0.9})
    steps(net, trainer, 0, 2)
    amp.load_states(trainer, tmp_path / "trainer.states")
    assert trainer._optimizer.num_update == 0 and trainer._updaters[0].states == {}
    assert (
        amp.loss_scaler(trainer).state_dict()
        == amp.DynamicLossScaler(init_scale=64.0, growth_interval=2, hysteresis=2).state_dict()
    )


def test_an_unbounded_scaler_is_saved_as_strict_json_and_comes_back(tmp_path):
    net, trainer = setup()
    unbounded = amp.DynamicLossScaler(init_scale=8.0, max_scale=math.inf)
    amp.init_trainer(trainer, unbounded)
    steps(net, trainer, 0, 2)
    amp.save_states(trainer, tmp_path / "trainer.states")
    data = (tmp_path / "trainer.states").read_bytes()
    (size,) = struct.unpack_from("<Q", data, len(MAGIC))

    def not_json(name):
        raise AssertionError(f"{name} is not JSON")  # what Python writes for inf by default

    header = json.loads(data[len(MAGIC) + 8 : len(MAGIC) + 8 + size], parse_constant=not_json)
    assert header["scaler"]["dict"]["max_scale"] == {"float": "inf"}
    fresh = amp.init_trainer(setup()[1], amp.DynamicLossScaler(init_scale=8.0))
    amp.load_states(fresh, tmp_path / "trainer.states")
    assert amp.loss_scaler(fresh).max_scale == math.inf
    assert amp.loss_scaler(fresh).state_dict() == unbounded.state_dict()


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


# ---- damaged files and files that do not fit: one clear error, nothing changed ---------------


def read_file(path):
    data = path.read_bytes()
    (size,) = struct.unpack_from("<Q", data, len(MAGIC))
    start = len(MAGIC) + 8
    return json.loads(data[start : start + size]), data[start + size :]


def write_file(path, header, arrays, text=None):
    text = (text or json.dumps(header)).encode()
    path.write_bytes(MAGIC + struct.pack("<Q", len(text)) + text + arrays)


def without(key):
    return lambda header: {k: v for k, v in header.items() if k != key}


def changed(**entries):
    return lambda header: {**header, **entries}


def scaler_scale(value):
    def change(header):
        scaler = dict(header["scaler"]["dict"], scale=value)
        return {**header, "scaler": {"dict": scaler}}

    return change


@pytest.mark.parametrize(
    "damage, message",
    [
        (without("scaler"), r"damaged gluon_amp states file \(no scaler entry\)"),
        (without("states"), r"damaged gluon_amp states file \(no states entry\)"),
        (changed(states={"set": [1]}), r"damaged .*\(header: unexpected value \{\"set\""),
        (changed(states=[0]), r"damaged .*\(header: unexpected value \[0\]"),
        (changed(states={"ndarray": 99}), r"damaged .*\(header: unexpected value"),
        (changed(num_params="2"), r"damaged .*\(num_params is a str, expected int\)"),
        (changed(arrays_size=5), r"damaged .*bytes of arrays, 5 written"),
        (scaler_scale(-1.0), r"trainer.states: scale must be a finite number > 0"),
        (changed(format="gluon_amp.states/9"), r"format 'gluon_amp.states/9', which this"),
        (changed(num_params=3), "saved from a trainer of 3 parameters and this one has 2"),
        ("arrays", r"damaged .*\(arrays: "),
        ("header", r"damaged .*\(header: "),
        ("short", r"damaged gluon_amp states file \(cut short\)"),
        ("deep", r"damaged .*\(header: maximum recursion depth"),
    ],
)
def test_a_file_that_is_damaged_or_does_not_fit_changes_nothing(tmp_path, damage, message):
    net, trainer = setup()
    steps(net, trainer, 0, 3)
    path = tmp_path / "trainer.states"
    amp.save_states(trainer, path)
    header, arrays = read_file(path)
    if damage == "arrays":
        write_file(path, header, b"\x00\x00" + arrays[2:])  # not nd.save's magic
    elif damage == "header":
        path.write_bytes(path.read_bytes().replace(b'"format"', b"'format'"))
    elif damage == "short":
        path.write_bytes(path.read_bytes()[:20])
    elif damage == "deep":
        nested = (
            json.dumps(without("states")(header))[:-1] + ', "states": ' + "[" * 9999 + "]" * 9999
        )
        write_file(path, None, arrays, text=nested + "}")
    else:
        write_file(path, damage(header), arrays)

    fresh_net, fresh = setup()
    steps(fresh_net, fresh, 0, 2, poisoned=(0,))
    scaler_before = amp.loss_scaler(fresh).state_dict()
    states_before = updater_states(fresh)
    with pytest.raises(ValueError, match=message):
        amp.load_states(fresh, path)
    assert fresh._optimizer.num_update == 1
    assert amp.loss_scaler(fresh).state_dict() == scaler_before
    for now, before in zip(updater_states(fresh), states_before):
        np.testing.assert_array_equal(now, before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trainer.states"]


def test_another_optimizer_or_scheduler_is_refused_with_what_to_do(tmp_path):
    net, trainer = setup("sgd", {"lr_scheduler": mx.lr_scheduler.FactorScheduler(2, 0.5)})
    steps(net, trainer, 0, 3)
    amp.save_states(trainer, tmp_path / "trainer.states")
    with pytest.raises(ValueError, match=r"state of a mxnet.optimizer.optimizer.SGD optimizer "):
        amp.load_states(setup("adam")[1], tmp_path / "trainer.states")
    no_scheduler = setup("sgd")[1]
    with pytest.raises(ValueError, match="FactorScheduler lr_scheduler and this trainer's "):
        amp.load_states(no_scheduler, tmp_path / "trainer.states")
    assert no_scheduler._optimizer.num_update == 0


# ---- safety: loading runs no code ------------------------------------------------------------


@contextlib.contextmanager
def audit(events):
    """Record the audit events named in ``events`` (a dict of lists) while inside."""
    _AUDIT.append(events)
    try:
        yield events
    finally:
        _AUDIT.remove(events)


_AUDIT = []


def _hook(event, args):
    for events in _AUDIT:
        if event in events:
            events[event].append(args)


sys.addaudithook(_hook)


def test_loading_unpickles_nothing(tmp_path):
    net, trainer = setup("sgd", {"momentum": 0.9, "lr_scheduler": mx.lr_scheduler.PolyScheduler(9)})
    steps(net, trainer, 0, 3)
    amp.save_states(trainer, tmp_path / "trainer.states")
    header, _ = read_file(tmp_path / "trainer.states")
    assert header["format"] == "gluon_amp.states/2"
    fresh = setup("sgd", {"momentum": 0.9, "lr_scheduler": mx.lr_scheduler.PolyScheduler(9)})[1]
    with audit({"pickle.find_class": [], "exec": [], "open": []}) as events:
        amp.load_states(fresh, tmp_path / "trainer.states")
    assert events["pickle.find_class"] == [] and events["exec"] == []
    opened = [
        (path, mode, flags)
        for path, mode, flags in events["open"]
        if tmp_path in Path(path).parents
    ]
    assert opened == [(str(tmp_path / "trainer.states"), "r", os.O_RDONLY | os.O_CLOEXEC)]
    assert fresh._optimizer.lr_scheduler.max_update == 9
    assert fresh._optimizer.num_update == trainer._optimizer.num_update == 2


class RunsCode:
    """What an attacker puts in a pickle: unpickling it calls a function of their choosing."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.mkdir, (Path(self.marker),))


def old_format(trainer, optimizer=None):
    """A file in gluon_amp's first format: a pickle holding Gluon's own pickled states."""
    return pickle.dumps(
        {
            "format": "gluon_amp.states/1",
            "optimizer": optimizer or trainer._updaters[0].get_states(dump_optimizer=True),
            "scaler": amp.loss_scaler(trainer).state_dict(),
        }
    )


def test_a_pickle_is_not_loaded_without_allow_pickle(tmp_path):
    trainer = setup()[1]
    marker = tmp_path / "ran"
    path = tmp_path / "trainer.states"
    path.write_bytes(old_format(trainer, pickle.dumps(RunsCode(marker))))
    with pytest.raises(ValueError, match=r"pickle format of older gluon_amp .*allow_pickle=True"):
        amp.load_states(trainer, path)
    assert not marker.exists()
    with pytest.raises(ValueError, match=r"damaged gluon_amp states file \(optimizer: "):
        amp.load_states(trainer, path, allow_pickle=True)  # opted in: it does run
    assert marker.exists()


def test_the_old_pickle_format_resumes_bit_exact_with_allow_pickle(tmp_path):
    def save_old_format(trainer, path):
        path.write_bytes(old_format(trainer))

    with pytest.raises(ValueError, match="allow_pickle=True"):
        assert_same_run(tmp_path, save=save_old_format)
    assert_same_run(
        tmp_path,
        load=lambda trainer, path: amp.load_states(trainer, path, allow_pickle=True),
        save=save_old_format,
    )


def test_an_old_file_missing_an_entry_is_a_clear_error(tmp_path):
    trainer = setup()[1]
    payload = pickle.loads(old_format(trainer))
    del payload["scaler"]
    (tmp_path / "old.states").write_bytes(pickle.dumps(payload))
    with pytest.raises(ValueError, match=r"damaged gluon_amp states file \(no scaler entry\)"):
        amp.load_states(trainer, tmp_path / "old.states", allow_pickle=True)


# ---- what the file cannot hold -----------------------------------------------------------------


class StepCounter(mx.lr_scheduler.LRScheduler):
    """A scheduler of the user's own with state of its own (the calls it has seen)."""

    def __init__(self, fn=None):
        super().__init__(base_lr=0.01)
        self.calls, self.fn = 0, fn

    def __call__(self, num_update):
        self.calls += 1
        return self.base_lr / (1 + 0.1 * self.calls)


def test_a_custom_scheduler_is_recreated_by_the_script_and_gets_its_state(tmp_path):
    assert_same_run(
        tmp_path, optimizer="sgd", options={"momentum": 0.9, "lr_scheduler": StepCounter()}
    )
    wrong = setup("sgd", {"lr_scheduler": mx.lr_scheduler.FactorScheduler(2)})[1]
    with pytest.raises(ValueError, match=r"StepCounter lr_scheduler .* has a mxnet.lr_scheduler"):
        amp.load_states(wrong, tmp_path / "trainer.states")


def test_a_scheduler_holding_code_is_refused_before_writing(tmp_path):
    net, trainer = setup("sgd", {"lr_scheduler": StepCounter(fn=lambda n: n)})
    steps(net, trainer, 0, 1)
    with pytest.raises(ValueError, match=r"cannot store StepCounter.fn, a function: the file"):
        amp.save_states(trainer, tmp_path / "trainer.states")
    assert list(tmp_path.iterdir()) == []


class Remembers(mx.lr_scheduler.LRScheduler):
    """A scheduler keeping arrays and numpy scalars of the numpy front end in its state."""

    def __init__(self):
        super().__init__(base_lr=0.01)
        self.last, self.decay = mx.np.zeros((1,)), np.float32(0.9)

    def __call__(self, num_update):
        self.last = self.last * self.decay + 1
        return self.base_lr / float(self.last[0])


def test_resume_is_bit_exact_on_the_numpy_front_end(tmp_path):
    mx.npx.set_np()
    rng = np.random.RandomState(0)
    data = [mx.np.array(rng.uniform(size=(4, 3)), dtype="float32") for _ in range(6)]

    def make():
        mx.random.seed(1)
        net = nn.Dense(2, in_units=3)
        net.initialize()
        options = {"learning_rate": 0.1, "lr_scheduler": Remembers()}
        return net, amp.init_trainer(gluon.Trainer(net.collect_params(), "adam", options))

    def train(net, trainer, batches):
        for x in batches:
            with autograd.record():
                loss = (net(x) ** 2).sum()
            with amp.scale_loss(loss, trainer) as scaled:
                scaled.backward()
            trainer.step(4)

    net, trainer = make()
    train(net, trainer, data)
    net2, trainer2 = make()
    train(net2, trainer2, data[:3])
    amp.save_states(trainer2, tmp_path / "trainer.states")
    net3, trainer3 = make()
    for mine, saved in zip(net3.collect_params().values(), net2.collect_params().values()):
        mine.set_data(saved.data())  # (load_parameters fails on this front end in MXNet 1.9.1)
    amp.load_states(trainer3, tmp_path / "trainer.states")
    scheduler = trainer3._optimizer.lr_scheduler
    assert isinstance(scheduler.last, mx.np.ndarray) and type(scheduler.decay) is np.float32
    train(net3, trainer3, data[3:])
    for mine, reference in zip(weights(net3), weights(net)):
        np.testing.assert_array_equal(mine, reference)
    assert float(scheduler.last[0]) == float(trainer._optimizer.lr_scheduler.last[0])
