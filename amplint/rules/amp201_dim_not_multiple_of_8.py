"""A layer dimension that is not a multiple of 8 in code that runs in float16 or bfloat16.

Why it matters: Tensor Cores (and oneDNN's reduced-precision kernels) work on tiles whose sides
are multiples of 8. A layer with 1000 units or a vocabulary of 50257 falls back to slow kernels or
pads on every call; nanoGPT pads its 50257-token vocabulary to 50304 for a measurable speed-up.
Output layers are not exempt: a class count or vocabulary size is a dimension too.

Checked: Gluon `Dense` units and `in_units`, `Conv*` channels and `in_channels`,
`LSTM/GRU/RNN` hidden size, `Embedding` dims; Keras `Dense` units, `Conv*` filters,
`LSTM/GRU` units, `Embedding`; PyTorch `Linear` features, `Conv*d` channels (not the 1, 3
or 4 input channels of an image), `LSTM/GRU` hidden size, `Embedding`; the class count of a
model constructor (see the README's table: Gluon model zoo and GluonCV `get_model(name,
classes=N)`, torchvision `resnet50(num_classes=N)`, timm `create_model(..., num_classes=N)`,
Hugging Face `from_pretrained(num_labels=N)`, Keras applications `classes=`, Keras-CV and
Keras-Hub `num_classes=`). A layer is reported in the configurations in which it computes in
reduced precision: under a process-wide switch, as part of a model cast or run under
autocast (its class, the classes and builder functions it is made of, the containers it is
added to), or with its own reduced `dtype=`. Values are traced through literals, module
constants, default arguments, callers' arguments, argparse defaults, `self.` attributes,
items of dict literals (`cfg['units']`) and simple arithmetic. Not reported: layers forced to
`dtype='float32'`, sizes fixed by pretrained weights the script loads (`pretrained=True` of
a factory whose head it keeps, `net.load_parameters(path)` always run), layers of unit tests,
code that never runs in reduced precision. The `alignment` and `min_dimension` settings change
the multiple and silence small sizes.

Example:

    amp.init()
    net.add(nn.Dense(1000))          # fine: 1000 is a multiple of 8
    net.add(nn.Dense(num_classes))   # AMP201 when NUM_CLASSES = 10 (reported with its line)

Fix: round the dimension up to the next multiple of 8 (pad a vocabulary or class count and
ignore the extra logits), or silence small layers with `min-dimension`.
"""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from amplint.conditions import ALWAYS, NEVER, Condition
from amplint.frameworks import find_layer, pretrained_arguments
from amplint.index import CallSite
from amplint.precision import union
from amplint.rules.api import Issue, RuleContext

IMAGE_CHANNELS = (1, 3, 4)
_LOADS = ("load_parameters", "load_params", "load_state_dict", "load_weights")


def _loaded(ctx: RuleContext) -> dict[int, Condition]:
    """id(constructor call) -> where a checkpoint is loaded into the model it builds
    (``net.load_parameters(path)``; under ``if args.resume:`` only with that option)."""
    cases = ctx.model.cases
    loaded: dict[int, Condition] = {}
    for call in ctx.index.calls:
        if call.method not in _LOADS or call.receiver is None or _delegating(call):
            continue
        for condition, root in ctx.model.roots(call.receiver, call.scope, call.order):
            if isinstance(root, CallSite):
                here = condition & cases.runs(call)
                loaded[id(root)] = loaded[id(root)] | here if id(root) in loaded else here
    return loaded


def _delegating(call: CallSite) -> bool:
    """A load inside a method of the same name (``def load_state_dict(self, d):
    self.model.load_state_dict(d)``): an override passing a checkpoint on, not a load."""
    function = call.scope.node
    return isinstance(function, cst.FunctionDef) and function.name.value in _LOADS


