"""A GradScaler bypassed: `optimizer.step()` after a scaled backward, or `scaler.update()` missing.

Why it matters: `scaler.scale(loss).backward()` leaves every gradient multiplied by the loss
scale (65536 at first). Only `scaler.step(optimizer)` divides them back and skips the step when
they hold inf/NaN; `optimizer.step()` applies them as they are — in effect a learning rate
65536 times too large (Adam nearly cancels the factor, not the infs), and one overflow writes
inf/NaN into the weights. Called after `scaler.step(optimizer)` it applies the gradients a
second time, also on the steps the scaler skipped. Without `scaler.update()` the scale never
adapts and the second `scaler.step()` raises `RuntimeError: step() has already been called since
the last update()`.

Checked: `<optimizer>.step()` that runs after `<scaler>.scale(...)` in the same function or
through helpers of the same file (reported at the helper call); not when it is the other branch
of an `if` whose first branch steps through the scaler, nor after the gradients are unscaled
(`scaler.unscale_`) or replaced by an unscaled backward or cleared. `update()` is looked for in
the whole file (another method of the class counts); a scaler handed to another function or
object, or one that arrives as a parameter, is not reported for it. A scaler created with
`enabled=False` is a no-op and never reported; one created with `enabled=<option>` is reported
for the configurations that enable it. Helpers of other modules (a `Trainer` base class, a
callback framework, Accelerate's or Lightning's optimizer wrappers) are not followed: code that
uses no scaler itself is not reported.

Example:

    scaler = torch.cuda.amp.GradScaler()
    with torch.autocast("cuda"):
        loss = criterion(model(x), y)
    scaler.scale(loss).backward()
    optimizer.step()                     # AMP307

Fix: `scaler.step(optimizer)` followed by `scaler.update()` (`--fix` does this where the scaler
exists on every path to the step, removes a second step after `scaler.step`, and adds a missing
`scaler.update()` after the last `scaler.step(...)`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import libcst as cst

from amplint.index import IF_BODY, IF_ELSE, CallSite, FileIndex, Scope, dotted
from amplint.rules.api import Issue, RuleContext
from amplint.scaling import backward_calls, loss_from_caller, scaled
from amplint.switches import GRAD_SCALERS

# Optimizers whose update divides by a running gradient magnitude: the scale nearly cancels.
ADAPTIVE = {
    f"torch.optim.{name}"
    for name in ("Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Adagrad", "Adadelta", "RMSprop")
}
_OPTIMIZER = re.compile(r"optim|^opt$|^opt_|_opt$")
_NOT_OPTIMIZER = re.compile(r"sched|scaler|engine|trainer|accelerator|(^|_)(ema|swa)($|_)")
_BRANCHES = (IF_BODY, IF_ELSE)


def check(ctx: RuleContext) -> Iterator[Issue]:
    """Optimizer steps that bypass a GradScaler, and scalers whose update never runs."""
    scalers = _Scalers(ctx)
    if not scalers.used:
        return
    index = ctx.index
    found = list(backward_calls(index))
    backwards = {id(b.site) for b in found}
    unscaled = {
        id(b.site) for b in found if not scaled(b, ctx.model).possible and not loss_from_caller(b)
    }
    reported: set[int] = set()
    for scale in index.calls:
        if scale.method != "scale" or not scalers.is_scaler(scale):
            continue
        enabled = scalers.enabled(scale)
        if enabled is False:
            continue
        for runner in index.runners(scale):
            issue = _bypass(scalers, scale, runner, backwards, unscaled, reported)
            if issue is not None:
                issue.message += _condition(enabled)
                yield issue
    yield from _missing_update(scalers)


@dataclass(frozen=True)
class _Step:
    """One call of a function's timeline, with the call of that function that runs it."""

    top: CallSite
    site: CallSite

    def branches(self) -> set[tuple[str, int]]:
        """The ``if`` branches it runs in: those of the call in the function, and inside the
        helper those of the call itself (a path condition, roughly)."""
        found = {(kind, id(node)) for kind, node in self.top.ancestors if kind in _BRANCHES}
        if self.site is not self.top:
            found |= {(kind, id(node)) for kind, node in self.site.ancestors if kind in _BRANCHES}
        return found


