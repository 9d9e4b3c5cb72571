"""The result of a check: one finding, plain picklable data."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, order=True)
class Finding:
    """One reported hazard. Lines and columns are 1-based; the end is exclusive.

    ``cell`` locates findings inside notebooks (``line`` is then the line in that cell, and
    ``notebook_line`` the line of the ``.ipynb`` file that holds it, where the file is laid out
    as Jupyter writes it); ``fix`` is optional picklable data a rule attaches for its fixer
    (``amplint.fix``). ``configurations`` lists the configurations of the script the finding
    holds in (``--dtype float16``), empty when it holds in every one. Neither
    ``notebook_line``, ``fix`` nor ``configurations`` is part of a finding's identity.
    """

    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    code: str
    name: str
    message: str
    cell: int | None = None
    notebook_line: int | None = field(default=None, compare=False)
    fix: dict[str, Any] | None = field(default=None, compare=False)
    configurations: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.configurations, tuple):  # read back from JSON as a list
            object.__setattr__(self, "configurations", tuple(self.configurations))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping; optional fields are left out when empty."""
        data = dataclasses.asdict(self)
        for key in ("cell", "notebook_line", "fix"):
            if data[key] is None:
                del data[key]
        if data["configurations"]:
            data["configurations"] = list(data["configurations"])
        else:
            del data["configurations"]
        return data


def parse_error(path: str, message: str) -> Finding:
    """AMP000: a file that could not be analysed, reported at 1:1."""
    return Finding(path, 1, 1, 1, 1, "AMP000", "parse-error", message)
