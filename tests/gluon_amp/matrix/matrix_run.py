"""Run matrix cells of one precision in this process: ``python matrix_run.py PRECISION CELL_ID...``.

Three phases, because ``amp.init`` is process-global:

1. autocast off: each cell builds its float32 network (and exports it, for ``imports``) and
   records its first outputs: the structure MXNet returns without amp;
2. ``amp.init(PRECISION)`` (float16 is emulated on a CPU when the parent sets
   ``GLUON_AMP_EMULATE_FLOAT16=1``): each cell trains the same network from the same weights
   through gluon_amp, recording the weights and optimizer state at the start of every step;
3. ``amp.reset()``: for every step gluon_amp took, a float32 twin starts from exactly that
   state, takes the same step, and its gradients and update are the reference.

Comparing each step from the same state keeps float32's chaos (Adam's first steps follow the
sign of tiny gradients) out of the comparison, so the tolerances hold for bfloat16 as well.

A cell trains :data:`STEPS` steps of ``window`` backward passes; at step :data:`INJECTED` its
overflow is injected and that step must be skipped, no other. Checks:

- outputs: the structure MXNet returns without amp (container types, keys, nesting, array
  types), float32 leaves of the same shapes, values near float32's;
- the unscaled gradient of every trainable parameter on every context, and every update, against
  the float32 twin's: relative norm error <= 2**-5 and cosine >= 0.99;
- a skipped step leaves every parameter, the optimizer state and its counters bit-identical; a
  step taken leaves the contexts' copies of each weight identical;
- the scaler: which steps it skipped, its scale at each step, its counters.

Printed for the parent (one line each): ``MATRIX {"cell": id, "event": "start"}`` before a cell
runs under amp, then ``"passed"`` (with the worst error seen) or ``"failed"`` (with the error).
"""

from __future__ import annotations

import collections
import json
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

import mxnet as mx
import numpy as np
from matrix_cells import BY_ID, Cell
from mxnet import autograd, gluon
from mxnet.gluon import nn

import gluon_amp as amp

BATCH, IN, HIDDEN, CLASSES, AUX = 16, 8, 16, 3, 4
STEPS, INJECTED = 3, 1
TOLERANCE, MIN_COSINE = 2.0**-5, 0.99
# Scales that overflow only where injected (measured: the scaled gradients stay below 2**14 at
# 2**9) yet keep small gradients out of float16's subnormals.
STATIC_SCALE = 2.0**8
# The dynamic scale grows after every clean step, up to 2**9, and halves on a skip.
DYNAMIC = {"init_scale": 2.0**8, "growth_interval": 1, "max_scale": 2.0**9}
#: The largest finite value of each target dtype: a loss times it overflows in backward.
LARGEST = {"float16": 65504.0, "bfloat16": (2 - 2.0**-7) * 2.0**127}
OPTIMIZERS = {
    "sgd_momentum": ("sgd", {"learning_rate": 0.01, "momentum": 0.9, "wd": 1e-4}),
    "adam": ("adam", {"learning_rate": 0.001}),
    "lamb_mp": ("lamb", {"learning_rate": 0.001, "multi_precision": True}),
}

Pair = collections.namedtuple("Pair", "first second")


class Net(gluon.HybridBlock):
    """FullyConnected (target list), BatchNorm (float16: emulated; bfloat16: float32 params),
    softrelu (conditional float32 list), LayerNorm (float32 list), a residual add (widest type),
    and the cell's output structure.

    Chosen so that rounding is not magnified: softrelu, not relu (a ReLU whose input rounds to
    the other side of 0 drops a sample's whole gradient: 4.7% off on 8 samples in float16), and
    BatchNorm on its running statistics (batch statistics subtract means in backward).
    """

    def __init__(self, output: str, hybrid_only: bool, **kwargs: Any) -> None:
        super().__init__(prefix="matrix_", **kwargs)
        self.output, self.hybrid_only = output, hybrid_only
        with self.name_scope():
            self.body = nn.Dense(HIDDEN, in_units=IN, use_bias=False)
            self.bn = nn.BatchNorm(in_channels=HIDDEN, use_global_stats=True)
            self.act = nn.Activation("softrelu")
            self.norm = nn.LayerNorm(in_channels=HIDDEN)
            self.head = nn.Dense(CLASSES, in_units=HIDDEN)
            if output != "tensor":
                self.aux = nn.Dense(AUX, in_units=HIDDEN)

    def hybrid_forward(self, F, x):
        h = self.act(self.bn(self.body(x)))
        h = self.norm(h) + h
        logits = self.head(h)
        if self.output == "tensor":
            return logits
        aux = self.aux(h)
        if self.output == "tuple":
            return logits, aux
        if self.output == "namedtuple":
            return Pair(logits, aux)
        if self.output == "dict":
            return {"logits": logits, "aux": aux}
        inner = [aux, Pair(aux * 0.5, logits * 2.0)]
        # nested: as deep as the block allows (a hybridized block cannot return a dict)
        return (logits, inner) if self.hybrid_only else (logits, {"aux": inner})


