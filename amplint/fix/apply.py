"""Fixing one file's text: plan every fixable finding on a fresh parse, apply the fixes that do
not overlap, re-parse (rolling back any fix whose result is not valid Python), re-lint, and repeat
until nothing more can be fixed.

Edits replace nodes of the parse, so everything outside a changed node is kept byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Callable

import libcst as cst

from amplint.findings import Finding
from amplint.fix.api import Edit, FixContext, Unfixable

# Each round re-lints the file; fixes that overlap wait for the next round.
MAX_ROUNDS = 8
UNSAFE_HINT = "an unsafe fix is available with --unsafe-fixes (it changes shapes and checkpoints)"
ROLLED_BACK = "the fix did not give valid Python and was rolled back"


def conditional_reason(configurations: tuple[str, ...]) -> str:
    """Why a finding of some configurations only is not fixed automatically."""
    return (
        f"it holds only with {'; or with '.join(configurations)}, and this fix would change "
        "the other configurations too: apply it under the same condition by hand"
    )


@dataclass
class FileFix:
    """The outcome for one file: its text before and after, how many fixes were applied, the
    findings that remain and, for those a fixer looked at, why they were not fixed."""

    original: str
    fixed: str
    applied: int = 0
    remaining: list[Finding] = field(default_factory=list)
    reasons: dict[Finding, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return self.fixed != self.original


@dataclass
class _Plan:
    finding: Finding
    edits: list[Edit]


def fix_source(
    source: str,
    findings: Sequence[Finding],
    lint: Callable[[str], list[Finding]],
    unsafe: bool = False,
) -> FileFix:
    """Fix what can be fixed in ``source``; ``lint`` re-lints a text (same path, context and
    settings as the run that produced ``findings``)."""
    from amplint.fix import FIXERS

    result = FileFix(source, source, remaining=list(findings))
    for _ in range(MAX_ROUNDS):
        candidates = [f for f in result.remaining if f.code in FIXERS and f.cell is None]
        if not candidates:
            break
        try:
            ctx = FixContext.parse(result.fixed)
        except (cst.ParserSyntaxError, RecursionError, MemoryError):
            break
        plans, reasons = _plan(candidates, ctx, unsafe)
        text, applied, failed = _apply(ctx, _disjoint(plans, ctx))
        reasons.update({plan.finding: ROLLED_BACK for plan in failed})
        result.reasons = reasons
        if not applied or text == result.fixed:
            break
        result.fixed = text
        result.applied += len(applied)
        result.remaining = sorted(lint(text))
        result.reasons = {}
    return result


def _plan(
    candidates: list[Finding], ctx: FixContext, unsafe: bool
) -> tuple[list[_Plan], dict[Finding, str]]:
    from amplint import suppressions
    from amplint.fix import FIXERS

    suppressed = suppressions.parse(ctx.source)
    plans, reasons = [], {}
    for finding in candidates:
        fixer = FIXERS[finding.code]
        if finding.configurations and not fixer.neutral:
            reasons[finding] = conditional_reason(finding.configurations)
            continue
        if not fixer.safe and not unsafe:
            reasons[finding] = UNSAFE_HINT
            continue
        try:
            edits = fixer.fix(finding, ctx)
            for edit in edits:
                where = ctx.positions[edit.target]
                for line in range(where.start.line, where.end.line + 1):
                    if suppressed.covers(finding.code, finding.name, (line,)):
                        raise Unfixable(f"the fix would rewrite line {line}, which is suppressed")
        except Unfixable as error:
            reasons[finding] = str(error)
            continue
        except Exception as error:  # a fixer bug must not lose the user's file or stop the run
            reasons[finding] = f"internal error in the fixer ({type(error).__name__}: {error})"
            continue
        if edits:
            plans.append(_Plan(finding, edits))
    return plans, reasons


def _disjoint(plans: list[_Plan], ctx: FixContext) -> list[_Plan]:
    """Plans whose edits touch no node another chosen plan touches (identical edits of two
    plans are merged); the rest wait for the next round."""
    taken: list[tuple[tuple[int, int], tuple[int, int], Edit]] = []
    chosen = []
    for plan in plans:
        own, clash = [], False
        for edit in plan.edits:
            where = ctx.positions[edit.target]
            start = (where.start.line, where.start.column)
            end = (where.end.line, where.end.column)
            same = [e for s, n, e in taken if e.target is edit.target and e.key == edit.key]
            if same:
                continue
            if any(start < n and s < end for s, n, _ in taken):
                clash = True
                break
            own.append((start, end, edit))
        if clash:
            continue
        taken.extend(own)
        chosen.append(_Plan(plan.finding, [e for _, _, e in own]))
    return chosen


class _Transformer(cst.CSTTransformer):
    def __init__(self, edits: list[Edit]) -> None:
        super().__init__()
        self.edits: dict[int, list[Edit]] = {}
        for edit in edits:
            self.edits.setdefault(id(edit.target), []).append(edit)

    def on_leave(self, original_node, updated_node):
        for edit in self.edits.get(id(original_node), ()):
            updated_node = edit.change(updated_node)
        return updated_node


def _render(ctx: FixContext, plans: list[_Plan]) -> str | None:
    """The text with ``plans`` applied, or None when it is not valid Python (or a fixer built a
    tree libcst refuses)."""
    edits = [edit for plan in plans for edit in plan.edits]
    try:
        text = ctx.module.visit(_Transformer(edits)).code
    except Exception:  # CSTValidationError or a fixer bug: roll the plans back
        return None
    return text if parses(text) else None


def parses(text: str) -> bool:
    """Whether ``text`` is valid Python in some supported version (syntax newer than this
    interpreter's counts, as for the check: :func:`amplint.syntax.parse_problem`) and for
    libcst."""
    from amplint.syntax import parse_problem

    if parse_problem(text) is not None:
        return False
    try:
        cst.parse_module(text)
    except (RecursionError, MemoryError, cst.ParserSyntaxError):
        return False
    return True


def _apply(ctx: FixContext, plans: list[_Plan]) -> tuple[str, list[_Plan], list[_Plan]]:
    """The text with ``plans`` applied; plans whose result does not parse are rolled back one by
    one. Returns (text, applied plans, rolled-back plans)."""
    if not plans:
        return ctx.source, [], []
    text = _render(ctx, plans)
    if text is not None:
        return text, plans, []
    applied: list[_Plan] = []
    failed: list[_Plan] = []
    text = ctx.source
    for plan in plans:
        trial = _render(ctx, [*applied, plan])
        if trial is not None:
            applied.append(plan)
            text = trial
        else:
            failed.append(plan)
    return text, applied, failed
