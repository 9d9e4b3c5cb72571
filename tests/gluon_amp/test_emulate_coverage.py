"""float16 emulation covers every operator Gluon's layers and the model zoo run in float16.

The operators come from the graphs themselves: every layer of ``gluon.nn``, ``gluon.rnn`` and
``gluon.contrib.nn`` (fed float16, as inside a float16 network) and one network of each model zoo
family are built under ``amp.init('float16')``, which casts by MXNet's own float16 lists; every
operator that receives a float16 input there is one a GPU runs in float16. Each one runs here on a
CPU, forward and backward, with the dtypes that graph gives it:

- without emulation, in a subprocess (a missing kernel may crash the process): those that fail are
  exactly the operators ``emulate.py`` emulates, save those emulated by choice;
- with emulation, imperative and symbolic: it runs, and matches float32.
"""

from __future__ import annotations

import functools
import inspect
import json
import subprocess
import sys
from collections import defaultdict

import mxnet as mx
import numpy as np
import pytest
from layer_zoo import (
    LAYERS,
    MODEL_FAMILIES,
    MODULES,
    NOT_LAYERS,
    OpInstance,
    family_of,
    model,
    model_zoo_names,
    op_instances,
)
from mxnet import autograd, gluon
from mxnet.contrib.amp import amp as contrib_amp

import gluon_amp as amp
from gluon_amp import emulate

#: Layers whose input is integer indices, not activations: fed as they are, not as float16.
TAKES_INDICES = {"Embedding"}
#: Instances run per operator: the smallest inputs of distinct attributes.
PER_OP = 3
#: Operators drawing random numbers: their float16 and float32 runs draw different masks, so
#: only finiteness is compared.
RANDOM = {"Dropout"}


class _Float16Input(gluon.HybridBlock):
    """``block`` fed float16, as inside a float16 network (a Cast the graph can see)."""

    def __init__(self, block: gluon.Block) -> None:
        super().__init__()
        self.block = block

    def hybrid_forward(self, F, x):
        return self.block(x.astype("float16"))


@functools.lru_cache(maxsize=1)
def instances() -> dict[str, list]:
    """Operator name -> its float16 instances in the layers' and the zoo's autocast graphs."""
    amp.reset()
    amp.init("float16")
    try:
        found = []
        for name, (make, shape) in LAYERS.items():
            block = make() if name in TAKES_INDICES else _Float16Input(make())
            found += op_instances(name, _graph(block), shape)
        for name in sorted(set(MODEL_FAMILIES.values())):
            net, shape = model(name)
            found += op_instances(name, _graph(net), shape)
    finally:
        amp.reset()
    by_op = defaultdict(dict)
    for item in sorted(found, key=lambda i: sum(int(np.prod(s)) for s in i.shapes)):
        if "float16" in item.dtypes:
            by_op[item.op].setdefault(json.dumps(item.attrs, sort_keys=True), item)
    return {op: list(kinds.values())[:PER_OP] for op, kinds in sorted(by_op.items())}


def _graph(block: gluon.Block) -> mx.sym.Symbol:
    out = block(mx.sym.var("data"))
    return mx.sym.Group(list(out)) if isinstance(out, (list, tuple)) else out


def _listed(op: str) -> bool:
    """Whether MXNet's float16 lists name ``op`` (in any list but the float32 one)."""
    lists = (
        contrib_amp.list_lp16_ops(np.float16),
        contrib_amp.list_lp16_fp32_ops(np.float16),
        contrib_amp.list_widest_type_cast(np.float16),
        [name for name, _, _ in contrib_amp.list_conditional_fp32_ops(np.float16)],
    )
    return any(op in names for names in lists)


OPS = sorted(instances())


def test_every_layer_class_and_model_family_is_covered():
    classes = {
        name
        for module in MODULES
        for name, value in vars(module).items()
        if inspect.isclass(value) and issubclass(value, gluon.Block)
    }
    assert classes == set(LAYERS) | set(NOT_LAYERS)
    assert [name for name in model_zoo_names() if family_of(name) is None] == []
    assert {"Convolution", "FullyConnected", "RNN", "Deconvolution", "BatchNorm"} <= set(OPS)
    # Generated from MXNet's lists: all but the few ops MXNet's lists miss are listed there.
    assert [op for op in OPS if not _listed(op)] == ["_contrib_BatchNormWithReLU"]