def leaves(value: Any) -> list:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in leaves(item)]
    if isinstance(value, (list, tuple)):
        return [leaf for item in value for leaf in leaves(item)]
    return [value]


def loss_of(out: Any, y: Any) -> Any:
    """Squared error of the first output to targets near 1, plus a smaller one of every other
    output to 1: every output's gradient points the same way across the batch, so gradients
    summed over the batch (biases) do not cancel, and rounding errors are not magnified.

    (With cross-entropy, a bias's gradient sums p - y over the batch, which nearly cancels:
    float16 errors of several % on some seeds, too much for bfloat16 to meet the bounds.)
    """
    first, *rest = leaves(out)
    loss = ((first - y) ** 2).mean(axis=1)
    for leaf in rest:
        loss = loss + 0.1 * ((leaf - 1.0) ** 2).mean(axis=1)
    return loss


def batches(cell: Cell) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """``window`` micro-batches per step; the injected inf sits in the last context's rows."""
    rng = np.random.RandomState(1000 + cell.number)
    data = []
    for _ in range(STEPS):
        micro = []
        for _ in range(cell.window):
            x = rng.uniform(0, 1, (BATCH, IN)).astype(np.float32)  # positive, as pixels
            micro.append((x, 1 + 0.25 * rng.uniform(-1, 1, (BATCH, CLASSES)).astype(np.float32)))
        data.append(micro)
    if cell.overflow == "inf_input":
        data[INJECTED][-1][0][BATCH - 1, 0] = np.inf
    return data


def skipped(cell: Cell, step: int) -> bool:
    return step == INJECTED and cell.overflow != "none"


def loss_factor(cell: Cell, step: int, micro: int) -> float:
    """The last micro-batch of the injected step, at the ``loss`` level: the loss times the
    target dtype's largest value."""
    if cell.overflow == "loss" and skipped(cell, step) and micro == cell.window - 1:
        return LARGEST[cell.precision]
    return 1.0


def set_front(cell: Cell) -> None:
    if cell.front == "numpy":
        mx.npx.set_np()
    else:
        mx.npx.reset_np()


class Model:
    """A cell's network and trainer: float32 from ``weights`` (None: new weights, and the
    exported model for ``imports``), under amp or not, as the process is."""

    def __init__(self, cell: Cell, folder: Path, weights: dict | None) -> None:
        self.cell = cell
        self.ctx = [mx.cpu(i) for i in range(cell.contexts)]
        mx.random.seed(cell.number)  # the same weights whichever cells ran before
        if cell.build == "imports":
            if weights is None:
                net = Net(cell.output, hybrid_only=True)
                net.initialize(mx.init.Xavier(), ctx=self.ctx)
                net.hybridize()
                net(self.array(np.zeros((BATCH, IN), np.float32)).as_in_context(self.ctx[0]))
                net.export(str(folder / "model"))
            files = [str(folder / name) for name in ("model-symbol.json", "model-0000.params")]
            self.net = gluon.SymbolBlock.imports(files[0], ["data"], files[1], ctx=self.ctx)
        else:
            self.net = Net(cell.output, hybrid_only=cell.hybridized)
            self.net.initialize(mx.init.Xavier(), ctx=self.ctx)
            if cell.build == "hybridized":
                self.net.hybridize()
            elif cell.build == "static_alloc":
                self.net.hybridize(static_alloc=True, static_shape=True)
        self.params = self.net.collect_params()
        if weights is not None:
            for name, param in self.params.items():
                # imported parameters are legacy arrays on either front end (MXNet's way)
                legacy = not isinstance(param.data(), mx.np.ndarray)
                param.set_data(mx.nd.array(weights[name]) if legacy else mx.np.array(weights[name]))
        self.trainable = {n: p for n, p in self.params.items() if p.grad_req != "null"}
        if cell.grad_req != "write":
            for param in self.trainable.values():  # imported running statistics stay 'null'
                param.grad_req = "add"
        name, options = OPTIMIZERS[cell.optimizer]
        self.trainer = gluon.Trainer(self.params, name, dict(options), kvstore="device")

    def array(self, value: np.ndarray) -> Any:
        return mx.np.array(value) if self.cell.front == "numpy" else mx.nd.array(value)

    def weights(self) -> dict[str, np.ndarray]:
        return {n: p.data().asnumpy() for n, p in self.params.items()}

    def forward_backward(self, x, y, factor: float, backward) -> list:
        """One micro-batch split over the contexts, the last context's loss times ``factor``;
        ``backward(losses)``; the outputs."""
        xs = gluon.utils.split_and_load(self.array(x), self.ctx, even_split=True)
        ys = gluon.utils.split_and_load(self.array(y), self.ctx, even_split=True)
        with autograd.record():
            outs = [self.net(xi) for xi in xs]
            losses = [loss_of(out, yi) for out, yi in zip(outs, ys)]
            if factor != 1.0:
                losses[-1] = losses[-1] * factor
        backward(losses)
        return outs

    def grads(self) -> dict[str, list[np.ndarray]]:
        return {n: [g.asnumpy() for g in p.list_grad()] for n, p in self.trainable.items()}

    def step(self) -> None:
        # Normalised by the micro-batch: with a batch size that is not a power of two (48),
        # MXNet's own optimizers round rescale_grad=1/(256*48) and 1/48 differently, and an
        # update from scaled gradients could not be compared bit for bit.
        self.trainer.step(BATCH)


