"""A model output computed in float16 reaches a loss, a softmax or a metric without a cast.

Why it matters: softmax and cross-entropy in float16 overflow (`exp` of logits above ~11),
lose the small probabilities that carry the gradient signal, and round the loss itself to 3
significant digits. Mixed precision keeps the model's body in float16 and its output in float32.

Checked: Gluon `net.cast('float16')` whose outputs (`net(x)` or a name bound to it) go
straight to a `gluon.loss` object, an `nd.softmax` or a metric's `update`; Keras: the final
softmax layer (last layer of a `Sequential`, last `model.add`, the `outputs` of a
functional `Model`, or the layer a subclassed `keras.Model`'s `call` returns) under a
`mixed_float16` policy without `dtype='float32'`; PyTorch: outputs of a `.half()` model fed
to a loss, `F.softmax` or `F.cross_entropy` without `.float()`. Not reported: outputs cast by
a helper or fed through another layer first, a model whose own `forward`/`hybrid_forward`
returns its output cast to float32 (when its class is defined in the same file: a class
imported from another file is not read, so silence such a line with
`# amplint: ignore[AMP101]`), a model under `amp.init` or `autocast` (they compute losses in
float32 themselves), a `.half()` model used for a checkpoint.

Example:

    net.cast("float16")
    loss = loss_fn(net(x), y)                       # AMP101

Fix: cast the output first — `loss_fn(net(x).astype('float32'), y)` (PyTorch: `.float()`);
in Keras give the final layer `dtype='float32'`.
"""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from amplint.frameworks import keras, mxnet, torch
from amplint.index import COMP, CallSite, ClassInfo, FileIndex, Scope, dotted, string_value
from amplint.precision import dtype_of, half_for_storage
from amplint.rules.api import Issue, RuleContext


def check(ctx: RuleContext) -> Iterator[Issue]:
    """Outputs of a float16 model fed to a loss, softmax or metric; Keras final softmax
    layers under ``mixed_float16``."""
    yield from _model_outputs(ctx)
    yield from _keras_softmax(ctx)


# ---- Gluon and PyTorch: outputs of a float16 model reaching a loss ---------------------------
def _float16_models(ctx: RuleContext) -> set[str]:
    """Names of models cast to float16 (``net.cast('float16')``, ``model.half()``,
    ``model = Net().half()``)."""
    models = set()
    for signal in ctx.signals:
        if signal.precision != "float16" or not (
            signal.what.startswith("cast(") or signal.what == ".half()"
        ):
            continue
        site = signal.site
        if not ctx.training_precisions_at(site):
            continue
        receiver = dotted(site.receiver) if site.receiver is not None else None
        if receiver is not None:
            models.add(receiver)
    for assign in ctx.index.assigns:
        if _chain_has_half(assign.value, ctx.index):
            models.update(assign.targets)
    return {name for name in models if not _casts_own_output(name, ctx.index)}


_FORWARDS = ("forward", "hybrid_forward", "__call__", "call")


def _casts_own_output(name: str, index: FileIndex) -> bool:
    """Every value bound to ``name`` builds a class of this file whose forward returns its
    output cast to float32 (``return out.astype('float32')``, ``.float()``, ``F.cast``)."""
    values = [a.value for a in index.assigns if name in a.targets]
    if not values:
        return False
    for value in values:
        while isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute):
            value = value.func.value  # Net().cuda().half() -> Net()
        if not isinstance(value, cst.Call):
            return False
        forward = _forward_of(dotted(value.func), index, 0)
        if forward is None or not forward.returns:
            return False
        if not all(_float32_cast(r, forward, index, 0) for r in forward.returns):
            return False
    return True


def _forward_of(class_name: str | None, index: FileIndex, depth: int) -> Scope | None:
    """The forward method of a class defined in the file, inherited from a local base too."""
    info = index.classes.get(class_name or "")
    if info is None or depth > 5:
        return None
    for method in _FORWARDS:
        if method in info.methods:
            return info.methods[method]
    for base in info.bases:
        found = _forward_of(base, index, depth + 1)
        if found is not None:
            return found
    return None


