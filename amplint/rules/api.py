"""What a rule is and what it gets: the file's index and where it runs in reduced precision."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Callable

import libcst as cst

from amplint.index import CallSite, FileIndex, Scope
from amplint.precision import LOCAL_SWITCHES, Signal, in_float32_branch
from amplint.project import Context
from amplint.settings import Settings
from amplint.values import Value, fold


@dataclass
class Issue:
    """What a rule reports: the node, the message, and optionally where a value was written
    (``origin``: node and a short description) and fix data for codemods."""

    node: cst.CSTNode
    message: str
    origin: tuple[cst.CSTNode, str] | None = None
    fix: dict[str, Any] | None = None


@dataclass(frozen=True)
class Misaligned:
    """A dimension or batch size that is not a multiple of the alignment: its value, the next
    multiple, the precisions it runs in ("bfloat16/float16") and where it was written."""

    size: int
    rounded: int
    precision: str
    origin: tuple[cst.CSTNode, str] | None


@dataclass
class RuleContext:
    """Everything a rule may look at for one file."""

    path: str
    source: str
    index: FileIndex
    settings: Settings
    context: Context
    signals: list[Signal]
    precisions: frozenset[str] = field(init=False)
    # Training precisions of the file's strong signals: those that count everywhere, and local
    # switches (autocast, ``.half()``) inside functions, by id of the function.
    _everywhere: frozenset[str] = field(init=False, repr=False)
    _local: dict[int, frozenset[str]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        own = {signal.precision for signal in self.signals}
        assumed = {self.settings.assume_amp} if self.settings.assume_amp else set()
        self.precisions = frozenset(own | set(self.context.precisions) | assumed)
        everywhere, local = set(assumed), {}
        for signal in self.signals:
            if not signal.strong:
                continue
            function = signal.site.function
            if signal.what not in LOCAL_SWITCHES or function is None:
                everywhere.add(signal.precision)
            else:
                local[id(function)] = local.get(id(function), frozenset()) | {signal.precision}
        self._everywhere, self._local = frozenset(everywhere), local

    def precisions_at(self, site: CallSite) -> frozenset[str]:
        """Reduced precisions the code of ``site`` runs in (empty on a float32 branch)."""
        if not self.precisions or in_float32_branch(site):
            return frozenset()
        return self.precisions

    def training_precisions_at(self, site: CallSite) -> frozenset[str]:
        """Precisions this file itself trains in: its own model-level signals (``amp.init``,
        ``.cast``, autocast, ``.half()``, policies, options) or ``--assume-amp``; not what an
        importer says, nor a float16 tensor created as data. Local switches (autocast,
        ``.half()``) count in their own function and from module level only: a ``.half()`` in
        an export helper says nothing about the training loop beside it."""
        if in_float32_branch(site):
            return frozenset()
        return self._everywhere | self._local.get(id(site.function), frozenset())

    def provenance(self) -> str:
        """Why this file counts as reduced precision when the file itself does not say so."""
        if self.context.reason and not any(s.strong for s in self.signals):
            return f" [{self.context.reason}]"
        return ""

    def fold(self, expr: cst.BaseExpression | None, scope: Scope) -> Value | None:
        """The value of ``expr`` as seen from ``scope`` (see :mod:`amplint.values`)."""
        return fold(expr, self.index, scope)

    def misaligned(self, expr: cst.BaseExpression | None, site: CallSite) -> Misaligned | None:
        """The positive integer ``expr`` of the call ``site`` when it is not a multiple of the
        alignment setting (AMP201, AMP202); None for aligned or unknown values."""
        value = self.fold(expr, site.scope)
        if value is None or isinstance(value.value, bool) or not isinstance(value.value, int):
            return None
        size, multiple = value.value, self.settings.alignment
        if size <= 0 or size % multiple == 0:
            return None
        origin = (value.origin, value.via or "value") if value.origin is not None else None
        precision = "/".join(sorted(self.precisions_at(site)))
        return Misaligned(size, -(-size // multiple) * multiple, precision, origin)

    def calls(self, *qualnames: str) -> Iterator[CallSite]:
        """Calls whose callee resolves to one of ``qualnames``."""
        wanted = set(qualnames)
        return (site for site in self.index.calls if site.qualname in wanted)


@dataclass(frozen=True)
class Rule:
    """A rule: its code and name (a contract), its documentation, its check and its test cases."""

    code: str
    name: str
    doc: str
    check: Callable[[RuleContext], Iterator[Issue]]
    default: bool
    valid: tuple[str, ...]
    invalid: tuple[str, ...]

    @property
    def summary(self) -> str:
        """The first line of the documentation (``amplint rules`` lists it)."""
        return self.doc.strip().splitlines()[0]