# --- checks ----------------------------------------------------------------------------------


def same_structure(got: Any, want: Any, where: str = "output") -> None:
    """``got`` has ``want``'s container types, keys and nesting; its leaves are float32 arrays
    of ``want``'s array type and shape."""
    assert type(got) is type(want), f"{where}: {type(got).__name__}, MXNet returns {type(want)}"
    if isinstance(want, dict):
        assert list(got) == list(want), f"{where}: keys {list(got)}, want {list(want)}"
        for key in want:
            same_structure(got[key], want[key], f"{where}[{key!r}]")
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), f"{where}: {len(got)} items, want {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            same_structure(g, w, f"{where}[{i}]")
    else:
        assert got.dtype == np.float32, f"{where}: dtype {got.dtype}, want float32"
        assert got.shape == want.shape, f"{where}: shape {got.shape}, want {want.shape}"


#: The worst of each measure seen, per cell (``close`` fills WORST[None]).
WORST: dict = {None: {}}


def _measure(name: str, value: float, worse) -> None:
    worst = WORST[None]
    worst[name] = worse(worst.get(name, value), value)


def close(got: dict[str, np.ndarray], want: dict[str, np.ndarray], what: str) -> None:
    """``got`` (name -> array) is float32's ``want`` give or take rounding.

    Together (the gradient of the whole network): relative norm error <= 2**-5 and cosine >=
    0.99. Each array alone: cosine >= 0.99 and norm within 2**-3 of float32's, which a zeroed,
    unaccumulated or mis-scaled array breaks by far. Measured on 90 float16 cells: whole
    gradient at most 0.27% off, an array's norm 0.18%, its cosine >= 0.999996; bfloat16 rounds
    8 times coarser (2**-9 against 2**-12).
    """
    assert got.keys() == want.keys(), f"{what}: {sorted(got)}, want {sorted(want)}"
    for name in want:
        g, w = got[name].astype(np.float64).ravel(), want[name].astype(np.float64).ravel()
        assert np.isfinite(g).all(), f"{what} {name}: not finite"
        norm, norm_got = np.linalg.norm(w), np.linalg.norm(g)
        assert norm > 0, f"{what} {name}: float32's is zero (a test design error)"
        cosine = g @ w / (norm_got * norm + 1e-300)
        ratio = norm_got / norm
        _measure("array cosine", cosine, min)
        _measure("array norm ratio off by", abs(ratio - 1), max)
        assert cosine >= MIN_COSINE and abs(ratio - 1) <= 2.0**-3, (
            f"{what} {name}: cosine {cosine:.4f} (min {MIN_COSINE}), norm {norm_got:.4g} where "
            f"float32's is {norm:.4g} (ratio {ratio:.3g}, want 1 +- 2**-3)"
        )
    g = np.concatenate([got[n].astype(np.float64).ravel() for n in want])
    w = np.concatenate([want[n].astype(np.float64).ravel() for n in want])
    norm = np.linalg.norm(w)
    error = np.linalg.norm(g - w) / norm
    cosine = g @ w / (np.linalg.norm(g) * norm)
    _measure("relative error", error, max)
    _measure("cosine", cosine, min)
    assert error <= TOLERANCE and cosine >= MIN_COSINE, (
        f"{what}: relative error {error:.3g} (max {TOLERANCE:.3g}), cosine {cosine:.4f} "
        f"(min {MIN_COSINE})"
    )