def _float32_cast(expr: cst.BaseExpression, scope: Scope, index: FileIndex, depth: int) -> bool:
    """``x.astype('float32')``, ``x.float()``, ``F.cast(x, 'float32')``, ``x.to(torch.float32)``,
    a tuple of those, or a name whose last assignment in the method is one."""
    if depth > 4:
        return False
    if isinstance(expr, (cst.Tuple, cst.List)):
        return bool(expr.elements) and all(
            _float32_cast(e.value, scope, index, depth + 1) for e in expr.elements
        )
    if isinstance(expr, cst.Name):
        values = scope.assigned.get(expr.value)
        return bool(values) and _float32_cast(values[-1], scope, index, depth + 1)
    if not isinstance(expr, cst.Call) or not isinstance(expr.func, cst.Attribute):
        return False
    method = expr.func.attr.value
    if method == "float" and not expr.args:
        return True
    if method not in ("astype", "cast", "Cast", "to", "type"):
        return False
    for argument in expr.args:
        if argument.keyword is not None and argument.keyword.value != "dtype":
            continue
        name = dotted(argument.value)
        text = string_value(argument.value) or (name.rsplit(".", 1)[-1] if name else None)
        if text in ("float32", "float"):
            return True
    return False


def _chain_has_half(expr: cst.BaseExpression, index: FileIndex) -> bool:
    """``Net().cuda().half()``: a call chain with a float16 ``.half()`` in it."""
    while isinstance(expr, cst.Call):
        site = index.site(expr)
        if site is not None and site.method == "half" and not site.node.args:
            return not half_for_storage(site)
        if not isinstance(expr.func, cst.Attribute):
            return False
        expr = expr.func.value
    return False


def _consumers(ctx: RuleContext) -> Iterator[tuple[CallSite, list[cst.BaseExpression], str]]:
    """Loss, softmax and metric calls with the arguments that receive predictions."""
    index = ctx.index
    for site in index.calls:
        qualname = site.qualname or ""
        if qualname in mxnet.SOFTMAX or qualname in torch.FUNCTIONAL_LOSSES:
            yield site, [a.value for a in site.node.args[:1]], "a softmax or loss"
            continue
        if site.method == "update" and _bound_to(site.receiver, index, site, mxnet.METRIC_PREFIX):
            yield site, [a.value for a in site.node.args[1:2]], "a metric"
            continue
        if site.name is not None and _bound_to(site.node.func, index, site, _LOSS_PREFIXES):
            yield site, [a.value for a in site.node.args[:1]], "a loss"


_LOSS_PREFIXES = mxnet.LOSS_PREFIX + ("torch.nn.",)


def _bound_to(expr, index: FileIndex, site: CallSite, prefixes: tuple[str, ...]) -> bool:
    """``expr`` is a name bound to an object built by a constructor under ``prefixes``
    (``loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()``), or is that construction itself."""
    if expr is None:
        return False
    constructed = index.site(expr)
    candidates = [constructed] if constructed is not None else []
    name = dotted(expr)
    if name is not None:
        candidates += index.bound_calls(name, site.scope)
    for candidate in candidates:
        qualname = candidate.qualname
        if qualname and qualname.startswith(prefixes):
            if qualname.startswith("torch.nn.") and not qualname.endswith("Loss"):
                continue
            return True
    return False


def _is_output(
    expr: cst.BaseExpression, models: set[str], index: FileIndex, site: CallSite
) -> bool:
    """``net(x)``, a name bound once to it, or a comprehension variable running over such
    outputs (``for yhat, y in zip(outputs, label)``), where ``net`` is a float16 model."""
    if isinstance(expr, (cst.List, cst.Tuple)):
        return any(_is_output(e.value, models, index, site) for e in expr.elements)
    if isinstance(expr, cst.Call):
        return dotted(expr.func) in models
    if isinstance(expr, cst.Name):
        source = _comprehension_source(expr.value, site)
        if source is not None:
            return _are_outputs(source, models, index, site)
    name = dotted(expr)
    if name is None:
        return False
    values = index.values_of(name, site.scope)
    return len(values) == 1 and _is_output(values[0], models, index, site)


def _are_outputs(expr, models: set[str], index: FileIndex, site: CallSite) -> bool:
    """A list of model outputs: ``[net(X) for X in data]`` or a name bound once to one."""
    if isinstance(expr, (cst.ListComp, cst.GeneratorExp)):
        return _is_output(expr.elt, models, index, site)
    name = dotted(expr)
    values = index.values_of(name, site.scope) if name is not None else []
    return (
        len(values) == 1
        and isinstance(values[0], (cst.ListComp, cst.GeneratorExp))
        and (_is_output(values[0].elt, models, index, site))
    )


