"""grad_req='add' through autocast's casts, for every way an array reaches a cast.

MXNet's CPU ``amp_cast`` drops accumulation unless float16 is on either side, and
``amp_multicast`` always does: a bfloat16 weight gets a zero gradient, and so does a float32
parameter of a float32-list (LayerNorm) or widest-type (broadcast_mul) operator in a graph, under
either target. The float16 tests route those float32 casts, which behave like bfloat16's and run
on any CPU; since nothing computes in float16 there, their gradients must equal float32's. Arrays
cast imperatively only meet a dropping cast under bfloat16, and so do graphs of the numpy front end
(it casts only to the target dtype): those tests need bfloat16 kernels (``needs_bfloat16``) and
each has a legacy float16 twin feeding the same kind of array to a graph.
"""

import mxnet as mx
import numpy as np
import pytest
from machine import needs_bfloat16
from mxnet import autograd, gluon
from mxnet.gluon import nn

import gluon_amp as amp
from gluon_amp.accumulate import _drops
from gluon_amp.autocast import bfloat16

TWIN = "float16"  # float32 casts in graphs, as under bfloat16, on any CPU
PASSES = 2
IN = 8


class ScaledNorm(gluon.HybridBlock):
    """LayerNorm (float32 list: gamma, beta cast to float32) times a scale (widest-type cast)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.norm = nn.LayerNorm(in_channels=IN)
            self.scale = self.params.get("scale", shape=(1, IN), init=mx.init.Uniform(1.0))

    def hybrid_forward(self, F, x, scale):
        return F.broadcast_mul(self.norm(x), scale)


def scaled_norm():
    net = ScaledNorm()
    net.initialize()
    for param in net.norm.collect_params().values():  # not LayerNorm's ones and zeros
        param.set_data(mx.nd.random.uniform(0.5, 1.5, shape=param.shape))
    return net


def mlp():
    net = nn.HybridSequential()
    net.add(nn.Dense(16, in_units=IN, activation="relu"), nn.Dense(3, in_units=16))
    net.initialize(mx.init.Xavier())
    return net


def inputs(front="legacy"):
    x = mx.nd.random.uniform(-1, 1, shape=(4, IN))
    return x.as_np_ndarray() if front == "numpy" else x


def accumulate(block, args, arrays, passes=PASSES):
    """Gradients of ``arrays`` (name -> array) after ``passes`` backward passes on ``block``."""
    for _ in range(passes):
        with autograd.record():
            out = block(*args)
            loss = (out * out).sum()
        loss.backward()
    return {name: array.grad.asnumpy().copy() for name, array in arrays.items()}


def param_arrays(block):
    return {name: p.data() for name, p in block.collect_params().items()}


def assert_matches(got, reference, exact=True):
    """Every gradient is that of float32: exactly (same casts), or within bfloat16's error."""
    assert got.keys() == reference.keys()
    for name, ref in reference.items():
        assert np.abs(ref).max() > 0, name
        grad = got[name].ravel().astype(np.float64)
        ref = ref.ravel().astype(np.float64)
        if exact:
            np.testing.assert_allclose(grad, ref, rtol=1e-6, atol=1e-6, err_msg=name)
        else:
            error = np.linalg.norm(grad - ref) / np.linalg.norm(ref)
            cosine = grad @ ref / (np.linalg.norm(grad) * np.linalg.norm(ref) + 1e-30)
            assert error <= 2**-5 and cosine >= 0.99, (name, error, cosine)


def float32_reference(net, args):
    """Gradients of ``net``'s parameters accumulated in float32 (``net`` is left as it was)."""
    net.collect_params().setattr("grad_req", "add")
    reference = accumulate(net, args, param_arrays(net))
    net.collect_params().setattr("grad_req", "write")
    return reference


DTYPES = {"float32": np.float32, "float16": np.float16, "bfloat16": bfloat16}


