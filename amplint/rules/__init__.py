"""The rule registry: one module per source rule; codes and names come from ``amplint.codes``."""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING

from amplint.codes import CATALOG, DEFAULTS, PARSE_ERROR, SOURCE, Code, entry, resolve

if TYPE_CHECKING:
    from amplint.rules.api import Rule

__all__ = ["CATALOG", "DEFAULTS", "PARSE_ERROR", "Code", "lookup", "resolve"]


@functools.lru_cache(maxsize=1)
def _load() -> dict[str, Rule]:
    from amplint.rules.api import Rule

    rules = {}
    for code in (c for c in CATALOG.values() if c.stage == SOURCE):
        module = importlib.import_module(code.module)
        rules[code.code] = Rule(
            code=code.code,
            name=code.name,
            doc=module.__doc__ or "",
            check=module.check,
            default=code.default,
            valid=tuple(module.VALID),
            invalid=tuple(module.INVALID),
        )
    return rules


def __getattr__(name: str) -> dict[str, Rule]:
    """``RULES`` (code → Rule, the source rules) is loaded on first use: the rules import libcst,
    which costs more than a whole run over files that need no parse."""
    if name == "RULES":
        return _load()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def lookup(token: str) -> Rule | None:
    """The source rule with this code or name (None for unknown and run-time codes)."""
    found = entry(token)
    return None if found is None else _load().get(found.code)