def as_bytes(value: Any) -> list:
    if isinstance(value, (list, tuple)):
        return [leaf for item in value for leaf in as_bytes(item)]
    if isinstance(value, mx.nd.NDArray):
        return [value.asnumpy().tobytes()]
    return [repr(value)]


def snapshot(model: Model) -> dict:
    """Every parameter (all contexts), the optimizer state and its counters, as bytes."""
    mx.nd.waitall()  # see issue "static_alloc BatchNorm statistics": reads can race otherwise
    state = {f"parameter {n}": as_bytes(p.list_data()) for n, p in model.params.items()}
    for i, updater in enumerate(model.trainer._updaters):
        for index, value in sorted(updater.states.items()):
            state[f"optimizer state {index} on context {i}"] = as_bytes(value)
    optimizer = model.trainer._optimizer
    state["optimizer num_update"] = optimizer.num_update
    state["optimizer update counts"] = repr(sorted(optimizer._all_index_update_counts.items()))
    return state


def expected_scales(cell: Cell) -> list[float]:
    """The scale in force at each step, and after the last."""
    scale = STATIC_SCALE if cell.scaler == "static" else DYNAMIC["init_scale"]
    scales = [scale]
    for step in range(STEPS):
        if cell.scaler == "dynamic":
            scale = scale / 2 if skipped(cell, step) else min(scale * 2, DYNAMIC["max_scale"])
        scales.append(scale)
    return scales


# --- phase 1: float32 ----------------------------------------------------------------------


def first_outputs(cell: Cell, folder: Path) -> dict:
    """The new float32 weights and the outputs of the first micro-batch, without amp."""
    set_front(cell)
    model = Model(cell, folder, None)
    weights = model.weights()
    x, y = batches(cell)[0][0]
    return {"weights": weights, "outputs": model.forward_backward(x, y, 1.0, lambda _: None)}


# --- phase 2: gluon_amp --------------------------------------------------------------------


class Taken:
    """One step gluon_amp took: the state it started from, its gradients, its update."""

    def __init__(self, step: int, weights: dict, states: Path | None, scale: float) -> None:
        self.step, self.weights, self.states, self.scale = step, weights, states, scale
        self.grads: dict = {}
        self.after: dict = {}


def train(cell: Cell, folder: Path, start: dict) -> list[Taken]:
    set_front(cell)
    model = Model(cell, folder, start["weights"])
    scaler = amp.StaticLossScaler(STATIC_SCALE)
    if cell.scaler == "dynamic":
        scaler = amp.DynamicLossScaler(**DYNAMIC)
    trainer = amp.init_trainer(model.trainer, scaler)

    def backward(losses):
        with amp.scale_loss(losses, trainer) as scaled:
            autograd.backward(scaled)

    scales, taken = expected_scales(cell), []
    for step, micro in enumerate(batches(cell)):
        assert scaler.scale == scales[step], f"step {step}: scale {scaler.scale}, want {scales}"
        states = None
        if step > 0:  # the optimizer state the twin starts from (MXNet's own format)
            states = folder / f"states-{step}"
            trainer.save_states(str(states))
        record = Taken(step, model.weights(), states, scaler.scale)
        for m, (x, y) in enumerate(micro):
            outs = model.forward_backward(x, y, loss_factor(cell, step, m), backward)
            for i, out in enumerate(outs):
                same_structure(out, start["outputs"][i])
            if step == 0 and m == 0:
                for i, (out, want) in enumerate(zip(outs, start["outputs"])):
                    got = {f"leaf {k}": leaf.asnumpy() for k, leaf in enumerate(leaves(out))}
                    want = {f"leaf {k}": leaf.asnumpy() for k, leaf in enumerate(leaves(want))}
                    close(got, want, f"outputs on cpu({i})")
        record.grads = model.grads()
        before = snapshot(model)
        model.step()
        after = snapshot(model)
        want = skipped(cell, step)
        assert scaler.last_skipped == want, f"step {step}: skipped={scaler.last_skipped}" + (
            " (a real overflow?)" if scaler.last_skipped else ", want a skip"
        )
        if want:
            changed = [key for key in before if before[key] != after[key]]
            assert not changed, f"step {step} was skipped but changed: {changed}"
        else:
            for name, param in model.trainable.items():
                copies = as_bytes(param.list_data())
                assert all(c == copies[0] for c in copies), f"step {step}: {name} differs by ctx"
            record.after = model.weights()
            taken.append(record)
        model.params.zero_grad()
    assert scaler.scale == scales[-1], f"final scale {scaler.scale}, want {scales[-1]}"
    counts = (scaler.num_steps, scaler.num_skipped)
    want_counts = (STEPS, sum(skipped(cell, s) for s in range(STEPS)))
    assert counts == want_counts, f"scaler counted (steps, skipped) {counts}, want {want_counts}"
    return taken