def _exclusive(a: _Step, b: _Step) -> bool:
    """Two calls on the two sides of one ``if``: they never run in the same pass."""
    kinds = {node: kind for kind, node in a.branches()}
    return any(node in kinds and kinds[node] != kind for kind, node in b.branches())


def _on_every_path_of(a: _Step, b: _Step) -> bool:
    """``a`` runs whenever ``b`` does (it is in no branch ``b`` is not in)."""
    return a.branches() <= b.branches()


def _bypass(
    scalers: _Scalers,
    scale: CallSite,
    runner: cst.CSTNode | None,
    backwards: set[int],
    unscaled: set[int],
    reported: set[int],
) -> Issue | None:
    """The first plain optimizer step after the backward of the loss ``scale`` scaled, in
    ``runner``'s timeline, if any."""
    index = scalers.index
    position = index.position(runner, scale)
    if position is None:
        return None
    timeline = [_Step(top, site) for top, site in index.timeline(runner)]
    scaled = timeline[position]
    backward = _consuming_backward(timeline, position, backwards)
    if backward is None:
        return None  # the scaled loss goes elsewhere
    scaler_steps = [s for s in timeline if s.site.method == "step" and scalers.is_scaler(s.site)]
    stepped: list[_Step] = []
    for later in timeline[max(backward, position) + 1 :]:
        site = later.site
        if _exclusive(scaled, later):
            continue
        if _clears(site, scalers, unscaled) and _on_every_path_of(later, scaled):
            return None  # the gradients are not the scaled ones any more
        if site.method != "step":
            continue
        if scalers.is_scaler(site):
            stepped.append(later)
            continue
        optimizer = _optimizer(site, index)
        if optimizer is None or any(_exclusive(later, other) for other in scaler_steps):
            continue  # not an optimizer, or `if scaler: scaler.step(opt) else: opt.step()`
        if id(later.top.node) in reported or (later.top is scaled.top and later.top is not site):
            return None  # reported, or reported in the helper that both scales and steps
        reported.add(id(later.top.node))
        return _issue(scalers, scale, scaled, later, optimizer, stepped, timeline, unscaled)
    return None


def _consuming_backward(timeline: list[_Step], position: int, backwards: set[int]) -> int | None:
    """Where the scaled loss is backwarded: ``scaler.scale(loss).backward()`` (listed just
    before the scale call), or the first backward after it on the same path."""
    scaled = timeline[position]
    if position and timeline[position - 1].site.receiver is scaled.site.node:
        return position - 1
    for number in range(position + 1, len(timeline)):
        later = timeline[number]
        if id(later.site) in backwards and not _exclusive(scaled, later):
            return number
    return None


def _clears(site: CallSite, scalers: _Scalers, unscaled: set[int]) -> bool:
    """An unscaled backward, ``scaler.unscale_(...)`` or ``zero_grad()``."""
    if site.method == "unscale_":
        return scalers.is_scaler(site)
    return site.method == "zero_grad" or id(site) in unscaled


def _optimizer(site: CallSite, index: FileIndex) -> str | None:
    """The optimizer ``site`` steps (``optimizer`` in ``optimizer.step()``), if it is one."""
    name = dotted(site.receiver) if site.receiver is not None else None
    if name is None:
        return None
    made = {call.qualname or "" for call in index.bound_calls(name, site.scope)}
    if any(q.startswith("torch.optim.") and ".lr_scheduler." not in q for q in made):
        return name
    last = name.rsplit(".", 1)[-1].lower()
    return name if _OPTIMIZER.search(last) and not _NOT_OPTIMIZER.search(last) else None


def _adaptive(site: CallSite, optimizer: str, index: FileIndex) -> str | None:
    """``Adam`` when the optimizer is made by an adaptive optimizer of torch.optim here."""
    made = [call.qualname for call in index.bound_calls(optimizer, site.scope)]
    found = [q for q in made if q in ADAPTIVE]
    return found[0].rsplit(".", 1)[1] if found and len(found) == len(made) else None


