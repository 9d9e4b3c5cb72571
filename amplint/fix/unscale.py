"""AMP305: unscale the gradients right before clipping them.

PyTorch: ``scaler.unscale_(optimizer)`` with the scaler that scaled the loss and the optimizer
it steps. MXNet: ``amp.unscale(trainer)`` with the trainer given to ``amp.scale_loss``.
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
    clip = ctx.site(call)
    earlier = [c for c in ctx.index.calls if c.function is clip.function and c.order < clip.order]
    if clip.qualname in torch.CLIP:
        code = _torch_unscale(ctx, clip, earlier)
    else:
        scaled = [c for c in earlier if mxnet.amp_function(c.qualname, "scale_loss")]
        if not scaled:
            raise Unfixable("no amp.scale_loss before the clipping")
        trainer = scaled[-1].arg(1, "optimizer_or_trainer")
        name = dotted(trainer) if trainer is not None else None
        if name is None:
            raise Unfixable("the trainer given to amp.scale_loss is not a plain name")
        code = f"{amp_prefix(scaled[-1])}.unscale({name})"
    return [insert_before(ctx.statement(call), simple_statement(code + "\n"), code)]


def _torch_unscale(ctx: FixContext, clip: CallSite, earlier: list[CallSite]) -> str:
    scales = [c for c in earlier if c.method == "scale" and "scaler" in (c.name or "").lower()]
    scaler = dotted(scales[-1].receiver) if scales and scales[-1].receiver is not None else None
    if scaler is None:
        raise Unfixable("cannot tell which GradScaler scaled the loss")
    stepped = {
        dotted(site.node.args[0].value)
        for site in ctx.index.calls
        if site.function is clip.function and site.name == f"{scaler}.step" and site.node.args
    }
    if len(stepped) != 1 or None in stepped:
        raise Unfixable(f"cannot tell which optimizer {scaler} steps")
    return f"{scaler}.unscale_({stepped.pop()})"