def _fixed_by_checkpoint(site: CallSite, ctx: RuleContext, loaded) -> Condition:
    """Where the layer's size is fixed by weights the script loads into it: a factory asked
    for pretrained weights (``get_model(name, pretrained=True)``), or a model holding the layer
    that loads a checkpoint (see :func:`_loaded`)."""
    fixed = NEVER
    for keyword, default in pretrained_arguments(site.qualname):
        value = site.arg(None, keyword)
        if value is None:
            fixed = fixed | (ALWAYS if default not in (None, False) else NEVER)
            continue
        fixed = fixed | ctx.model.cases.truth(value, site.scope, site.order)
    if loaded:
        for _, root in ctx.model._owners(site):
            if isinstance(root, CallSite) and id(root) in loaded:
                fixed = fixed | loaded[id(root)]
    return fixed


def check(ctx: RuleContext) -> Iterator[Issue]:
    """Layer dimensions of reduced-precision code that are not multiples of the alignment."""
    multiple = ctx.settings.alignment
    smallest = ctx.settings.min_dimension or 0
    loaded = _loaded(ctx)
    for site in ctx.index.calls:
        layer = find_layer(site.qualname)
        if layer is None or ctx.model.in_unit_test(site):
            continue
        facts = [f for f in ctx.precision_at(site) if f.framework in (None, layer.framework)]
        if not facts or ctx.model.forced_float32(site):
            continue
        condition = union(facts) & ~_fixed_by_checkpoint(site, ctx, loaded)
        if not condition.possible:
            continue
        for dim in layer.dims:
            expr = site.arg(dim.position, dim.keyword)
            found = ctx.misaligned(expr, site, facts)
            if found is None or found.size < smallest:
                continue
            if dim.image_input and found.size in IMAGE_CHANNELS:
                continue
            message = (
                f"{layer.name} {dim.keyword}={found.size} is not a multiple of {multiple} "
                f"(slow {found.precision} kernels); round it up to {found.rounded}"
            )
            fix = {"argument": dim.keyword, "value": found.size, "rounded": found.rounded}
            where = condition & found.condition if found.condition is not None else condition
            yield Issue(expr, message + found.note, found.origin, fix, where)


VALID = [
    # A float32-only file: the same odd dimensions are fine.
    """
from mxnet.gluon import nn
net = nn.HybridSequential()
net.add(nn.Dense(1000), nn.Dense(10))
""",
    # Kernel sizes, strides and pool sizes are not dimensions.
    """
from mxnet.gluon import nn
from mxnet.contrib import amp
amp.init()
net = nn.HybridSequential()
net.add(nn.Conv2D(64, kernel_size=3, strides=1, padding=1), nn.MaxPool2D(pool_size=3, strides=2))
net.add(nn.Dense(512), nn.Dense(1000))
""",
    # LRN sizes, blocks-per-stage lists, a layer forced to float32.
    """
import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet
model = ResNet(BasicBlock, [3, 5, 7, 3], num_classes=1024).half()
norm = nn.LocalResponseNorm(5)
head = nn.Linear(1024, 10, dtype=torch.float32)
""",
    """
import mxnet as mx
from mxnet.gluon import nn
net = nn.HybridSequential()
net.add(nn.Dense(512, dtype="float16"), nn.Dense(10, dtype="float32"))
y = mx.nd.LRN(x, nsize=5)
""",
    # The 3 input channels of an image model's first convolution.
    """
import torch
from torch import nn
conv = nn.Conv2d(3, 64, kernel_size=7, stride=2)
model = nn.Sequential(conv).half()
""",
    # Layers forced to float32.
    """
from tensorflow import keras
keras.mixed_precision.set_global_policy("mixed_float16")
out = keras.layers.Dense(10, activation="softmax", dtype="float32")
""",
    # Code in comments, strings and docstrings.
    '''
"""Example: nn.Dense(1000) with amp.init()."""
from mxnet.contrib import amp
from mxnet.gluon import nn
amp.init()
# net.add(nn.Dense(10))
doc = "nn.Dense(10)"
net = nn.Dense(1024)
''',
    # A variable that happens to be named amp is not AMP.
    """
from mxnet.gluon import nn
amp = 0.5
net = nn.Dense(10)
""",
    # num_classes of a metric, shapes of random data.
    """
import mxnet as mx
from mxnet.contrib import amp
amp.init()
metric = mx.metric.TopKAccuracy(top_k=5)
x = mx.nd.random.uniform(shape=(3, 10, 17))
acc = mx.gluon.metric.Accuracy(num_classes=10) if hasattr(mx.gluon, "metric") else None
""",
    # The float32 branch of an AMP switch.
    """
import argparse
from mxnet.gluon import nn
from mxnet.contrib import amp
parser = argparse.ArgumentParser()
parser.add_argument("--amp", action="store_true")
args = parser.parse_args()
if args.amp:
    amp.init()
    head = nn.Dense(1024)
else:
    head = nn.Dense(1000)
""",
    # Attributes set outside __init__ too, dicts changed after they were written: unknown.
    """
from mxnet.gluon import nn
from mxnet.contrib import amp
amp.init()
cfg = {"units": 100}
cfg["units"] = 128
opts = dict(units=100)
opts.update(units=128)
merged = {**cfg, "units": 100}
class Net(nn.HybridBlock):
    def __init__(self):
        super().__init__()
        self.hidden = 100
        self.a = nn.Dense(cfg["units"])
        self.b = nn.Dense(opts["units"])
    def resize(self, hidden):
        self.hidden = hidden
    def head(self):
        return nn.Dense(self.hidden)
""",
    # bfloat16 autocast on dims that are already aligned; unknown values are not guessed.
    """
import torch
def build(width):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return torch.nn.Linear(width, 256)
""",
]