def dropped(cast, source):
    """Whether ``cast`` loses the accumulation of two passes into a ``source`` leaf."""
    x = mx.nd.amp_cast(mx.nd.array([1.0, 2.0, 3.0]), dtype=DTYPES[source])
    x.attach_grad(grad_req="add")
    for _ in range(PASSES):
        with autograd.record():
            y = cast(x)
        y.backward(mx.nd.amp_cast(mx.nd.ones((3,)), dtype=y.dtype))
    grad = mx.nd.amp_cast(x.grad, dtype=np.float32).asnumpy().tolist()
    assert grad in ([0, 0, 0], [PASSES] * 3), grad
    return grad == [0, 0, 0]


@pytest.mark.parametrize(
    "source, target",
    [
        ("float32", "float32"),
        ("float32", "float16"),
        ("float16", "float32"),
        ("float32", "bfloat16"),
        ("bfloat16", "float32"),
    ],
)
def test_the_casts_routed_are_the_ones_mxnet_drops_accumulation_in(source, target):
    """The premise, measured: a cast drops it unless float16 is on either side (any CPU)."""
    cast = lambda x: mx.nd.amp_cast(x, dtype=DTYPES[target])  # noqa: E731
    assert dropped(cast, source) == _drops(DTYPES[source], DTYPES[target])


def test_amp_multicast_drops_accumulation():
    assert dropped(lambda x: mx.nd.amp_multicast(x, mx.nd.ones((3,)), num_outputs=2)[0], "float32")


def export(net, x, path):
    net.hybridize()
    net(x)
    net.export(str(path / "model"))
    return str(path / "model-symbol.json"), str(path / "model-0000.params")


@pytest.mark.parametrize("hybridize", [False, True])
@pytest.mark.parametrize("when", ["before_first_call", "after_first_call"])
def test_an_imported_model_accumulates(tmp_path, hybridize, when):
    net = scaled_norm()
    x = inputs()
    reference = float32_reference(net, [x])
    files = export(net, x, tmp_path)
    amp.init(TWIN)
    block = gluon.SymbolBlock.imports(files[0], ["data"], files[1])
    if hybridize:
        block.hybridize()
    if when == "after_first_call":
        accumulate(block, [x], param_arrays(block), passes=1)  # graph built for 'write'
    block.collect_params().setattr("grad_req", "add")
    block.collect_params().zero_grad()
    assert_matches(accumulate(block, [x], param_arrays(block)), reference)


def test_a_directly_built_symbolblock_accumulates():
    def build():
        data = mx.sym.var("data")
        gamma, beta, scale = (mx.sym.var(n) for n in ("gamma", "beta", "scale"))
        out = mx.sym.broadcast_mul(mx.sym.LayerNorm(data, gamma, beta), scale)
        block = gluon.SymbolBlock(out, data)
        for name, param in block.collect_params().items():
            param.shape = (1, IN) if name == "scale" else (IN,)
        return block

    x = inputs()
    net = build()  # float32, before amp.init
    net.initialize(mx.init.Uniform(1.0))
    reference = float32_reference(net, [x])
    amp.init(TWIN)
    block = build()  # its symbols made through autocast's casts
    block.initialize()
    for name, param in block.collect_params().items():
        param.set_data(net.collect_params()[name].data())
    block.collect_params().setattr("grad_req", "add")
    assert_matches(accumulate(block, [x], param_arrays(block)), reference)


@pytest.mark.parametrize("hybridize", [False, True])
def test_a_symbolblock_sharing_a_networks_parameters_accumulates(hybridize):
    """Gluon's feature-extractor idiom: a SymbolBlock on the network's graph and parameters."""
    net = scaled_norm()
    x = inputs()
    reference = float32_reference(net, [x])
    amp.init(TWIN)
    if hybridize:
        net.hybridize()
    data = mx.sym.var("data")
    features = gluon.SymbolBlock(net(data), data, params=net.collect_params())
    net.collect_params().setattr("grad_req", "add")  # for fine-tuning, once built
    assert_matches(accumulate(features, [x], param_arrays(net)), reference)