# --- phase 3: the float32 twin of every step taken -----------------------------------------


def compare(cell: Cell, folder: Path, taken: list[Taken]) -> None:
    set_front(cell)
    micro = batches(cell)
    for record in taken:
        twin = Model(cell, folder, record.weights)
        if record.states is not None:
            twin.trainer.load_states(str(record.states))
        for m, (x, y) in enumerate(micro[record.step]):
            twin.forward_backward(x, y, loss_factor(cell, record.step, m), autograd.backward)
        grads = twin.grads()
        for i in range(cell.contexts):
            got = {n: g[i] / record.scale for n, g in record.grads.items()}
            want = {n: g[i] for n, g in grads.items()}
            close(got, want, f"step {record.step} gradients, cpu({i})")
        # The update: float32's optimizer on gluon_amp's own gradients, unscaled, from the same
        # state. The scale is a power of two, so unscaling is exact and so must the update be.
        for name, param in twin.trainable.items():
            for grad, mine in zip(param.list_grad(), record.grads[name]):
                grad[:] = mine / record.scale
        twin.step()
        for name, after in twin.weights().items():
            if name in twin.trainable and not np.array_equal(after, record.after[name]):
                error = np.abs(after - record.after[name]).max()
                raise AssertionError(
                    f"step {record.step}: the update of {name} is not the optimizer's update "
                    f"of the unscaled gradients (off by up to {error:.3g})"
                )


# --- the process ---------------------------------------------------------------------------


def report(cell: Cell, event: str, **extra: Any) -> None:
    print("MATRIX " + json.dumps({"cell": cell.id, "event": event, **extra}), flush=True)


def failure(error: BaseException) -> str:
    where = traceback.extract_tb(error.__traceback__)[-1]
    return f"{type(error).__name__}: {error} (at {Path(where.filename).name}:{where.lineno})"


def attempt(results: dict, cell: Cell, what: str, function, *args) -> None:
    """``results[cell.id] = function(*args)``, or the failure reported."""
    if isinstance(results.get(cell.id), str):
        return
    try:
        results[cell.id] = function(*args)
    except Exception as error:
        results[cell.id] = message = f"{what}: {failure(error)}"
        report(cell, "failed", error=message)


def main(precision: str, ids: list[str]) -> None:
    cells = [BY_ID[i] for i in ids]
    assert all(cell.precision == precision for cell in cells), "one precision per process"
    with tempfile.TemporaryDirectory(prefix="gluon_amp_matrix_") as tmp:
        folders = {cell.id: Path(tmp) / cell.id for cell in cells}
        starts: dict = {}
        for cell in cells:
            report(cell, "build")
            folders[cell.id].mkdir()
            attempt(starts, cell, "float32 network", first_outputs, cell, folders[cell.id])
        mx.npx.reset_np()
        amp.init(precision)
        runs: dict = {}
        for cell in cells:
            report(cell, "start")
            WORST[None] = WORST[cell.id] = {}
            if not isinstance(starts[cell.id], str):
                attempt(runs, cell, "gluon_amp", train, cell, folders[cell.id], starts[cell.id])
        mx.npx.reset_np()
        amp.reset()
        for cell in cells:
            if isinstance(runs.get(cell.id, "failed"), str):
                continue
            report(cell, "check")
            WORST[None] = WORST[cell.id]
            attempt(runs, cell, "against float32", compare, cell, folders[cell.id], runs[cell.id])
            if not isinstance(runs[cell.id], str):
                report(cell, "passed", worst=WORST[cell.id])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
