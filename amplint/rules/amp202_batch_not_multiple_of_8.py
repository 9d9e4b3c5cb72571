"""A batch size that is not a multiple of 8 for an MLP or a step-by-step RNN in reduced precision.

Why it matters: in an MLP (and an RNN run one step at a time) the batch is the row dimension of
every costly matrix multiply. With a batch of 100, each GEMM in reduced precision works on
tiles that do not fit the hardware (Tensor Cores, oneDNN's bf16 kernels) and falls back to
slower paths or pads on every step. In a CNN the rows are batch x height x width, in a
transformer batch x sequence: the batch alone does not decide the tiles there.

Checked: `DataLoader(batch_size=...)` of Gluon and PyTorch (positional too) whose batches a
training loop of the file feeds to a model built in the file from dense and recurrent layers
only (a class of the file, a `Sequential`, a builder function), and Keras
`model.fit(batch_size=...)` of such a model; the value traced like AMP201 (literals,
constants, default arguments, argparse defaults, `self.` attributes, dict items, arithmetic).
Not reported: convolutional or attention models, a model the file does not show
(`get_model(name)`, `create_model(...)`, a class of another module), loaders that feed no
training step (validation, test), a batch of 1.

Example:

    parser.add_argument("--batch-size", type=int, default=100)
    ...
    amp.init()
    net = nn.HybridSequential()
    net.add(nn.Dense(512), nn.Dense(512), nn.Dense(10))
    loader = gluon.data.DataLoader(train, batch_size=args.batch_size)   # AMP202
    for x, y in loader: ...                                             # trains net

Fix: use a batch size that is a multiple of 8 (96, 104, 128, ...).
"""

from __future__ import annotations

from collections.abc import Iterator

from amplint.frameworks import mxnet, torch
from amplint.index import CallSite
from amplint.precision import Reduced, union
from amplint.rules.api import Issue, RuleContext
from amplint.structure import fed_models, model_kind

_LOADERS = frozenset(mxnet.DATALOADER + torch.DATALOADER)
_TRAINING_CALLS = ("backward", "step", "gradient", "apply_gradients")


def check(ctx: RuleContext) -> Iterator[Issue]:
    """Batch sizes of loaders feeding an MLP or RNN in reduced precision that are not
    multiples of the alignment."""
    multiple = ctx.settings.alignment
    for site in ctx.index.calls:
        if site.qualname in _LOADERS:
            expr = site.arg(1, "batch_size")
            facts = _loader_facts(site, ctx) if expr is not None else []
        elif site.method == "fit" and site.receiver is not None:
            expr = site.arg(None, "batch_size")
            facts = _fit_facts(site, ctx) if expr is not None else []
        else:
            continue
        if not facts:
            continue
        found = ctx.misaligned(expr, site, facts)
        if found is None or found.size == 1:
            continue
        rounded = found.rounded
        choices = f"{rounded - multiple} or {rounded}" if rounded > multiple else f"{rounded}"
        message = (
            f"batch size {found.size} is not a multiple of {multiple} (slow {found.precision} "
            f"GEMMs of this dense/recurrent model); use {choices}"
        )
        fix = {"argument": "batch_size", "value": found.size, "rounded": rounded}
        condition = union(facts)
        if found.condition is not None:
            condition = condition & found.condition
        yield Issue(expr, message + found.note, found.origin, fix, condition)


def _loader_facts(loader: CallSite, ctx: RuleContext) -> list[Reduced]:
    """Reduced-precision facts of the MLP/RNN models a training loop over ``loader`` runs."""
    model = ctx.model
    facts: list[Reduced] = []
    for call, _ in fed_models(loader, model):
        if model.inference_only(call) or not _trains_here(call, ctx):
            continue
        facts += _model_facts(call.node.func, call, ctx)
    return facts


def _fit_facts(site: CallSite, ctx: RuleContext) -> list[Reduced]:
    return _model_facts(site.receiver, site, ctx)


def _model_facts(expr, call: CallSite, ctx: RuleContext) -> list[Reduced]:
    model = ctx.model
    facts: list[Reduced] = []
    for condition, root in model.roots(expr, call.scope, call.order):
        if not isinstance(root, CallSite) or model_kind(root, model) is None:
            continue
        here = model.object_facts(root) + model.process_at(call) + model.blocks_at(call)
        runs = condition & model.cases.runs(call)
        facts += [n for n in (f.narrowed(runs) for f in here) if n is not None]
    return facts


def _trains_here(call: CallSite, ctx: RuleContext) -> bool:
    """A backward or optimizer step in the function that calls the model."""
    return any(
        other.method in _TRAINING_CALLS or (other.name or "").endswith(".backward")
        for other in ctx.index.calls_in(call.function)
    )


