"""float16 training that relies on `multi_precision` master weights alone, without loss scaling.

Off by default (only an explicit `--select AMP306` turns it on): this is the long-standing
GluonCV recipe (`net.cast('float16')` with `multi_precision=True`) and it often trains fine.

Why it matters: float32 master weights keep small *updates* from being lost, but the gradients
themselves are still computed in float16: values below about 6e-8 flush to zero before they ever
reach the master copy. Without loss scaling, layers with small gradients (deep nets, late in
training, small learning rates) silently stop learning.

Example:

    net.cast("float16")
    trainer = gluon.Trainer(params, "sgd", {"multi_precision": True})
    with autograd.record():
        loss = loss_fn(net(x), y)
    loss.backward()                     # AMP306

Fix: keep the master weights and add loss scaling (`amp.init_trainer(trainer)` and
`with amp.scale_loss(loss, trainer) as scaled: autograd.backward(scaled)`).
"""

from __future__ import annotations

from collections.abc import Iterator

from amplint.rules.amp301_missing_loss_scaling import unscaled_float16_backwards
from amplint.rules.api import Issue, RuleContext
from amplint.scaling import master_weights, named_master_weights


def check(ctx: RuleContext) -> Iterator[Issue]:
    """float16 backward calls covered by ``multi_precision`` alone."""
    master = master_weights(ctx.model)
    for backward, condition in unscaled_float16_backwards(ctx):
        condition = condition & (master | named_master_weights(condition))
        if condition.possible:
            yield Issue(
                backward.site.node,
                "float16 backward relies on multi_precision master weights alone: gradients "
                "below 6e-8 still underflow; add loss scaling (amp.scale_loss)",
                condition=condition,
            )


VALID = [
    # Master weights and loss scaling.
    """
from mxnet import autograd, gluon
from mxnet.contrib import amp
net.cast("float16")
trainer = gluon.Trainer(params, "sgd", {"multi_precision": True})
amp.init_trainer(trainer)
with autograd.record():
    loss = loss_fn(net(x), y)
    with amp.scale_loss(loss, trainer) as scaled:
        autograd.backward(scaled)
""",
    # float32 training with multi_precision set (a no-op there).
    """
from mxnet import autograd, gluon
trainer = gluon.Trainer(params, "sgd", {"multi_precision": True})
with autograd.record():
    loss = loss_fn(net(x), y)
loss.backward()
""",
    # Master weights turned off explicitly: AMP301's case.
    """
from mxnet import autograd, gluon
net.cast("float16")
trainer = gluon.Trainer(params, "sgd", {"multi_precision": False})
with autograd.record():
    loss = loss_fn(net(x), y)
loss.backward()
""",
]

INVALID = [
    """
import argparse
from mxnet import autograd, gluon
parser = argparse.ArgumentParser()
parser.add_argument("--dtype", type=str, default="float16")
opt = parser.parse_args()
net.cast(opt.dtype)
optimizer_params = {"wd": 1e-4, "momentum": 0.9, "learning_rate": 0.1}
if opt.dtype != "float32":
    optimizer_params["multi_precision"] = True
trainer = gluon.Trainer(net.collect_params(), "nag", optimizer_params)
for data, label in loader:
    with autograd.record():
        outputs = [net(X.astype(opt.dtype, copy=False)) for X in data]
        loss = [loss_fn(yhat, y.astype(opt.dtype, copy=False)) for yhat, y in zip(outputs, label)]
    for l in loss:
        l.backward()  # AMP306
    trainer.step(64)
""",
    """
import gluon_amp as amp
from mxnet import autograd, gluon
net.cast("float16")
trainer = gluon.Trainer(net.collect_params(), "sgd", {"multi_precision": True})
for data, label in loader:
    with autograd.record():
        loss = loss_fn(net(data).astype("float32"), label)
    loss.backward()  # AMP306
    trainer.step(64)
""",
]