INVALID = [
    """
from mxnet.gluon import nn
from mxnet.contrib import amp
amp.init()
net = nn.HybridSequential()
net.add(nn.Dense(1000))
net.add(nn.Dense(100))  # AMP201
net.add(nn.Dense(10))  # AMP201
""",
    # Values through module constants, default arguments and argparse defaults.
    """
import argparse
import mxnet as mx
from mxnet import gluon
NUM_CLASSES = 10
parser = argparse.ArgumentParser()
parser.add_argument("--hidden", type=int, default=650)
args = parser.parse_args()
def build(vocab=33278):
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Embedding(vocab, 512))  # AMP201
    net.add(gluon.rnn.LSTM(args.hidden))  # AMP201
    net.add(gluon.nn.Dense(NUM_CLASSES, in_units=512))  # AMP201
    net.add(gluon.nn.Dense(NUM_CLASSES * 8 + 4))  # AMP201
    return net
net = build()
net.cast("float16")
""",
    """
from tensorflow import keras
from tensorflow.keras import layers
keras.mixed_precision.set_global_policy("mixed_float16")
model = keras.Sequential([
    layers.Conv2D(30, 3),  # AMP201
    layers.LSTM(100),  # AMP201
    layers.Dense(512),
])
""",
    """
import argparse
from gluoncv.model_zoo import get_model
from mxnet.gluon.model_zoo import vision
from mxnet.contrib import amp
parser = argparse.ArgumentParser()
parser.add_argument("--classes", type=int, default=10)
opt = parser.parse_args()
amp.init()
net = get_model("cifar_resnet20_v1", classes=opt.classes)  # AMP201
backbone = vision.resnet50_v1(classes=1000, pretrained=False)
""",
    """
import torch
from torch import nn
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 60, 3)  # AMP201
        self.fc = nn.Linear(60, 10)  # AMP201
        self.rnn = nn.LSTM(256, 100)  # AMP201
model = Net().cuda().half()
""",
    # Values held in self attributes set in __init__ and in dict literals.
    """
from mxnet.gluon import nn
from mxnet.contrib import amp
CFG = {"units": 100, "classes": 512}
class Net(nn.HybridBlock):
    def __init__(self, hidden=300):
        super().__init__()
        self.hidden = hidden
        self.body = nn.Dense(self.hidden)  # AMP201
        self.head = self._head()
    def _head(self):
        return nn.Dense(self.hidden, in_units=CFG["classes"])  # AMP201
amp.init()
net = Net()
extra = nn.Dense(CFG["units"])  # AMP201
""",
]