VALID = [
    # float32 only: any batch size.
    """
from mxnet import autograd, gluon
net = gluon.nn.Dense(10)
loader = gluon.data.DataLoader(dataset, batch_size=100, shuffle=True)
for x, y in loader:
    with autograd.record():
        loss = loss_fn(net(x), y)
    loss.backward()
""",
    # A multiple of 8 through argparse; an unknown value is not guessed.
    """
import argparse
from mxnet import autograd, gluon
from mxnet.contrib import amp
parser = argparse.ArgumentParser()
parser.add_argument("--batch-size", type=int, default=128)
args = parser.parse_args()
amp.init()
net = gluon.nn.HybridSequential()
net.add(gluon.nn.Dense(512), gluon.nn.Dense(10))
train = gluon.data.DataLoader(dataset, batch_size=args.batch_size)
val = gluon.data.DataLoader(dataset, batch_size=len(dataset) // 3)
for loader in (train, val):
    for x, y in loader:
        with autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
""",
    # A CNN: the batch is not the GEMMs' row dimension alone.
    """
import torch
from torch import nn
from torch.utils.data import DataLoader
model = nn.Sequential(nn.Conv2d(3, 64, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64, 10)).half()
loader = DataLoader(dataset, batch_size=100, shuffle=True)
for x, y in loader:
    loss = criterion(model(x.half()).float(), y)
    loss.backward()
    optimizer.step()
""",
    # A model the file does not show, and a validation loader.
    """
import torch
from torch.utils.data import DataLoader
import timm
model = timm.create_model("resnet50").half()
train = DataLoader(dataset, batch_size=100)
for x, y in train:
    loss = criterion(model(x.half()).float(), y)
    loss.backward()
    optimizer.step()
mlp = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.Linear(512, 10)).half()
val = DataLoader(val_set, batch_size=100)
with torch.no_grad():
    for x, y in val:
        accuracy(mlp(x.half()), y)
""",
    # Single-sample inference.
    """
import torch
from torch.utils.data import DataLoader
model = torch.load("m.pt").half()
loader = DataLoader(dataset, batch_size=1)
""",
    # bfloat16 but a multiple of 8.
    """
from tensorflow import keras
keras.mixed_precision.set_global_policy("mixed_bfloat16")
model = keras.Sequential([keras.layers.Dense(64), keras.layers.Dense(10)])
model.fit(x, y, batch_size=256, epochs=3)
""",
]

INVALID = [
    """
import argparse
from mxnet import autograd, gluon
from mxnet.contrib import amp
parser = argparse.ArgumentParser()
parser.add_argument("--batch-size", type=int, default=100)
args = parser.parse_args()
amp.init()
net = gluon.nn.HybridSequential()
net.add(gluon.nn.Dense(512, activation="relu"), gluon.nn.Dense(10))
train = gluon.data.DataLoader(dataset, args.batch_size, shuffle=True)  # AMP202
for x, y in train:
    with autograd.record():
        loss = loss_fn(net(x), y)
    loss.backward()
    trainer.step(args.batch_size)
""",
    """
from tensorflow import keras
BATCH = 50
keras.mixed_precision.set_global_policy("mixed_float16")
model = keras.Sequential([keras.layers.Dense(256, activation="relu"), keras.layers.Dense(10)])
model.fit(x, y, batch_size=BATCH * 2, epochs=3)  # AMP202
""",
    # An RNN run step by step, its loader handed to a training function.
    """
import torch
from torch import nn
from torch.utils.data import DataLoader
class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(1024, 256)
        self.cell = nn.LSTMCell(256, 512)
        self.out = nn.Linear(512, 64)
def train(model, loader):
    for tokens, tags in loader:
        with torch.autocast("cuda", dtype=torch.float16):
            loss = criterion(model(tokens), tags)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
loader = DataLoader(dataset, batch_size=60, shuffle=True)  # AMP202
train(Tagger(), loader)
""",
    # A batch size held in a hyper-parameter dict.
    """
from mxnet import autograd, gluon
from mxnet.contrib import amp
HPARAMS = {"batch_size": 100, "lr": 0.1}
amp.init()
net = gluon.nn.HybridSequential()
net.add(gluon.nn.Dense(512), gluon.nn.Dense(10))
train = gluon.data.DataLoader(dataset, HPARAMS["batch_size"], shuffle=True)  # AMP202
for x, y in train:
    with autograd.record():
        loss = loss_fn(net(x), y)
    loss.backward()
""",
]
