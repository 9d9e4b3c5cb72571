"""A batch size that is not a multiple of 8 in code that runs in float16 or bfloat16.

Why it matters: the batch is the leading dimension of every activation matrix. With a batch of
100, each matrix multiply in reduced precision works on tiles that do not fit the hardware
(Tensor Cores, oneDNN's bf16 kernels) and falls back to slower paths or pads on every step.

Checked: `DataLoader(batch_size=...)` of Gluon and PyTorch (positional too) and Keras
`model.fit(batch_size=...)`, with the value traced like AMP201 (literals, constants, default
arguments, argparse defaults, `self.` attributes, dict items, arithmetic). A batch of 1
(single-sample inference) is not reported.

Example:

    parser.add_argument("--batch-size", type=int, default=100)
    ...
    amp.init()
    loader = gluon.data.DataLoader(train, batch_size=args.batch_size)   # AMP202

Fix: use a batch size that is a multiple of 8 (96, 104, 128, ...).
"""

from __future__ import annotations

from collections.abc import Iterator

from amplint.frameworks import mxnet, torch
from amplint.rules.api import Issue, RuleContext

_LOADERS = frozenset(mxnet.DATALOADER + torch.DATALOADER)


def check(ctx: RuleContext) -> Iterator[Issue]:
    """Batch sizes of data loaders and ``fit()`` that are not multiples of the alignment."""
    multiple = ctx.settings.alignment
    for site in ctx.index.calls:
        if site.qualname in _LOADERS:
            expr = site.arg(1, "batch_size")
        elif site.method == "fit":
            expr = site.arg(None, "batch_size")
        else:
            continue
        if expr is None or not ctx.precisions_at(site):
            continue
        found = ctx.misaligned(expr, site)
        if found is None or found.size == 1:
            continue
        rounded = found.rounded
        choices = f"{rounded - multiple} or {rounded}" if rounded > multiple else f"{rounded}"
        message = (
            f"batch size {found.size} is not a multiple of {multiple} (slow {found.precision} "
            f"kernels); use {choices}"
        )
        fix = {"argument": "batch_size", "value": found.size, "rounded": rounded}
        yield Issue(expr, message, found.origin, fix)


VALID = [
    # float32 only: any batch size.
    """
from mxnet import gluon
loader = gluon.data.DataLoader(dataset, batch_size=100, shuffle=True)
""",
    # A multiple of 8 through argparse; an unknown value is not guessed.
    """
import argparse
from mxnet import gluon
from mxnet.contrib import amp
parser = argparse.ArgumentParser()
parser.add_argument("--batch-size", type=int, default=128)
args = parser.parse_args()
amp.init()
train = gluon.data.DataLoader(dataset, batch_size=args.batch_size)
val = gluon.data.DataLoader(dataset, batch_size=len(dataset) // 3)
""",
    # Single-sample inference.
    """
import torch
from torch.utils.data import DataLoader
model = torch.load("m.pt").half()
loader = DataLoader(dataset, batch_size=1)
""",
    # Not a data loader: numbers that are not batch sizes.
    """
import torch
with torch.autocast("cuda"):
    x = torch.randn(100, 3, 224, 224)
    grid = make_grid(x, nrow=10)
""",
    # bfloat16 but a multiple of 8.
    """
from tensorflow import keras
keras.mixed_precision.set_global_policy("mixed_bfloat16")
model.fit(x, y, batch_size=256, epochs=3)
""",
]

INVALID = [
    """
import argparse
from mxnet import gluon
from mxnet.contrib import amp
parser = argparse.ArgumentParser()
parser.add_argument("--batch-size", type=int, default=100)
args = parser.parse_args()
amp.init()
train = gluon.data.DataLoader(dataset, args.batch_size, shuffle=True)  # AMP202
""",
    """
from tensorflow import keras
BATCH = 50
keras.mixed_precision.set_global_policy("mixed_float16")
model.fit(x, y, batch_size=BATCH * 2, epochs=3)  # AMP202
""",
    """
import torch
from torch.utils.data import DataLoader
loader = DataLoader(dataset, batch_size=60, shuffle=True)  # AMP202
with torch.autocast(device_type="cuda", dtype=torch.float16):
    pass
""",
    # A batch size held in a hyper-parameter dict and in an attribute set in __init__.
    """
from mxnet import gluon
from mxnet.contrib import amp
HPARAMS = {"batch_size": 100, "lr": 0.1}
class Task:
    def __init__(self, batch=60):
        self.batch = batch
    def loader(self, dataset):
        return gluon.data.DataLoader(dataset, batch_size=self.batch)  # AMP202
amp.init()
train = gluon.data.DataLoader(dataset, HPARAMS["batch_size"], shuffle=True)  # AMP202
""",
]