@pytest.mark.filterwarnings("ignore:.*unregistered container with Blocks")
def test_a_hybridized_block_its_caller_does_not_register_accumulates():
    class Caller(gluon.Block):
        def __init__(self, inner):
            super().__init__()
            self.parts = [inner]  # a plain list: Gluon does not register it

        def forward(self, x):
            return self.parts[0](x)

    net = scaled_norm()
    x = inputs()
    reference = float32_reference(net, [x])
    amp.init(TWIN)
    net.hybridize()
    net.collect_params().setattr("grad_req", "add")
    caller = Caller(net)
    assert not caller.collect_params().keys()
    assert_matches(accumulate(caller, [x], param_arrays(net)), reference)


def free_arrays(kind, values):
    """Accumulating arrays no Block registers: free Parameters' data, or attach_grad arrays."""
    arrays = {}
    for name, value in values.items():
        if kind == "parameter":
            param = gluon.Parameter(name, shape=value.shape, grad_req="add")
            param.initialize(mx.init.Constant(0))
            param.set_data(value)
            arrays[name] = param.data()
        else:
            array = value.copy()
            array.attach_grad(grad_req="add")
            arrays[name] = array
    return arrays


class Norm(gluon.HybridBlock):
    """LayerNorm whose gamma and beta are inputs: their float32 casts are in the graph."""

    def hybrid_forward(self, F, x, gamma, beta):
        return F.LayerNorm(x, gamma, beta)


@pytest.mark.parametrize("kind", ["parameter", "attach_grad"])
@pytest.mark.parametrize("when", ["before_init", "after_init"])
def test_free_arrays_fed_to_a_hybridized_block_accumulate(kind, when):
    x = inputs()
    values = {n: mx.nd.random.uniform(0.5, 1.5, shape=(IN,)) for n in ("gamma", "beta")}
    block = Norm()
    block.hybridize()
    ref_arrays = free_arrays(kind, values)
    reference = accumulate(block, [x, *ref_arrays.values()], ref_arrays)
    if when == "before_init":
        arrays = free_arrays(kind, values)
        amp.init(TWIN)
    else:
        amp.init(TWIN)
        arrays = free_arrays(kind, values)
    block = Norm()
    block.hybridize()
    assert_matches(accumulate(block, [x, *arrays.values()], arrays), reference)


@needs_bfloat16
@pytest.mark.parametrize("front", ["legacy", "numpy"])
@pytest.mark.parametrize("kind", ["parameter", "attach_grad"])
def test_free_arrays_used_imperatively_accumulate_under_bfloat16(front, kind):
    """A free weight cast to bfloat16 by an imperative FullyConnected: the bfloat16 original."""

    class Linear(gluon.Block):
        def __init__(self, weight):
            super().__init__()
            self.weight = weight  # an array, not a registered Parameter

        def forward(self, x):
            if front == "numpy":
                return mx.npx.fully_connected(x, self.weight, num_hidden=3, no_bias=True)
            return mx.nd.FullyConnected(x, self.weight, num_hidden=3, no_bias=True)

    if front == "numpy":
        mx.npx.set_np()
    x = inputs(front)
    values = {"weight": inputs(front)[:3]}
    ref_arrays = free_arrays(kind, values)
    reference = accumulate(Linear(ref_arrays["weight"]), [x], ref_arrays)
    arrays = free_arrays(kind, values)  # a free Parameter is initialized before amp.init
    amp.init("bfloat16")
    assert_matches(accumulate(Linear(arrays["weight"]), [x], arrays), reference, exact=False)


@needs_bfloat16
@pytest.mark.parametrize("front", ["legacy", "numpy"])
def test_an_imported_model_accumulates_under_bfloat16(tmp_path, front):
    """The reported bug: every weight and bias of an imported model had a zero gradient."""
    if front == "numpy":
        mx.npx.set_np()  # MXNet loads numpy-mode parameters only in numpy mode
    net = mlp()
    x = inputs(front)
    reference = float32_reference(net, [x])
    files = export(net, x, tmp_path)
    amp.init("bfloat16")
    block = gluon.SymbolBlock.imports(files[0], ["data"], files[1])
    block.collect_params().setattr("grad_req", "add")
    assert_matches(accumulate(block, [x], param_arrays(block)), reference, exact=False)