def _function(front, op: str):
    submodules = {p: getattr(front, p[1:-1]) for p in mx.base._OP_NAME_PREFIX_LIST}
    name, module = contrib_amp._get_fun_to_wrap(op, front, submodules)
    return getattr(module, name)


def _inputs(item, dtypes) -> list[mx.nd.NDArray]:
    """Values in [-0.5, 0.5] (auxiliary states, running variances among them, in [0.5, 1])."""
    rng = np.random.RandomState(0)
    return [
        mx.nd.array(
            rng.uniform(0.5, 1.0, shape) if aux else rng.uniform(-0.5, 0.5, shape), dtype=dtype
        )
        for shape, dtype, aux in zip(item.shapes, dtypes, item.aux)
    ]


def _heads(outputs: list) -> list[mx.nd.NDArray]:
    rng = np.random.RandomState(1)
    return [mx.nd.array(rng.standard_normal(o.shape), dtype=o.dtype) for o in outputs]


def _run_nd(item, inputs) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Forward and backward through ``mx.nd.<op>`` (autocast's wrapper when amp is on)."""
    for x, is_aux in zip(inputs, item.aux):
        if not is_aux:
            x.attach_grad()
    mx.random.seed(0)
    with autograd.record():
        out = _function(mx.nd, item.op)(*inputs, **item.attrs)
    outputs = list(out) if isinstance(out, (list, tuple)) else [out]
    autograd.backward(outputs, _heads(outputs))
    grads = [x.grad for x, is_aux in zip(inputs, item.aux) if not is_aux]
    return _numpy(outputs), _numpy(grads)


def _run_sym(item, inputs) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The same through ``mx.sym.<op>`` in an executor: a graph that runs on a CPU."""
    names = [f"in{i}" for i in range(len(inputs))]
    variables = [mx.sym.var(n, dtype=x.dtype) for n, x in zip(names, inputs)]
    out = _function(mx.sym, item.op)(*variables, **item.attrs)
    args = {n: x for n, x, a in zip(names, inputs, item.aux) if not a}
    aux = {n: x for n, x, a in zip(names, inputs, item.aux) if a}
    grads = {n: mx.nd.zeros_like(x) for n, x in args.items()}
    executor = out.bind(mx.cpu(), args, args_grad=grads, aux_states=aux)
    mx.random.seed(0)
    outputs = executor.forward(is_train=True)
    executor.backward(_heads(outputs))
    order = [n for n in out.list_arguments() if n in grads]
    return _numpy(outputs), _numpy([grads[n] for n in sorted(order, key=names.index)])


def _numpy(arrays) -> list[np.ndarray]:
    return [a.asnumpy().astype(np.float64) for a in arrays]


def _relative_error(a: np.ndarray, b: np.ndarray) -> float:
    scale = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / scale) if scale > 0 else float(np.abs(a).max())


def _assert_close(got: list, reference: list, what: str, random: bool) -> None:
    assert [a.shape for a in got] == [b.shape for b in reference], what
    for i, (a, b) in enumerate(zip(got, reference)):
        assert np.isfinite(a).all(), f"{what} {i}: not finite"
        if not random:
            assert _relative_error(a, b) < 2e-2, f"{what} {i}: {_relative_error(a, b):.3g}"


@pytest.mark.parametrize("op", OPS)
def test_the_operator_runs_in_float16_on_cpu_and_matches_float32(op):
    for item in instances()[op]:
        reference = _run_nd(item, _inputs(item, [np.float32] * len(item.shapes)))
        amp.init("float16", emulate=True)
        try:
            runs = {"imperative": _run_nd(item, _inputs(item, item.given))}
            if mx.context.num_gpus() == 0:  # graphs built outside a Block call run on a GPU there
                runs["graph"] = _run_sym(item, _inputs(item, item.given))
        finally:
            amp.reset()
        for how, (outputs, grads) in runs.items():
            where = f"{item.op} from {item.source} {item.dtypes} {how}"
            _assert_close(outputs, reference[0], f"{where} output", op in RANDOM)
            _assert_close(grads, reference[1], f"{where} gradient", op in RANDOM)


_PROBE = """
import json, sys
import mxnet as mx, numpy as np
from mxnet import autograd
from mxnet.contrib.amp import amp as contrib_amp
for line in sys.stdin:
    item = json.loads(line)
    print(json.dumps({"start": item["op"]}), flush=True)
    submodules = {p: getattr(mx.nd, p[1:-1]) for p in mx.base._OP_NAME_PREFIX_LIST}
    name, module = contrib_amp._get_fun_to_wrap(item["op"], mx.nd, submodules)
    inputs = [mx.nd.ones(s, dtype=d) for s, d in zip(item["shapes"], item["dtypes"])]
    for x, is_aux in zip(inputs, item["aux"]):
        if not is_aux:
            x.attach_grad()
    try:
        with autograd.record():
            out = getattr(module, name)(*inputs, **item["attrs"])
        outputs = list(out) if isinstance(out, (list, tuple)) else [out]
        autograd.backward(outputs, [mx.nd.ones_like(o) for o in outputs])
        mx.nd.waitall()
        error = None
    except mx.base.MXNetError as e:
        error = str(e).strip().splitlines()[-1]
        try:
            mx.nd.waitall()
        except mx.base.MXNetError:
            pass
    print(json.dumps({"op": item["op"], "error": error}), flush=True)
"""


def test_exactly_the_operators_without_a_cpu_float16_kernel_are_emulated():
    """MXNet itself is the judge: each instance runs in float16 without amp, in a subprocess."""
    items = [item for op in OPS for item in instances()[op]]
    lines = "".join(
        json.dumps({"op": i.op, "attrs": i.attrs, "shapes": i.shapes, "dtypes": i.dtypes,
                    "aux": i.aux}) + "\n"
        for i in items
    )  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", _PROBE], input=lines, capture_output=True, text=True, timeout=600
    )
    reports = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    finished = [r for r in reports if "error" in r]
    started = [r["start"] for r in reports if "start" in r]
    assert len(finished) == len(items), (
        f"MXNet crashed running {started[-1]} in float16 on CPU: {result.stderr[-2000:]}"
    )
    failing = {r["op"] for r in finished if r["error"] is not None}
    emulated = emulate.emulated_ops()
    assert failing <= emulated, {r["op"]: r["error"] for r in finished if r["op"] in failing}
    seen_emulated = emulated & set(OPS)
    assert seen_emulated - failing == set(emulate.AS_ON_A_GPU)
    assert failing >= {"FullyConnected", "Convolution", "Deconvolution", "RNN"}


#: Layers that draw random numbers: only finiteness is compared.
RANDOM_LAYERS = {"Dropout", "DropoutCell", "ZoneoutCell"}


class _Fed(gluon.HybridBlock):
    """``block`` fed its input rounded to float16: cast to float16 (inside a float16 network) or
    kept float32 (the reference)."""

    def __init__(self, block: gluon.Block, dtype: str) -> None:
        super().__init__()
        self.block = block
        self.dtype = dtype

    def hybrid_forward(self, F, x):
        return self.block(x.astype(self.dtype))


def _train_once(block, x, head) -> tuple[np.ndarray, list[np.ndarray]]:
    if x.dtype == np.float32:  # not integer indices
        x = x.copy()
        x.attach_grad()  # layers without parameters have only their input to differentiate
    with autograd.record():
        out = block(x)
        out = out[0] if isinstance(out, (list, tuple)) else out
    out.backward(head)
    grads = [p.grad().asnumpy() for p in block.collect_params().values() if p.grad_req != "null"]
    return out.asnumpy(), grads


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_gluon_layer_runs_in_float16_on_cpu_both_front_ends(name):
    """Forward and backward, imperative and hybridized, legacy and numpy front end: emulated
    float16 against float32 on the same float16-rounded input and the same parameters."""
    make, shape = LAYERS[name]
    ran = []
    for front in ("legacy", "numpy"):
        for hybridize in (False, True):
            if front == "numpy":
                mx.npx.set_np()
            try:
                ran += _compare_layer(name, make, shape, hybridize)
            finally:
                amp.reset()
                mx.npx.reset_np()
    assert ("legacy", False) in ran and ("legacy", True) in ran


def _compare_layer(name, make, shape, hybridize) -> list:
    front = "numpy" if mx.util.is_np_array() else "legacy"
    array = mx.np.array if front == "numpy" else mx.nd.array
    rng = np.random.RandomState(0)
    if name in TAKES_INDICES:
        x = array(rng.randint(0, 10, shape), dtype=np.int32)
    else:
        x = array(rng.uniform(-1, 1, shape).astype(np.float16), dtype=np.float32)
    mx.random.seed(0)
    block = make()
    fed = {d: _Fed(block, d) for d in ("float32", "float16")}
    try:
        block.initialize(mx.init.Xavier())
        if hybridize:
            fed["float32"].hybridize()
        out = fed["float32"](x)
    except (mx.base.MXNetError, TypeError, ValueError, AttributeError):
        if front == "numpy":  # MXNet 1.9.1 cannot run this layer in numpy mode at all
            return []
        raise
    out = out[0] if isinstance(out, (list, tuple)) else out
    head = array(rng.standard_normal(out.shape), dtype=np.float32)
    reference = _train_once(fed["float32"], x, head)
    amp.init("float16", emulate=True)
    # The numpy front end returns float32 from every autocast operator (np_ops.py): no layer
    # gets float16 from the one before it there.
    low = fed["float32"] if name in TAKES_INDICES or front == "numpy" else fed["float16"]
    if hybridize:
        low.hybridize()
    got = _train_once(low, x, head)
    where = f"{name} ({front}, hybridize={hybridize})"
    _assert_close([got[0]], [reference[0]], f"{where} output", name in RANDOM_LAYERS)
    _assert_close(got[1], reference[1], f"{where} gradient", name in RANDOM_LAYERS)
    return [(front, hybridize)]


#: Inputs for MXNet's widest-type GEMMs, which no Gluon layer emits (user code and GluonNLP do):
#: shapes and attributes of one call each.
WIDEST_GEMM_CALLS = {
    "dot": ([(3, 8), (8, 5)], {}),
    "batch_dot": ([(2, 3, 8), (2, 8, 5)], {}),
    "_contrib_interleaved_matmul_selfatt_qk": ([(4, 2, 3 * 2 * 8)], {"heads": 2}),
    "_contrib_interleaved_matmul_selfatt_valatt": ([(4, 2, 3 * 2 * 8), (4, 4, 4)], {"heads": 2}),
    "_contrib_interleaved_matmul_encdec_qk": ([(4, 2, 2 * 8), (5, 2, 2 * 2 * 8)], {"heads": 2}),
    "_contrib_interleaved_matmul_encdec_valatt": (
        [(5, 2, 2 * 2 * 8), (4, 4, 5)],
        {"heads": 2},
    ),
}


def test_the_widest_type_gemms_are_those_of_mxnets_list():
    widest = set(contrib_amp.list_widest_type_cast(np.float16))
    assert set(emulate.WIDEST_TYPE_GEMMS) <= widest
    assert set(WIDEST_GEMM_CALLS) == set(emulate.WIDEST_TYPE_GEMMS)


@pytest.mark.parametrize("op", sorted(WIDEST_GEMM_CALLS))
def test_the_widest_type_gemm_runs_in_float16_on_cpu_and_matches_float32(op):
    shapes, attrs = WIDEST_GEMM_CALLS[op]
    item = OpInstance(
        "call", op, attrs, tuple(shapes), ("float16",) * len(shapes),
        ("float16",) * len(shapes), (False,) * len(shapes),
    )  # fmt: skip
    reference = _run_nd(item, _inputs(item, [np.float32] * len(shapes)))
    amp.init("float16", emulate=True)
    try:
        runs = {"imperative": _run_nd(item, _inputs(item, item.given))}
        if mx.context.num_gpus() == 0:
            runs["graph"] = _run_sym(item, _inputs(item, item.given))
    finally:
        amp.reset()
    for how, (outputs, grads) in runs.items():
        _assert_close(outputs, reference[0], f"{op} {how} output", False)
        _assert_close(grads, reference[1], f"{op} {how} gradient", False)
