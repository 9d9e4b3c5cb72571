"""What a rule is and what it gets: the file's index and where it runs in reduced precision."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Callable

import libcst as cst

from amplint.conditions import NEVER, Condition
from amplint.index import CallSite, FileIndex, Scope
from amplint.interface import Summary, option_from, values_from
from amplint.precision import PrecisionModel, Reduced, dtypes_of
from amplint.project import Context
from amplint.settings import Settings
from amplint.values import Value, fold


@dataclass
class Issue:
    """What a rule reports: the node, the message, optionally where a value was written
    (``origin``: node and a short description), fix data for codemods, and the configurations
    it holds in (``condition``; None: every configuration)."""

    node: cst.CSTNode
    message: str
    origin: tuple[cst.CSTNode, str] | None = None
    fix: dict[str, Any] | None = None
    condition: Condition | None = None


@dataclass(frozen=True)
class Misaligned:
    """A dimension or batch size that is not a multiple of the alignment: its value, the next
    multiple, the precisions it runs in ("bfloat16/float16"), where it was written, and the
    configurations it has that value in (None: all)."""

    size: int
    rounded: int
    precision: str
    origin: tuple[cst.CSTNode, str] | None
    condition: Condition | None = None
    note: str = ""  # where an option of another module has this default


@dataclass
class RuleContext:
    """Everything a rule may look at for one file, and the precision model to ask."""

    path: str
    source: str
    index: FileIndex
    settings: Settings
    context: Context
    model: PrecisionModel = field(init=False)

    def __post_init__(self) -> None:
        self.model = PrecisionModel(
            self.index,
            self.settings.assume_amp,
            self.context.spreads,
            path=self.path,
            received=_received(self.context.received),
            summaries=_summaries(self.context.summaries),
            registered=_registered(self.context.options),
        )

    def precision_at(self, site: CallSite) -> list[Reduced]:
        """The configurations (with dtype and reason) in which ``site`` runs in reduced
        precision; empty: float32 in every configuration."""
        return self.model.precision_at(site)

    def provenance(self) -> str:
        """Why this file counts as reduced precision when the file itself does not say so."""
        if self.context.reason and not self.model.switches:
            return f" [{self.context.reason}]"
        return ""

    def fold(self, expr: cst.BaseExpression | None, scope: Scope) -> Value | None:
        """The value of ``expr`` as seen from ``scope`` (see :mod:`amplint.values`)."""
        return fold(expr, self.index, scope)

    def misaligned(
        self, expr: cst.BaseExpression | None, site: CallSite, facts: list[Reduced]
    ) -> Misaligned | None:
        """The positive integer ``expr`` of the call ``site`` when it is not a multiple of the
        alignment setting (AMP201, AMP202); None for aligned or unknown values. A value folding
        cannot tell is asked of the configuration model: an option's default reached through
        parameters, also those another module passes (``args.unit`` of the caller's parser)."""
        multiple = self.settings.alignment
        value = self.fold(expr, site.scope)
        if value is not None and value.uncalled and not any(f.local for f in facts):
            # a default nothing here passes, in code another module runs reduced: it holds
            # only where the modules calling it leave it (else their values count)
            sizes = self.model.cases.sizes(expr, site.scope, site.order)
            if [size.value for size in sizes] != [value.value]:
                value = None
        if value is not None:
            if isinstance(value.value, bool) or not isinstance(value.value, int):
                return None
            size = value.value
            if size <= 0 or size % multiple == 0:
                return None
            origin = (value.origin, value.via or "value") if value.origin is not None else None
            return Misaligned(size, -(-size // multiple) * multiple, dtypes_of(facts), origin)
        sizes = self.model.cases.sizes(expr, site.scope, site.order)
        odd = [s for s in sizes if s.value > 0 and s.value % multiple]
        if not odd:
            return None
        size = odd[0].value
        condition = NEVER
        for found in odd:
            if found.value == size:
                condition = condition | found.condition
        option = odd[0].option
        origin = self._option_origin(option)
        note = ""
        if origin is None and option is not None:
            note = f" (the default of {option.shown})"
        rounded = -(-size // multiple) * multiple
        return Misaligned(size, rounded, dtypes_of(facts), origin, condition, note)

    def _option_origin(self, option) -> tuple[cst.CSTNode, str] | None:
        """Where an option's default is written, when this module defines the option."""
        if option is None or not option.key.startswith("--"):
            return None
        entry = self.index.arguments.get(option.key[2:])
        default = entry[0].arg(None, "default") if entry is not None else None
        return (default, f"default of {option.shown}") if default is not None else None

    def calls(self, *qualnames: str) -> Iterator[CallSite]:
        """Calls whose callee resolves to one of ``qualnames``."""
        wanted = set(qualnames)
        return (site for site in self.index.calls if site.qualname in wanted)


def _received(text: str) -> dict:
    """What other modules pass to this module's functions, as the evaluator's cases."""
    if not text:
        return {}
    data = json.loads(text)
    return {
        function: {key: values_from(cases) for key, cases in given.items()}
        for function, given in data.items()
    }


def _registered(text: str) -> dict:
    """Options project functions register on the parsers this module's code is handed."""
    return {dest: option_from(option) for dest, option in json.loads(text)} if text else {}


def _summaries(text: str) -> dict:
    """Summaries of the project functions this module calls, by the name it calls them."""
    return {name: Summary.from_json(s) for name, s in json.loads(text).items()} if text else {}


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
