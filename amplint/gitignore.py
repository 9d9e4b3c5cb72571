"""A small ``.gitignore`` matcher (patterns, ``!`` negation, ``/`` anchoring, ``**``, dir-only)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern[str]
    negated: bool
    dir_only: bool


def _translate(pattern: str) -> str:
    """Glob to regex over a '/'-separated path relative to the .gitignore's folder."""
    anchored = "/" in pattern.rstrip("/")
    pattern = pattern.strip("/")
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out.append("/.*")
            i += 3
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape("["))
                i += 1
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    prefix = "" if anchored else "(?:.*/)?"
    return f"^{prefix}{''.join(out)}(?:/.*)?$"


class GitIgnore:
    """The patterns of one ``.gitignore`` file, matched against paths below its folder."""

    def __init__(self, folder: Path, lines: list[str]) -> None:
        self.folder = folder
        self.patterns: list[_Pattern] = []
        for line in lines:
            line = line.rstrip("\n").rstrip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            if negated or line.startswith("\\"):
                line = line[1:]
            try:
                regex = re.compile(_translate(line))
            except re.error:
                continue
            self.patterns.append(_Pattern(regex, negated, line.endswith("/")))

    @classmethod
    def load(cls, folder: Path) -> GitIgnore | None:
        """The ``.gitignore`` of ``folder``; None when it has none (or it cannot be read)."""
        try:
            text = (folder / ".gitignore").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
        return cls(folder, text.splitlines())

    def ignored(self, path: Path, is_dir: bool) -> bool | None:
        """True/False when a pattern decides, None when none applies."""
        try:
            relative = path.relative_to(self.folder).as_posix()
        except ValueError:
            return None
        decision = None
        for pattern in self.patterns:
            if pattern.dir_only and not is_dir:
                # "build/" ignores files below a build folder, not a file named build
                if not pattern.regex.match(relative.rsplit("/", 1)[0] if "/" in relative else ""):
                    continue
            if pattern.regex.match(relative):
                decision = not pattern.negated
        return decision