@pytest.mark.parametrize("front", ["legacy", "numpy"])
@pytest.mark.parametrize("hybridize", [False, True])
def test_an_imported_model_accumulates_under_emulated_float16(tmp_path, front, hybridize):
    """The imported graph rebuilt for a CPU (emulate.graph_for_cpu) is routed like any other."""
    if front == "numpy":
        mx.npx.set_np()
    net = mlp()
    x = inputs(front)
    reference = float32_reference(net, [x])
    files = export(net, x, tmp_path)
    amp.init("float16", emulate=True)
    block = gluon.SymbolBlock.imports(files[0], ["data"], files[1])
    if hybridize:
        block.hybridize()
    block.collect_params().setattr("grad_req", "add")
    assert_matches(accumulate(block, [x], param_arrays(block)), reference, exact=False)


def test_an_imported_batchnorm_fine_tunes_with_add_on_its_trainable_parameters(tmp_path):
    """What the README tells users: setattr('grad_req', 'add') on every imported parameter also
    turns BatchNorm's running statistics to 'add' (MXNet's SymbolBlock), and the step after
    backward raises Gluon's stale-gradient error; the trainable parameters alone train."""
    net = nn.HybridSequential(prefix="net_")  # parameter names independent of other tests
    with net.name_scope():
        net.add(nn.Dense(16, in_units=IN), nn.BatchNorm(in_channels=16), nn.Dense(3, in_units=16))
    net.initialize(mx.init.Xavier())
    x = inputs()
    files = export(net, x, tmp_path)
    amp.init("float16", emulate=True)
    for everything in (True, False):
        block = gluon.SymbolBlock.imports(files[0], ["data"], files[1])
        if everything:
            block.collect_params().setattr("grad_req", "add")
        else:
            for param in block.collect_params().values():
                if param.grad_req != "null":  # not BatchNorm's running statistics
                    param.grad_req = "add"
        trainer = amp.init_trainer(
            gluon.Trainer(block.collect_params(), "sgd", {"learning_rate": 0.1})
        )
        before = {name: p.data().asnumpy() for name, p in block.collect_params().items()}
        accumulate(block, [x], {})
        if everything:
            with pytest.raises(
                UserWarning, match="net_batchnorm0_running_mean.*has not been updated"
            ):
                trainer.step(2 * len(x))
            continue
        trainer.step(2 * len(x))
        after = {name: p.data().asnumpy() for name, p in block.collect_params().items()}
        changed = {name for name in before if not np.array_equal(before[name], after[name])}
        statistics = {"net_batchnorm0_running_mean", "net_batchnorm0_running_var"}
        assert set(before) - statistics <= changed  # every weight, bias, gamma and beta trained
        assert {block.collect_params()[name].grad_req for name in statistics} == {"null"}


def test_fine_tuning_an_imported_model_with_gradient_accumulation_trains_as_float32(tmp_path):
    """Two micro-batches per step through amp.scale_loss and a dynamic scaler, three steps."""
    net = scaled_norm()
    batches = [inputs() for _ in range(6)]
    files = export(net, batches[0], tmp_path)
    results = []
    for use_amp in (False, True):
        if use_amp:
            amp.init(TWIN)
        block = gluon.SymbolBlock.imports(files[0], ["data"], files[1])
        block.collect_params().setattr("grad_req", "add")
        trainer = gluon.Trainer(block.collect_params(), "sgd", {"learning_rate": 0.1})
        if use_amp:
            trainer = amp.init_trainer(trainer, amp.DynamicLossScaler())
        for step in range(3):
            for x in batches[2 * step : 2 * step + 2]:
                with autograd.record():
                    out = block(x)
                    loss = (out * out).mean()
                if use_amp:
                    with amp.scale_loss(loss, trainer) as scaled:
                        scaled.backward()
                else:
                    loss.backward()
            trainer.step(2)
            block.collect_params().zero_grad()
        results.append({k: p.data().asnumpy() for k, p in block.collect_params().items()})
    assert amp.loss_scaler(trainer).num_skipped == 0
    original = param_arrays(net)
    for name, trained in results[1].items():
        assert np.abs(trained - original[name].asnumpy()).max() > 1e-3, name  # it trained
        np.testing.assert_allclose(trained, results[0][name], rtol=1e-5, atol=1e-6, err_msg=name)
