"""Automatic fixes (``amplint check --fix``): one module per fix, the registry here.

A fixer is ``fix(finding, ctx) -> list[Edit]`` (see :mod:`amplint.fix.api`);
:mod:`amplint.fix.apply` plans, applies, re-parses and re-lints; :mod:`amplint.fix.files` reads
and writes files and diffs; :mod:`amplint.fix.command` runs it for ``amplint check``.
Unsafe fixes change the model itself (its shapes and checkpoints) and only run with
``--unsafe-fixes``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from amplint.findings import Finding
from amplint.fix.api import Edit, FixContext


@dataclass(frozen=True)
class Fixer:
    """A fixer: ``safe`` fixes run without ``--unsafe-fixes``; a ``neutral`` fix changes nothing
    in configurations where its finding does not hold (a float32 cast of a float32 output, an
    ``unscale_`` of a disabled GradScaler), so it is applied also to a finding that holds only
    in some configurations; any other fix is not offered for such a finding."""

    code: str
    fix: Callable[[Finding, FixContext], list[Edit]]
    safe: bool
    neutral: bool = False


# code -> (module, whether its fix is safe)
_MODULES = {
    "AMP101": ("float32_output", True),
    "AMP201": ("round_up", False),
    "AMP202": ("round_up", False),
    "AMP301": ("loss_scaling", True),
    "AMP302": ("record_scope", True),
    "AMP303": ("trainer_init", True),
    "AMP304": ("early_init", True),
    "AMP305": ("unscale", True),
    "AMP306": ("loss_scaling", True),
    "AMP307": ("scaler_step", True),
}


# Fixes that change nothing where their finding does not hold (see Fixer).
_NEUTRAL = frozenset({"AMP101", "AMP305"})


def _load() -> dict[str, Fixer]:
    fixers = {}
    for code, (name, safe) in sorted(_MODULES.items()):
        module = importlib.import_module(f"amplint.fix.{name}")
        fixers[code] = Fixer(code, module.fix, safe, code in _NEUTRAL)
    return fixers


FIXERS: dict[str, Fixer] = _load()