def _issue(
    scalers: _Scalers,
    scale: CallSite,
    scaled: _Step,
    later: _Step,
    optimizer: str,
    stepped: list[_Step],
    timeline: list[_Step],
    unscaled: set[int],
) -> Issue:
    scaler = dotted(scale.receiver) or "scaler"
    site, top = later.site, later.top
    again = [s for s in stepped if dotted(s.site.arg(0, "optimizer")) == optimizer]
    if again:
        first = again[0].site
        message = (
            f"{optimizer}.step() steps again after {scaler}.step({optimizer}): the gradients are "
            "applied twice, also on the steps the scaler skips for inf/NaN; remove it"
        )
        origin: tuple[cst.CSTNode, str] = (first.node, f"{scaler}.step")
        fix = {"remove": f"{optimizer}.step()"}
    else:
        adaptive = _adaptive(site, optimizer, scalers.index)
        applies = (
            f"{adaptive} nearly cancels the loss scale, but it steps on inf/NaN gradients too"
            if adaptive
            else "it applies gradients still multiplied by the loss scale and steps on inf/NaN "
            "gradients too"
        )
        message = (
            f"{optimizer}.step() bypasses the GradScaler: {applies}; call "
            f"{scaler}.step({optimizer}) and {scaler}.update() instead"
        )
        origin = (scale.node, f"scaled by {scaler}.scale")
        fix = {"replace": f"{scaler}.step({optimizer})"}
        if not scalers.updated:
            fix["update"] = f"{scaler}.update()"
    if top is not site:
        message = f"{top.name}() steps the optimizer directly: " + message
        origin = (site.node, f"{optimizer}.step()")
        fix = {"unfixable": f"the optimizer steps inside {top.name}(), which may serve others"}
    elif not again:
        why = _why_not_replaced(scalers, scale, scaled, later, timeline, unscaled, scaler)
        if why is not None:
            fix = {"unfixable": why}
    return Issue(top.node, message, origin, fix)


def _why_not_replaced(
    scalers: _Scalers,
    scale: CallSite,
    scaled: _Step,
    later: _Step,
    timeline: list[_Step],
    unscaled: set[int],
    scaler: str,
) -> str | None:
    """Why ``opt.step()`` cannot simply become ``scaler.step(opt)`` (None: it can)."""
    site = later.site
    if site.node.args:
        return "the step takes arguments (a closure), which GradScaler.step does not support"
    head = scaler.split(".")[0]
    if site.function is not scale.function:
        if head == "self" and _owner(site.scope) != _owner(scale.scope):
            return f"{scaler} belongs to another class than this step"
        if head != "self" and scale.scope.is_local(head):
            return f"{scaler} is local to the function that scales the loss"
    plain_path = any(
        id(s.site) in unscaled and _exclusive(s, scaled) and not _exclusive(s, later)
        for s in timeline
    )
    if plain_path and not scalers.always_made(scaler, site.scope):
        return (
            f"the step also runs without {scaler} (the unscaled branch): create it on every path "
            "with GradScaler(enabled=...), then call it"
        )
    return None


def _owner(scope: Scope | None) -> str | None:
    while scope is not None and scope.owner is None:
        scope = scope.parent
    return scope.owner if scope is not None else None


def _missing_update(scalers: _Scalers) -> Iterator[Issue]:
    """``scaler.step(...)`` of a scaler made in this file whose ``update()`` never runs."""
    if scalers.updated:
        return
    steps: dict[str, list[CallSite]] = {}
    for site in scalers.index.calls:
        if site.method == "step" and scalers.is_scaler(site):
            steps.setdefault(dotted(site.receiver) or "", []).append(site)
    for name, sites in steps.items():
        last = max(sites, key=lambda site: site.order)
        made_here = scalers.always_made(name, last.scope, unconditional=False)
        if not name or not made_here or scalers.escapes(name):
            continue
        enabled = scalers.enabled(last)
        if enabled is False:
            continue
        yield Issue(
            last.node,
            f"{name}.update() never runs: the loss scale never adapts, and the next "
            f"{name}.step() raises RuntimeError (step() has already been called since the last "
            f"update()); call {name}.update() after {name}.step(...)" + _condition(enabled),
            fix={"insert": f"{name}.update()"},
        )


def _condition(enabled: bool | str | None) -> str:
    return f" (when {enabled} is true)" if isinstance(enabled, str) else ""


