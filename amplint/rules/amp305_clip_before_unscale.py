"""Gradient clipping on gradients that are still multiplied by the loss scale.

Why it matters: after a scaled backward the gradients are `scale` times too large (2^16 by
default). Clipping them to a norm of 1.0 then clips almost everything, by a factor that changes
whenever the scale does: the effective learning rate collapses and training stalls.

Checked: PyTorch `clip_grad_norm_`/`clip_grad_value_` in a function that scales with
`scaler.scale(loss)` but does not call `scaler.unscale_(optimizer)` before clipping; Gluon
`clip_global_norm` (and GluonNLP's `clip_grad_global_norm`) in a function that uses
`amp.scale_loss` without `amp.unscale(trainer)` first. Not reported when the threshold itself
is multiplied by the loss scale, as GluonNLP's BERT scripts do.

Example:

    scaler.scale(loss).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)    # AMP305
    scaler.step(optimizer)

Fix: unscale first — `scaler.unscale_(optimizer)` (PyTorch) or `amp.unscale(trainer)`
(MXNet) right before clipping — or multiply the threshold by the current loss scale.
"""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from amplint.frameworks import mxnet, torch
from amplint.index import CallSite
from amplint.rules.api import Issue, RuleContext

CODE = "AMP305"
NAME = "clip-before-unscale"


def check(ctx: RuleContext) -> Iterator[Issue]:
    calls = ctx.index.calls
    for clip in calls:
        if clip.qualname in torch.CLIP:
            scaled = [c for c in _same_function(calls, clip) if c.method == "scale"]
            scaled = [c for c in scaled if "scaler" in (c.name or "").lower()]
            unscaled = [c for c in _same_function(calls, clip) if c.method == "unscale_"]
            threshold = clip.arg(1, "max_norm") or clip.arg(1, "clip_value")
            fix_hint = "call scaler.unscale_(optimizer) before clipping"
        elif clip.qualname in mxnet.CLIP:
            scaled = [
                c
                for c in _same_function(calls, clip)
                if mxnet.amp_function(c.qualname, "scale_loss")
            ]
            unscaled = [
                c for c in _same_function(calls, clip) if mxnet.amp_function(c.qualname, "unscale")
            ]
            threshold = clip.arg(1, "max_norm")
            fix_hint = "call amp.unscale(trainer) before clipping"
        else:
            continue
        if not scaled or any(u.order < clip.order for u in unscaled):
            continue
        if not any(s.order < clip.order for s in scaled) or _scaled_threshold(threshold):
            continue
        yield Issue(
            clip.node, f"gradients are clipped while still multiplied by the loss scale; {fix_hint}"
        )


def _same_function(calls: list[CallSite], site: CallSite) -> list[CallSite]:
    function = site.function
    return [c for c in calls if c.function is function]


def _scaled_threshold(expr) -> bool:
    """A threshold multiplied by something named like the loss scale."""
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Multiply):
        return _mentions_scale(expr.left) or _mentions_scale(expr.right)
    return False


def _mentions_scale(node: cst.CSTNode) -> bool:
    if isinstance(node, cst.Name) and "scale" in node.value.lower():
        return True
    if isinstance(node, cst.Attribute) and "scale" in node.attr.value.lower():
        return True
    return any(_mentions_scale(child) for child in node.children)


VALID = [
    """
import torch
scaler = torch.cuda.amp.GradScaler()
with torch.autocast("cuda"):
    loss = criterion(model(x), y)
scaler.scale(loss).backward()
scaler.unscale_(optimizer)
torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
scaler.step(optimizer)
scaler.update()
""",
    # Clipping without any loss scaling (float32 or bfloat16 training).
    """
import torch
loss.backward()
torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
optimizer.step()
""",
    # The threshold is multiplied by the loss scale (GluonNLP BERT).
    """
import mxnet as mx
from mxnet import autograd, gluon
from mxnet.contrib import amp
with autograd.record():
    loss = model(x)
    with amp.scale_loss(loss, trainer) as scaled:
        autograd.backward(scaled)
loss_scale = trainer._amp_loss_scaler.loss_scale
gluon.utils.clip_global_norm(grads, max_norm * loss_scale)
""",
    """
import gluon_amp as amp
from mxnet import autograd, gluon
with autograd.record():
    loss = model(x)
    with amp.scale_loss(loss, trainer) as scaled:
        autograd.backward(scaled)
amp.unscale(trainer)
gluon.utils.clip_global_norm(grads, 1.0)
""",
]

INVALID = [
    """
import torch
scaler = torch.cuda.amp.GradScaler()
def train_step(model, x, y):
    with torch.autocast("cuda"):
        loss = criterion(model(x), y)
    scaler.scale(loss).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # AMP305
    scaler.step(optimizer)
""",
    """
from mxnet import autograd, gluon
from mxnet.contrib import amp
amp.init()
amp.init_trainer(trainer)
with autograd.record():
    loss = loss_fn(net(x), y)
    with amp.scale_loss(loss, trainer) as scaled:
        autograd.backward(scaled)
grads = [p.grad() for p in net.collect_params().values()]
gluon.utils.clip_global_norm(grads, 1.0)  # AMP305
trainer.step(batch_size)
""",
]
