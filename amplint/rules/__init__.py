"""The rule registry: one module per rule; codes and kebab-case names are a contract."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from amplint.rules.api import Rule

_MODULES = (
    "amp101_float16_output",
    "amp201_dim_not_multiple_of_8",
    "amp202_batch_not_multiple_of_8",
    "amp301_missing_loss_scaling",
    "amp302_scale_loss_outside_record",
    "amp303_trainer_not_initialized",
    "amp304_amp_init_too_late",
    "amp305_clip_before_unscale",
    "amp306_master_weights_without_scaling",
)


def _load() -> dict[str, Rule]:
    rules = {}
    for name in _MODULES:
        module = importlib.import_module(f"amplint.rules.{name}")
        rule = Rule(
            code=module.CODE,
            name=module.NAME,
            doc=module.__doc__ or "",
            check=module.check,
            default=getattr(module, "DEFAULT", True),
            valid=tuple(module.VALID),
            invalid=tuple(module.INVALID),
        )
        rules[rule.code] = rule
    return dict(sorted(rules.items()))


RULES: dict[str, Rule] = _load()
PARSE_ERROR = ("AMP000", "parse-error")


def resolve(tokens: Iterable[str]) -> set[str]:
    """Codes for rule codes, names and code prefixes (``AMP3``); ValueError for unknown ones."""
    codes: set[str] = set()
    for token in tokens:
        token = token.strip()
        if not token:
            continue
        if token.upper() == "ALL":
            codes |= {code for code, rule in RULES.items() if rule.default}
            continue
        if token.upper() == PARSE_ERROR[0] or token.lower() == PARSE_ERROR[1]:
            continue  # parse errors are always reported
        rule = lookup(token)
        # Off-by-default rules are only turned on by their own code or name, never by a prefix.
        matched = {c for c, r in RULES.items() if r.default and c.startswith(token.upper())}
        if rule is not None:
            matched.add(rule.code)
        if not matched:
            raise ValueError(f"unknown rule {token!r} (see `amplint rules`)")
        codes |= matched
    return codes


def lookup(token: str) -> Rule | None:
    """The rule with this code or name."""
    token = token.strip()
    for code, rule in RULES.items():
        if code == token.upper() or rule.name == token.lower():
            return rule
    return None