def _comprehension_source(name: str, site: CallSite) -> cst.BaseExpression | None:
    """What a comprehension variable around ``site`` runs over (zip's matching argument)."""
    for comprehension in site.inside(COMP):
        for_in = getattr(comprehension, "for_in", None)
        while for_in is not None:
            target, iterable = for_in.target, for_in.iter
            if isinstance(target, cst.Name) and target.value == name:
                return iterable
            if isinstance(target, cst.Tuple) and isinstance(iterable, cst.Call):
                names = [
                    e.value.value if isinstance(e.value, cst.Name) else None
                    for e in target.elements
                ]
                if dotted(iterable.func) == "zip" and name in names:
                    position = names.index(name)
                    if position < len(iterable.args):
                        return iterable.args[position].value
            for_in = for_in.inner_for_in
    return None


def _model_outputs(ctx: RuleContext) -> Iterator[Issue]:
    models = _float16_models(ctx)
    if not models:
        return
    for site, arguments, what in _consumers(ctx):
        if not ctx.precisions_at(site):
            continue
        for argument in arguments:
            if _is_output(argument, models, ctx.index, site) or _are_outputs(
                argument, models, ctx.index, site
            ):
                yield Issue(
                    argument,
                    f"float16 model output fed to {what} without a cast: cast it to float32 "
                    "first (.astype('float32') / .float())",
                )


# ---- Keras: the final softmax layer under mixed_float16 -------------------------------------
def _keras_softmax(ctx: RuleContext) -> Iterator[Issue]:
    policies = [s for s in ctx.signals if s.what == "a mixed precision policy"]
    if not any(s.precision == "float16" for s in policies):
        return
    for layer in _final_layers(ctx.index):
        site = ctx.index.site(layer)
        if site is None or site.qualname not in keras.SOFTMAX_LAYERS or not _softmax(site, ctx):
            continue
        if not _reduced_dtype(site, ctx):
            continue
        yield Issue(
            site.node,
            "final softmax layer runs in float16 under mixed_float16: give it dtype='float32'",
        )


def _reduced_dtype(site: CallSite, ctx: RuleContext) -> bool:
    """The layer computes in the policy's float16: no ``dtype`` or an explicit float16 one."""
    expr = site.arg(None, "dtype")
    return expr is None or dtype_of(expr, ctx.index, site) == "float16"


def _softmax(site: CallSite, ctx: RuleContext) -> bool:
    if site.qualname is not None and site.qualname.endswith(".Softmax"):
        return True
    position = 0 if site.qualname is not None and site.qualname.endswith(".Activation") else 1
    value = ctx.fold(site.arg(position, "activation"), site.scope)
    if value is not None and value.value == "softmax":
        return True
    name = dotted(site.arg(position, "activation"))
    return name is not None and name.endswith("softmax")


def _final_layers(index: FileIndex) -> Iterator[cst.CSTNode]:
    last_add: dict[str, CallSite] = {}
    for site in index.calls:
        qualname = site.qualname or ""
        if qualname in keras.SEQUENTIAL:
            layers = site.arg(0, "layers")
            if isinstance(layers, (cst.List, cst.Tuple)) and layers.elements:
                yield layers.elements[-1].value
        elif qualname in keras.MODELS:
            outputs = site.arg(1, "outputs")
            elements = outputs.elements if isinstance(outputs, (cst.List, cst.Tuple)) else []
            for output in [e.value for e in elements] or [outputs]:
                layer = _producing_layer(output, index, site)
                if layer is not None:
                    yield layer
        elif site.method == "add" and len(site.node.args) == 1 and site.receiver is not None:
            receiver = dotted(site.receiver)
            if receiver is not None:
                last_add[receiver] = site
    for site in last_add.values():
        yield site.node.args[0].value
    yield from _subclassed_outputs(index)


