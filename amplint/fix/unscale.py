"""AMP305: unscale the gradients right before clipping them.

PyTorch: ``scaler.unscale_(optimizer)`` with the scaler that scaled the loss and the optimizer
it steps. MXNet: ``amp.unscale(trainer)`` with the trainer given to ``amp.scale_loss``. When the
clipping happens in a helper (``self.clip()``), the unscale goes before the helper call.
"""

from __future__ import annotations

import libcst as cst

from amplint.findings import Finding
from amplint.fix.api import Edit, FixContext, Unfixable, simple_statement
from amplint.fix.edits import insert_before
from amplint.fix.trainer_init import amp_prefix
from amplint.frameworks import mxnet, torch
from amplint.index import CallSite, dotted


def fix(finding: Finding, ctx: FixContext) -> list[Edit]:
    call = ctx.node_at(finding, cst.Call)
    top = ctx.site(call)
    timeline = ctx.index.timeline(top.function)
    runs = [i for i, (outer, _) in enumerate(timeline) if outer is top]
    if not runs:
        raise Unfixable("cannot follow the clipping call")
    earlier = [site for _, site in timeline[: runs[0]]]
    clips = {site.qualname for _, site in timeline[runs[0] : runs[-1] + 1]}
    clipping = set(torch.CLIP) | set(mxnet.CLIP)
    if any(site.qualname in clipping for site in _since_last_scale(earlier)):
        # the earlier clipping gets the unscale (a second unscale_ raises): fixed next round
        raise Unfixable("an earlier clipping is unscaled first")
    if clips & set(torch.CLIP):
        code = _torch_unscale(ctx, top, earlier)
    elif clips & set(mxnet.CLIP):
        code = _mxnet_unscale(top, earlier)
    else:
        raise Unfixable("cannot find the clipping call")
    return [insert_before(ctx.statement(call), simple_statement(code + "\n"), code)]


def _since_last_scale(earlier: list[CallSite]) -> list[CallSite]:
    scales = [i for i, c in enumerate(earlier) if _scales(c)]
    return earlier[scales[-1] + 1 :] if scales else []


def _scales(site: CallSite) -> bool:
    torch_scale = site.method == "scale" and "scaler" in (site.name or "").lower()
    return torch_scale or mxnet.amp_function(site.qualname, "scale_loss")


def _name_seen_from(scaled: CallSite, name: str, top: CallSite) -> str:
    """``name`` as written at ``scaled``, if it means the same object where ``top`` runs."""
    if scaled.function is not top.function:
        head = name.split(".")[0]
        if head != "self" and scaled.scope.is_local(head):
            raise Unfixable(f"{name} is local to the helper that scales the loss")
    return name


def _torch_unscale(ctx: FixContext, top: CallSite, earlier: list[CallSite]) -> str:
    scales = [c for c in earlier if _scales(c) and c.method == "scale"]
    scaler = dotted(scales[-1].receiver) if scales and scales[-1].receiver is not None else None
    if scaler is None:
        raise Unfixable("cannot tell which GradScaler scaled the loss")
    scaler = _name_seen_from(scales[-1], scaler, top)
    stepped = {
        dotted(site.node.args[0].value)
        for site in ctx.index.calls
        if site.function is top.function and site.name == f"{scaler}.step" and site.node.args
    }
    if len(stepped) != 1 or None in stepped:
        raise Unfixable(f"cannot tell which optimizer {scaler} steps")
    return f"{scaler}.unscale_({stepped.pop()})"


def _mxnet_unscale(top: CallSite, earlier: list[CallSite]) -> str:
    scaled = [c for c in earlier if mxnet.amp_function(c.qualname, "scale_loss")]
    if not scaled:
        raise Unfixable("no amp.scale_loss before the clipping")
    trainer = scaled[-1].arg(1, "optimizer_or_trainer")
    name = dotted(trainer) if trainer is not None else None
    if name is None:
        raise Unfixable("the trainer given to amp.scale_loss is not a plain name")
    name = _name_seen_from(scaled[-1], name, top)
    return f"{amp_prefix(scaled[-1])}.unscale({name})"
