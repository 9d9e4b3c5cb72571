"""A JSON array of finding objects on stdout (summary to stderr, by the CLI)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TextIO

from amplint.findings import Finding


def render(findings: Sequence[Finding], out: TextIO) -> None:
    """The findings as one indented JSON array."""
    json.dump([f.to_dict() for f in findings], out, indent=2, sort_keys=False)
    out.write("\n")