def _subclassed_outputs(index: FileIndex) -> Iterator[cst.CSTNode]:
    """Layers whose output a subclassed ``keras.Model``'s ``call`` returns: ``self.out(x)``
    with ``self.out = Dense(...)`` set once in ``__init__`` or ``build``, or ``Dense(...)(x)``."""
    for info in index.classes.values():
        call = info.methods.get("call")
        if call is None or not any(index.resolve(base) in keras.MODELS for base in info.bases):
            continue
        for value in call.returns:
            layer = _returned_layer(value, call, info, 0)
            if layer is not None:
                yield layer


def _returned_layer(expr, call: Scope, info: ClassInfo, depth: int) -> cst.CSTNode | None:
    if isinstance(expr, cst.Name) and depth < 4:
        values = call.assigned.get(expr.value, [])
        return _returned_layer(values[-1], call, info, depth + 1) if values else None
    if not isinstance(expr, cst.Call):
        return None
    if isinstance(expr.func, cst.Call):
        return expr.func
    name = dotted(expr.func) or ""
    values = [v for method in info.methods.values() for v in method.assigned.get(name, [])]
    return values[0] if len(values) == 1 and isinstance(values[0], cst.Call) else None


def _producing_layer(expr, index: FileIndex, site: CallSite) -> cst.CSTNode | None:
    """The layer whose call produced ``expr``: ``Dense(10)(x)`` or a name bound once to it."""
    name = dotted(expr) if expr is not None else None
    if name is not None:
        values = index.values_of(name, site.scope)
        expr = values[0] if len(values) == 1 else None
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Call):
        return expr.func
    return None


VALID = [
    # Cast before the loss; a helper that casts; the next layer in float32.
    """
from mxnet import gluon
net.cast("float16")
loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
loss = loss_fn(net(x).astype("float32"), y)
out = to_float32(net(x))
loss2 = loss_fn(out, y)
loss3 = loss_fn(head(net(x)), y)
""",
    # Outputs cast inside the comprehension.
    """
from mxnet import gluon
net.cast("float16")
L = gluon.loss.SoftmaxCrossEntropyLoss()
outputs = [net(X).astype("float32") for X in data]
loss = [L(yhat, y) for yhat, y in zip(outputs, label)]
""",
    # The output rebound after a cast.
    """
from mxnet import gluon
net.cast("float16")
loss_fn = gluon.loss.L2Loss()
out = net(x)
out = out.astype("float32")
loss = loss_fn(out, y)
""",
    # amp.init and autocast compute losses in float32 themselves.
    """
from mxnet import gluon
from mxnet.contrib import amp
amp.init()
loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
loss = loss_fn(net(x), y)
""",
    """
import torch
import torch.nn.functional as F
with torch.autocast("cuda"):
    loss = F.cross_entropy(model(x), y)
""",
    # .half().float() round trip, and a checkpoint saved in half.
    """
import torch
import torch.nn.functional as F
torch.save(model.half().state_dict(), "half.pt")
model = model.half().float()
loss = F.cross_entropy(model(x), y)
""",
    # Keras: the final softmax forced to float32; a softmax inside the model is fine.
    """
from tensorflow import keras
from tensorflow.keras import layers
keras.mixed_precision.set_global_policy("mixed_float16")
model = keras.Sequential([
    layers.Dense(64, activation="softmax"),
    layers.Dense(10),
    layers.Activation("softmax", dtype="float32"),
])
policy_free = keras.Sequential([layers.Dense(10, activation="softmax", dtype=tf.float32)])
""",
    # A subclassed Keras model whose final layer is forced to float32, or is not a softmax.
    """
import tensorflow as tf
from tensorflow import keras
keras.mixed_precision.set_global_policy("mixed_float16")
class Classifier(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = keras.layers.Dense(64, activation="softmax")
        self.out = keras.layers.Dense(10, activation="softmax", dtype="float32")
    def call(self, x):
        return self.out(self.hidden(x))
class Regressor(tf.keras.Model):
    def __init__(self):
        super().__init__()
        self.out = tf.keras.layers.Dense(1)
    def call(self, x):
        return self.out(x)
""",
    # bfloat16 policy, and float32 Keras.
    """
from tensorflow import keras
from tensorflow.keras import layers
keras.mixed_precision.set_global_policy("mixed_bfloat16")
model = keras.Sequential([layers.Dense(10, activation="softmax")])
""",
    # The model's own forward casts its output to float32 (Gluon hybrid_forward, a local base
    # class's forward, PyTorch .float() / .to(torch.float32)).
    """
from mxnet import gluon
class Net(gluon.HybridBlock):
    def hybrid_forward(self, F, x):
        out = self.body(x)
        return F.cast(out, dtype="float32")
class Wide(Net):
    pass
class Pair(gluon.Block):
    def forward(self, x):
        out = self.body(x)
        out = out.astype("float32")
        return out, self.aux(x).astype(np.float32)
net = Wide()
net.cast("float16")
pair = Pair()
pair.cast("float16")
loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
loss = loss_fn(net(x), y)
aux_loss = loss_fn(pair(x), y)
""",
    """
import torch
from torch import nn
class Net(nn.Module):
    def forward(self, x):
        if self.training:
            return self.head(x).float()
        return self.head(x).to(torch.float32)
model = Net().cuda().half()
criterion = nn.CrossEntropyLoss()
loss = criterion(model(x.half()), y)
""",
    # PyTorch: the output is cast with .float().
    """
import torch
from torch import nn
model = Net().half()
criterion = nn.CrossEntropyLoss()
loss = criterion(model(x.half()).float(), y)
""",
]

