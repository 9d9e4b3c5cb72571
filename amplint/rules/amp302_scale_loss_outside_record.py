"""`amp.scale_loss` of `mxnet.contrib.amp` used outside `autograd.record()`.

Why it matters: contrib's `scale_loss` yields `loss * scale`. Outside `autograd.record()`
that multiplication is not recorded, so `backward` on the scaled loss fails with "Cannot
differentiate node because it is not in a computational graph". (`gluon_amp.scale_loss` records
the multiplication itself and works there: not a finding.)

Reported when a function (or the module) records its forward pass with `autograd.record()` and
opens `amp.scale_loss` after that block instead of inside it.

Example:

    with autograd.record():
        loss = loss_fn(net(x), y)
    with amp.scale_loss(loss, trainer) as scaled:   # AMP302
        autograd.backward(scaled)

Fix: move the `scale_loss` block inside the `autograd.record()` block (or use
`gluon_amp`, whose `scale_loss` works in both places).
"""

from __future__ import annotations

from collections.abc import Iterator

from amplint.frameworks import mxnet
from amplint.rules.api import Issue, RuleContext


def check(ctx: RuleContext) -> Iterator[Issue]:
    """contrib ``amp.scale_loss`` blocks after, not inside, the function's ``record()``."""
    index = ctx.index
    recording = {site.function for site in ctx.calls(*mxnet.RECORD)}
    for site in index.calls:
        if not mxnet.amp_function(site.qualname, "scale_loss", mxnet.CONTRIB_AMP):
            continue
        if site.function not in recording:
            continue  # no record() here: the caller may record around this helper
        if any(outer.qualname in mxnet.RECORD for outer in index.with_calls(site)):
            continue
        yield Issue(
            site.node,
            "mxnet.contrib.amp.scale_loss outside autograd.record(): the scaled loss is not "
            "recorded and backward fails; move it inside the record() block",
        )


VALID = [
    """
from mxnet import autograd
from mxnet.contrib import amp
with autograd.record():
    loss = loss_fn(net(x), y)
    with amp.scale_loss(loss, trainer) as scaled:
        autograd.backward(scaled)
""",
    # gluon_amp's scale_loss works outside record().
    """
import gluon_amp as amp
from mxnet import autograd
with autograd.record():
    loss = loss_fn(net(x), y)
with amp.scale_loss(loss, trainer) as scaled:
    autograd.backward(scaled)
""",
    # A helper called from inside record(): its caller records.
    """
from mxnet.contrib import amp
def backward(loss, trainer):
    with amp.scale_loss(loss, trainer) as scaled:
        scaled.backward()
""",
    # record() imported under another name, nested blocks.
    """
import mxnet as mx
from mxnet.contrib import amp
with mx.autograd.record(train_mode=True):
    for x, y in batches:
        loss = loss_fn(net(x), y)
        with amp.scale_loss(loss, trainer) as scaled:
            mx.autograd.backward(scaled)
""",
]

INVALID = [
    """
from mxnet import autograd
from mxnet.contrib import amp
def train_step(net, x, y, trainer):
    with autograd.record():
        loss = loss_fn(net(x), y)
    with amp.scale_loss(loss, trainer) as scaled:  # AMP302
        autograd.backward(scaled)
    trainer.step(x.shape[0])
""",
]