class _Scalers:
    """The GradScalers of a file: which names are scalers, how they are made, and whether their
    ``update()`` runs."""

    def __init__(self, ctx: RuleContext) -> None:
        self.ctx = ctx
        self.index = index = ctx.index
        self._torch = any(q.split(".")[0] == "torch" for q in index.imports.values())
        self.used = any(site.method == "scale" and self.is_scaler(site) for site in index.calls)
        self.updated = any(s.method == "update" and self.is_scaler(s) for s in index.calls)

    def is_scaler(self, site: CallSite) -> bool:
        """Whether the receiver of ``site`` is a GradScaler: made by one of ``GRAD_SCALERS`` in
        this file, or named like one in a file that uses torch."""
        name = dotted(site.receiver) if site.receiver is not None else None
        if name is None:
            return False
        if any(call.qualname in GRAD_SCALERS for call in self.bindings(name, site.scope)):
            return True
        return self._torch and "scaler" in name.rsplit(".", 1)[-1].lower()

    def bindings(self, name: str, scope: Scope) -> list[CallSite]:
        """The calls whose result is bound to ``name`` (``self.x``: in any method of the class)."""
        if not name.startswith("self."):
            return self.index.bound_calls(name, scope)
        info = self.index.classes.get(_owner(scope) or "")
        methods = info.methods.values() if info is not None else ()
        values = [v for method in methods for v in method.assigned.get(name, [])]
        return [site for site in map(self.index.site, values) if site is not None]

    def always_made(self, name: str, scope: Scope, unconditional: bool = True) -> bool:
        """Every binding of ``name`` is a GradScaler made in this file (outside any ``if``)."""
        if name.startswith("self."):
            info = self.index.classes.get(_owner(scope) or "")
            methods = info.methods.values() if info is not None else ()
            values = [v for method in methods for v in method.assigned.get(name, [])]
        else:
            values = self.index.values_of(name, scope)
        sites = [self.index.site(value) for value in values]
        return bool(sites) and all(
            site is not None
            and site.qualname in GRAD_SCALERS
            and not (unconditional and any(kind in _BRANCHES for kind, _ in site.ancestors))
            for site in sites
        )

    def enabled(self, site: CallSite) -> bool | str | None:
        """False when every GradScaler behind ``site``'s receiver is made with
        ``enabled=False``; the code of ``enabled=`` when it depends on the configuration; None
        when it is on (or not known)."""
        name = dotted(site.receiver) if site.receiver is not None else None
        made = [c for c in self.bindings(name or "", site.scope) if c.qualname in GRAD_SCALERS]
        if not made or len(made) != len(self.bindings(name or "", site.scope)):
            return None
        states = [self._enabled(call) for call in made]
        if all(state is False for state in states):
            return False
        if any(state is None for state in states):
            return None
        return next(state for state in states if isinstance(state, str))

    def _enabled(self, call: CallSite) -> bool | str | None:
        """False for ``enabled=False``, and for a scale of 1 that nothing updates (a no-op)."""
        init, enabled = GRAD_SCALERS[call.qualname or ""]
        scale = self.ctx.fold(call.arg(init, "init_scale"), call.scope)
        if scale is not None and scale.value == 1 and not self.updated:
            return False
        expr = call.arg(enabled, "enabled")
        if expr is None:
            return None
        value = self.ctx.fold(expr, call.scope)
        if value is not None and not isinstance(value.value, str):
            return None if value.value else False
        return cst.Module([]).code_for_node(expr)

    def escapes(self, name: str) -> bool:
        """``name`` is handed to other code: an argument, a return value, another name."""
        index = self.index
        passed = any(dotted(a.value) == name for site in index.calls for a in site.node.args)
        copied = any(dotted(assign.value) == name for assign in index.assigns)
        scopes = [index.module_scope, *index.functions.values()]
        scopes += [m for info in index.classes.values() for m in info.methods.values()]
        returned = any(dotted(value) == name for scope in scopes for value in scope.returns)
        return passed or copied or returned