INVALID = [
    """
import mxnet as mx
from mxnet import gluon
net = build()
net.cast("float16")
loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
metric = mx.metric.Accuracy()
for x, y in loader:
    out = net(x)
    loss = loss_fn(out, y)  # AMP101
    metric.update([y], [out])  # AMP101
    probs = mx.nd.softmax(net(x))  # AMP101
""",
    """
from tensorflow import keras
from tensorflow.keras import layers
keras.mixed_precision.set_global_policy("mixed_float16")
model = keras.Sequential([
    layers.Dense(64, activation="relu"),
    layers.Dense(10, activation="softmax"),  # AMP101
])
inputs = keras.Input(shape=(784,))
hidden = layers.Dense(64, activation="relu")(inputs)
outputs = layers.Dense(10, activation="softmax")(hidden)  # AMP101
functional = keras.Model(inputs, outputs)
""",
    # A subclassed model: the final softmax layer set in __init__ and returned by call.
    """
import tensorflow as tf
from tensorflow import keras
tf.keras.mixed_precision.set_global_policy("mixed_float16")
class Classifier(keras.Model):
    def __init__(self, classes=10):
        super().__init__()
        self.hidden = keras.layers.Dense(64, activation="relu")
        self.out = keras.layers.Dense(classes, activation="softmax")  # AMP101
    def call(self, x):
        x = self.hidden(x)
        probs = self.out(x)
        return probs
class Inline(tf.keras.Model):
    def call(self, x):
        return tf.keras.layers.Dense(10, activation="softmax")(x)  # AMP101
class Built(tf.keras.Model):
    def build(self, input_shape):
        self.head = tf.keras.layers.Dense(10, activation="softmax")  # AMP101
    def call(self, x):
        return self.head(x)
""",
    # GluonCV's multi-device loop: a list of outputs, losses in a comprehension.
    """
import argparse
import mxnet as mx
from mxnet import autograd, gluon
parser = argparse.ArgumentParser()
parser.add_argument("--dtype", default="float16")
opt = parser.parse_args()
net.cast(opt.dtype)
L = gluon.loss.SoftmaxCrossEntropyLoss()
train_metric = mx.metric.Accuracy()
with autograd.record():
    outputs = [net(X.astype(opt.dtype, copy=False)) for X in data]
    loss = [L(yhat, y.astype(opt.dtype, copy=False)) for yhat, y in zip(outputs, label)]  # AMP101
train_metric.update(label, outputs)  # AMP101
""",
    """
import torch
import torch.nn.functional as F
from torch import nn
model = Net().cuda().half()
criterion = nn.CrossEntropyLoss()
for x, y in loader:
    logits = model(x.half())
    loss = criterion(logits, y)  # AMP101
    loss2 = F.cross_entropy(model(x.half()), y)  # AMP101
""",
    # A forward that casts on one path only still returns float16 on the other.
    """
from mxnet import gluon
class Net(gluon.HybridBlock):
    def hybrid_forward(self, F, x):
        out = self.body(x)
        if self.export:
            return out
        return F.cast(out, dtype="float32")
net = Net()
net.cast("float16")
loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
loss = loss_fn(net(x), y)  # AMP101
""",
]
