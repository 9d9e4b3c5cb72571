"""The catalogue of codes: every code amplint and gluon_amp report, its name and where it is found.

Pure data: no libcst, no MXNet. amplint reads it to select rules, to list and explain them and to
describe them in SARIF; ``gluon_amp.report`` reads it to give its run-time findings the same codes
and names. Codes and kebab-case names are a contract: never renumber or rename one.

* AMP1xx-AMP3xx are found in the source by ``amplint check`` (``amplint/rules/``, one module per
  rule, holding its check, documentation and test cases).
* AMP4xx are found only at run time by ``gluon_amp.report`` (``amplint/runtime_codes/``, one module
  per code, holding its documentation). ``amplint check`` never reports them, but ``--select``,
  ``--ignore`` and the configuration accept them, and ``amplint rules``/``explain`` document them.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Code", "CATALOG", "DEFAULTS", "PARSE_ERROR", "SOURCE", "RUNTIME", "entry", "resolve"]

SOURCE, RUNTIME = "source", "run time"


@dataclass(frozen=True)
class Code:
    """One code: its name, the module documenting it, whether it is on by default, and where it is
    found (``SOURCE`` by amplint, ``RUNTIME`` by gluon_amp.report)."""

    code: str
    name: str
    module: str
    default: bool = True
    stage: str = SOURCE

    @property
    def doc(self) -> str:
        """The documentation (the module's docstring): what, why, an example, the fix."""
        return importlib.import_module(self.module).__doc__ or ""


def _rule(code: str, name: str, module: str, default: bool = True) -> Code:
    return Code(code, name, f"amplint.rules.{module}", default, SOURCE)


def _runtime(code: str, name: str, module: str) -> Code:
    return Code(code, name, f"amplint.runtime_codes.{module}", True, RUNTIME)


# The one place a code, its name and its default are written, in the manner of ruff's code table.
CATALOG: dict[str, Code] = {
    entry.code: entry
    for entry in (
        _rule("AMP101", "float16-output", "amp101_float16_output"),
        _rule("AMP201", "dim-not-multiple-of-8", "amp201_dim_not_multiple_of_8"),
        _rule("AMP202", "batch-not-multiple-of-8", "amp202_batch_not_multiple_of_8"),
        _rule("AMP301", "missing-loss-scaling", "amp301_missing_loss_scaling"),
        _rule("AMP302", "scale-loss-outside-record", "amp302_scale_loss_outside_record"),
        _rule("AMP303", "trainer-not-initialized", "amp303_trainer_not_initialized"),
        _rule("AMP304", "amp-init-too-late", "amp304_amp_init_too_late"),
        _rule("AMP305", "clip-before-unscale", "amp305_clip_before_unscale"),
        _rule(
            "AMP306",
            "master-weights-without-scaling",
            "amp306_master_weights_without_scaling",
            default=False,
        ),
        _rule("AMP307", "grad-scaler-bypassed", "amp307_grad_scaler_bypassed"),
        _runtime("AMP401", "graph-cached-before-init", "amp401_graph_cached_before_init"),
        _runtime("AMP402", "gemm-in-float32", "amp402_gemm_in_float32"),
        _runtime("AMP403", "cast-overhead", "amp403_cast_overhead"),
    )
}
DEFAULTS = frozenset(code for code, entry in CATALOG.items() if entry.default)
PARSE_ERROR = ("AMP000", "parse-error")


def entry(token: str) -> Code | None:
    """The code with this code or kebab-case name (any case), or None."""
    token = token.strip()
    for code, found in CATALOG.items():
        if code == token.upper() or found.name == token.lower():
            return found
    return None


def resolve(tokens: Iterable[str]) -> set[str]:
    """Codes for codes, names and code prefixes (``AMP3``); ValueError for unknown ones."""
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
        found = entry(token)
        # Off-by-default codes are only turned on by their own code or name, never by a prefix.
        matched = {code for code in DEFAULTS if code.startswith(token.upper())}
        if found is not None:
            matched.add(found.code)
        if not matched:
            raise ValueError(f"unknown rule {token!r} (see `amplint rules`)")
        codes |= matched
    return codes
