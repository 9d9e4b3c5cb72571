"""Every option of a check in one frozen, picklable dataclass (built by the CLI or a config)."""

from __future__ import annotations

from dataclasses import dataclass, field

PRECISIONS = ("float16", "bfloat16")
# Dimensions below 8 are not reported unless asked: padding one to 8 adds 14% (7) to 700% (1)
# to the layer, and such layers (heads of a few outputs, a few channels) cost little anyway.
MIN_DIMENSION = 8


@dataclass(frozen=True)
class Settings:
    """What to check and how.

    ``select`` holds rule codes (already resolved from names and prefixes); ``alignment`` is the
    multiple dimensions and batch sizes must have; dimensions below ``min_dimension`` are not
    reported (0 reports all); ``assume_amp`` treats every file as running in that precision.
    """

    select: frozenset[str] = field(default_factory=lambda: default_selection())
    alignment: int = 8
    min_dimension: int = MIN_DIMENSION
    assume_amp: str | None = None

    def __post_init__(self) -> None:
        if self.alignment < 1:
            raise ValueError(f"alignment must be a positive integer, got {self.alignment}")
        if self.assume_amp is not None and self.assume_amp not in PRECISIONS:
            raise ValueError(f"assume_amp must be one of {', '.join(PRECISIONS)}")


def default_selection() -> frozenset[str]:
    """Codes of the rules that are on by default."""
    from amplint.codes import DEFAULTS

    return DEFAULTS