VALID = [
    # The documented pattern; gradient accumulation steps every N iterations.
    """
import torch
scaler = torch.cuda.amp.GradScaler()
for i, (x, y) in enumerate(loader):
    with torch.autocast("cuda"):
        loss = criterion(model(x), y) / accumulate
    scaler.scale(loss).backward()
    if (i + 1) % accumulate == 0:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad()
""",
    # Either branch steps its own way.
    """
import torch
def train_step(model, x, y, optimizer, scaler=None):
    with torch.autocast("cuda", enabled=scaler is not None):
        loss = criterion(model(x), y)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
""",
    # A disabled scaler is a no-op: the plain step is fine.
    """
import torch
scaler = torch.cuda.amp.GradScaler(enabled=False)
with torch.autocast("cuda", dtype=torch.bfloat16):
    loss = criterion(model(x), y)
scaler.scale(loss).backward()
optimizer.step()
""",
    # The step and the update live in other methods of the class.
    """
import torch
class Trainer:
    def __init__(self, model, optimizer):
        self.scaler = torch.cuda.amp.GradScaler()
        self.optimizer = optimizer
    def backward(self, loss):
        (self.scaler.scale(loss) if self.scaler else loss).backward()
    def optimizer_step(self):
        if self.scaler:
            self.scaler.step(self.optimizer)
        else:
            self.optimizer.step()
    def after_step(self):
        self.scaler.update()
    def train_step(self, x, y):
        with torch.autocast("cuda"):
            loss = self.criterion(self.model(x), y)
        self.backward(loss)
        self.optimizer_step()
        self.after_step()
""",
    # GAN: the discriminator steps through the scaler, the generator's loss is not scaled.
    """
import torch
scaler = torch.cuda.amp.GradScaler()
with torch.autocast("cuda"):
    loss_d = d_loss(netD, real, fake.detach())
scaler.scale(loss_d).backward()
scaler.step(optim_d)
scaler.update()
loss_g = g_loss(netD, fake)
loss_g.backward()
optim_g.step()
""",
    # A step before any backward (to quiet the scheduler's warning) applies nothing.
    """
import torch
optimizer.step()
scheduler.step()
scaler = torch.cuda.amp.GradScaler()
for x, y in loader:
    with torch.autocast("cuda"):
        loss = criterion(model(x), y)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
""",
    # The scaler is handed to a helper of another module, which may update it.
    """
import torch
from engine import optimizer_step
scaler = torch.cuda.amp.GradScaler()
with torch.autocast("cuda"):
    loss = criterion(model(x), y)
scaler.scale(loss).backward()
scaler.step(optimizer)
optimizer_step(optimizer, scaler)
""",
]

INVALID = [
    """
import torch
scaler = torch.cuda.amp.GradScaler()
for x, y in loader:
    optimizer.zero_grad()
    with torch.autocast("cuda"):
        loss = criterion(model(x), y)
    scaler.scale(loss).backward()
    optimizer.step()  # AMP307
""",
    # Only the AMP branch scales; the step after both branches is plain.
    """
import torch
def train(model, loader, optimizer, use_amp):
    scaler = torch.cuda.amp.GradScaler(enabled=use_amp)
    for x, y in loader:
        with torch.autocast("cuda", enabled=use_amp):
            loss = criterion(model(x), y)
        if use_amp:
            scaler.scale(loss).backward()
        else:
            loss.backward()
        optimizer.step()  # AMP307
""",
    # A second step after scaler.step applies the gradients again.
    """
import torch
scaler = torch.cuda.amp.GradScaler()
with torch.autocast("cuda"):
    loss = criterion(model(x), y)
scaler.scale(loss).backward()
scaler.step(optimizer)
scaler.update()
optimizer.step()  # AMP307
""",
    # update() never runs (the scaler is made here and kept here).
    """
import torch
def train(model, loader, optimizer):
    scaler = torch.cuda.amp.GradScaler()
    for x, y in loader:
        optimizer.zero_grad()
        with torch.autocast("cuda"):
            loss = criterion(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)  # AMP307
""",
    # The plain step hides in a helper of the same class.
    """
import torch
class Trainer:
    def __init__(self):
        self.grad_scaler = torch.amp.GradScaler("cuda")
    def step_optimizer(self):
        self.optimizer.step()
        self.optimizer.zero_grad()
    def train_step(self, x, y):
        with torch.autocast("cuda"):
            loss = self.criterion(self.model(x), y)
        self.grad_scaler.scale(loss).backward()
        self.step_optimizer()  # AMP307
        self.grad_scaler.update()
""",
]
