"""Gradient clipping on gradients that are still multiplied by the loss scale.

Why it matters: after a scaled backward the gradients are `scale` times too large (2^16 by
default). Clipping them to a norm of 1.0 then clips almost everything, by a factor that changes
whenever the scale does: the effective learning rate collapses and training stalls.

Checked: PyTorch `clip_grad_norm_`/`clip_grad_value_` after `scaler.scale(loss)` without
`scaler.unscale_(optimizer)` in between; Gluon `clip_global_norm` (and GluonNLP's
`clip_grad_global_norm`) after `amp.scale_loss` without `amp.unscale(trainer)` in between.
The order is followed through functions of the same file: clipping in a helper called between
backward and step is reported at that call, in the configurations in which the GradScaler is
enabled and the scaling call runs (`GradScaler(enabled=args.amp)`, or `amp.scale_loss` under
`if args.dtype == 'float16':`: with that option). Not reported where the threshold itself is
multiplied by the loss scale, in place or through a variable, as GluonNLP's BERT scripts do
(also when only the float16 branch multiplies it).

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

from amplint.conditions import ALWAYS, NEVER
from amplint.frameworks import mxnet, torch
from amplint.index import CallSite, Scope, dotted
from amplint.rules.api import Issue, RuleContext
from amplint.scaling import scaler_enabled


def check(ctx: RuleContext) -> Iterator[Issue]:
    """Gradient clipping between a scaled backward and the unscale."""
    index = ctx.index
    reported: set[int] = set()
    for clip in index.calls:
        if clip.qualname in torch.CLIP:
            threshold = clip.arg(1, "max_norm") or clip.arg(1, "clip_value")
            scales, unscales, fix_hint = _torch_scale, _torch_unscale, _TORCH_HINT
        elif clip.qualname in mxnet.CLIP:
            threshold = clip.arg(1, "max_norm")
            scales, unscales, fix_hint = _amp_scale, _amp_unscale, _MXNET_HINT
        else:
            continue
        unscaled = _unscaled_threshold(threshold, clip.scope, clip.order, ctx, 0)
        if not unscaled.possible:
            continue
        for runner in index.runners(clip):
            position = index.position(runner, clip)
            if position is None:
                continue
            timeline = index.timeline(runner)
            top = timeline[position][0]
            earlier = timeline[:position]
            scaled = [outer for outer, site in earlier if scales(site)]
            if not scaled or any(unscales(site) for _, site in earlier):
                continue
            condition = NEVER
            for _, site in earlier:
                if scales(site):
                    enabled = scaler_enabled(site, ctx.model)
                    condition = condition | (enabled & ctx.model.cases.runs(site))
            condition = condition & ctx.model.cases.runs(clip) & unscaled
            if not condition.possible:
                continue
            if top is not clip and all(outer is top for outer in scaled):
                continue  # scaled and clipped inside one helper: reported there
            if id(top.node) in reported:
                break
            reported.add(id(top.node))
            if top is clip:
                yield Issue(clip.node, f"{_MESSAGE}; {fix_hint}", condition=condition)
            else:
                yield Issue(
                    top.node,
                    f"{top.name}() {_HELPER_MESSAGE}; {fix_hint}",
                    (clip.node, "clipping"),
                    condition=condition,
                )
            break


_MESSAGE = "gradients are clipped while still multiplied by the loss scale"
_HELPER_MESSAGE = "clips gradients that are still multiplied by the loss scale"
_TORCH_HINT = "call scaler.unscale_(optimizer) before clipping"
_MXNET_HINT = "call amp.unscale(trainer) before clipping"


def _torch_scale(site: CallSite) -> bool:
    return site.method == "scale" and "scaler" in (site.name or "").lower()


def _torch_unscale(site: CallSite) -> bool:
    return site.method == "unscale_"


def _amp_scale(site: CallSite) -> bool:
    return mxnet.amp_function(site.qualname, "scale_loss")


def _amp_unscale(site: CallSite) -> bool:
    return mxnet.amp_function(site.qualname, "unscale")


def _unscaled_threshold(expr, scope: Scope, order: int | None, ctx: RuleContext, depth: int):
    """Where the threshold is not multiplied by something named like the loss scale, written
    in place or through a variable (``max_norm = args.clip * loss_scale`` in the float16
    branch, ``max_norm = args.clip`` in the other: the other branch)."""
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Multiply):
        return NEVER if _mentions_scale(expr.left) or _mentions_scale(expr.right) else ALWAYS
    name = dotted(expr) if expr is not None else None
    definitions = ctx.model.cases.definitions(name, scope, order) if name and depth < 4 else []
    if not definitions:
        return ALWAYS
    found = NEVER
    for definition in definitions:
        if definition.expr is None:
            found = found | definition.condition
        else:
            inner = _unscaled_threshold(
                definition.expr, definition.scope, definition.order, ctx, depth + 1
            )
            found = found | (definition.condition & inner)
    return found


def _mentions_scale(node: cst.CSTNode) -> bool:
    if isinstance(node, cst.Name) and "scale" in node.value.lower():
        return True
    if isinstance(node, cst.Attribute) and "scale" in node.attr.value.lower():
        return True
    return any(_mentions_scale(child) for child in node.children)


VALID = [
    # Across functions: the helper that clips runs after the unscale.
    """
import torch
scaler = torch.cuda.amp.GradScaler()
def clip_gradients(model):
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
def backward(loss):
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
def train_step(model, x, y):
    with torch.autocast("cuda"):
        loss = criterion(model(x), y)
    backward(loss)
    clip_gradients(model)
    scaler.step(optimizer)
""",
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
    # ... or through a variable.
    """
import mxnet as mx
from mxnet import autograd, gluon
from mxnet.contrib import amp
with autograd.record():
    loss = model(x)
    with amp.scale_loss(loss, trainer) as scaled:
        autograd.backward(scaled)
threshold = args.max_norm * trainer._amp_loss_scaler.loss_scale
gluon.utils.clip_global_norm(grads, threshold)
""",
    # A GradScaler that is off in this configuration leaves the gradients unscaled.
    """
import torch
scaler = torch.cuda.amp.GradScaler(enabled=False)
scaler.scale(loss).backward()
torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
scaler.step(optimizer)
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
    # Clipping in a helper called between backward and step.
    """
from mxnet import autograd, gluon
from mxnet.contrib import amp
def clip(net, max_norm):
    grads = [p.grad() for p in net.collect_params().values()]
    gluon.utils.clip_global_norm(grads, max_norm)
def train_step(net, trainer, x, y):
    with autograd.record():
        loss = loss_fn(net(x), y)
        with amp.scale_loss(loss, trainer) as scaled:
            autograd.backward(scaled)
    clip(net, 1.0)  # AMP305
    trainer.step(x.shape[0])
""",
    """
import torch
class Trainer:
    def __init__(self):
        self.scaler = torch.cuda.amp.GradScaler()
    def backward(self, loss):
        self.scaler.scale(loss).backward()
    def clip(self):
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
    def step(self, x, y):
        with torch.autocast("cuda"):
            loss = self.criterion(self.model(x), y)
        self.backward(loss)
        torch.nn.utils.clip_grad_value_(self.model.parameters(), 0.5)  # AMP305
        self.clip()  # AMP305
        self.scaler.step(self.optimizer)
""",
]
