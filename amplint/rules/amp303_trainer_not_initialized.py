"""`amp.scale_loss(loss, trainer)` with a trainer never given to `amp.init_trainer`.

Why it matters: `scale_loss` reads the loss scaler that `init_trainer` attaches to the
trainer. With contrib's AMP the call fails (`'Trainer' object has no attribute
'_amp_loss_scaler'`) at the first step; with `gluon_amp` it raises an error naming
`init_trainer`. Either way the run dies after the data pipeline and the first forward pass.

Reported when the trainer is created in the same file (`trainer = gluon.Trainer(...)`) and no
`amp.init_trainer(trainer)` (or `trainer = amp.init_trainer(gluon.Trainer(...))`) appears in
it. Trainers that arrive as parameters are not reported: they may be initialised elsewhere.

Example:

    trainer = gluon.Trainer(net.collect_params(), "sgd")
    with amp.scale_loss(loss, trainer) as scaled:   # AMP303
        autograd.backward(scaled)

Fix: call `amp.init_trainer(trainer)` once, after creating the trainer.
"""

from __future__ import annotations

from collections.abc import Iterator

from amplint.frameworks import mxnet
from amplint.index import dotted
from amplint.rules.api import Issue, RuleContext


def check(ctx: RuleContext) -> Iterator[Issue]:
    """Trainers created here, given to ``scale_loss`` and never to ``init_trainer``."""
    index = ctx.index
    initialised = {
        dotted(site.arg(0, "trainer"))
        for site in index.calls
        if mxnet.amp_function(site.qualname, "init_trainer")
    }
    # A trainer handed to any other call (a setup helper, a wrapper) may be initialised there.
    handed_over = {
        dotted(argument.value)
        for site in index.calls
        if not mxnet.amp_function(site.qualname, "scale_loss")
        for argument in site.node.args
    }
    for site in index.calls:
        if not mxnet.amp_function(site.qualname, "scale_loss"):
            continue
        trainer = site.arg(1, "optimizer_or_trainer") or site.arg(None, "trainer")
        name = dotted(trainer) if trainer is not None else None
        if name is None or name in initialised or name in handed_over:
            continue
        values = index.values_of(name, site.scope)
        created = [index.site(v) for v in values]
        if not values or not all(c is not None and c.qualname in mxnet.TRAINER for c in created):
            continue
        yield Issue(
            trainer,
            f"{name} is passed to amp.scale_loss but never to amp.init_trainer: "
            f"call amp.init_trainer({name}) after creating it",
        )


VALID = [
    """
from mxnet import autograd, gluon
from mxnet.contrib import amp
amp.init()
trainer = gluon.Trainer(net.collect_params(), "sgd")
amp.init_trainer(trainer)
with autograd.record():
    loss = loss_fn(net(x), y)
    with amp.scale_loss(loss, trainer) as scaled:
        autograd.backward(scaled)
""",
    # gluon_amp.init_trainer returns the trainer.
    """
import gluon_amp as amp
from mxnet import gluon
trainer = amp.init_trainer(gluon.Trainer(net.collect_params(), "adam"))
with amp.scale_loss(loss, trainer) as scaled:
    scaled.backward()
""",
    # A trainer given as a parameter may be initialised by the caller.
    """
from mxnet.contrib import amp
def step(loss, trainer):
    with amp.scale_loss(loss, trainer) as scaled:
        scaled.backward()
""",
    # Initialised by a helper the trainer is handed to.
    """
from mxnet import gluon
from mxnet.contrib import amp
def setup_amp(t):
    amp.init_trainer(t)
trainer = gluon.Trainer(net.collect_params(), "sgd")
setup_amp(trainer)
with amp.scale_loss(loss, trainer) as scaled:
    scaled.backward()
""",
    # apex's amp.scale_loss takes an optimizer, not an MXNet trainer.
    """
from apex import amp
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
with amp.scale_loss(loss, optimizer) as scaled_loss:
    scaled_loss.backward()
""",
]

INVALID = [
    """
from mxnet import autograd, gluon
from mxnet.contrib import amp
amp.init()
trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
with autograd.record():
    loss = loss_fn(net(x), y)
    with amp.scale_loss(loss, trainer) as scaled:  # AMP303
        autograd.backward(scaled)
""",
]
