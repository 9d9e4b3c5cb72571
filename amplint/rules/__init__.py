"""The rule registry: one module per rule; codes and kebab-case names are a contract."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from amplint.rules.api import Rule


@dataclass(frozen=True)
class Entry:
    """A rule's identity: what selecting rules needs, readable without loading any rule."""

    code: str
    name: str
    module: str
    default: bool = True


# The one place a rule's code, name and default are written, in the manner of ruff's code table.
CATALOG: dict[str, Entry] = {
    entry.code: entry
    for entry in (
        Entry("AMP101", "float16-output", "amp101_float16_output"),
        Entry("AMP201", "dim-not-multiple-of-8", "amp201_dim_not_multiple_of_8"),
        Entry("AMP202", "batch-not-multiple-of-8", "amp202_batch_not_multiple_of_8"),
        Entry("AMP301", "missing-loss-scaling", "amp301_missing_loss_scaling"),
        Entry("AMP302", "scale-loss-outside-record", "amp302_scale_loss_outside_record"),
        Entry("AMP303", "trainer-not-initialized", "amp303_trainer_not_initialized"),
        Entry("AMP304", "amp-init-too-late", "amp304_amp_init_too_late"),
        Entry("AMP305", "clip-before-unscale", "amp305_clip_before_unscale"),
        Entry(
            "AMP306",
            "master-weights-without-scaling",
            "amp306_master_weights_without_scaling",
            default=False,
        ),
    )
}
DEFAULTS = frozenset(code for code, entry in CATALOG.items() if entry.default)
PARSE_ERROR = ("AMP000", "parse-error")


@functools.lru_cache(maxsize=1)
def _load() -> dict[str, Rule]:
    from amplint.rules.api import Rule

    rules = {}
    for entry in CATALOG.values():
        module = importlib.import_module(f"amplint.rules.{entry.module}")
        rules[entry.code] = Rule(
            code=entry.code,
            name=entry.name,
            doc=module.__doc__ or "",
            check=module.check,
            default=entry.default,
            valid=tuple(module.VALID),
            invalid=tuple(module.INVALID),
        )
    return rules


def __getattr__(name: str) -> dict[str, Rule]:
    """``RULES`` (code → Rule) is loaded on first use: the rules import libcst, which costs more
    than a whole run over files that need no parse."""
    if name == "RULES":
        return _load()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def resolve(tokens: Iterable[str]) -> set[str]:
    """Codes for rule codes, names and code prefixes (``AMP3``); ValueError for unknown ones."""
    codes: set[str] = set()
    for token in tokens:
        token = token.strip()
        if not token:
            continue
        if token.upper() == "ALL":
            codes |= DEFAULTS
            continue
        if token.upper() == PARSE_ERROR[0] or token.lower() == PARSE_ERROR[1]:
            continue  # parse errors are always reported
        entry = _entry(token)
        # Off-by-default rules are only turned on by their own code or name, never by a prefix.
        matched = {code for code in DEFAULTS if code.startswith(token.upper())}
        if entry is not None:
            matched.add(entry.code)
        if not matched:
            raise ValueError(f"unknown rule {token!r} (see `amplint rules`)")
        codes |= matched
    return codes


def _entry(token: str) -> Entry | None:
    token = token.strip()
    for code, entry in CATALOG.items():
        if code == token.upper() or entry.name == token.lower():
            return entry
    return None


def lookup(token: str) -> Rule | None:
    """The rule with this code or name."""
    entry = _entry(token)
    return None if entry is None else _load()[entry.code]
