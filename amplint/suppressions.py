"""``# amplint: ignore[...]``, ``# noqa: ...`` and file-level suppressions.

On the reported line or on the first line of its statement (with more comment text after it, too);
an own-line ``# amplint: ignore[...]`` covers the next statement; ``# amplint: ignore-file`` (with
optional codes) covers the whole file. Codes may be rule codes, names or prefixes. AMP000 cannot be
suppressed.
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass, field

_DIRECTIVE = re.compile(
    r"#\s*(?:amplint:\s*(?P<kind>ignore-file|ignore)|(?P<noqa>noqa))"
    r"(?:\s*\[(?P<codes>[^\]]*)\]|(?(noqa)\s*:\s*(?P<noqa_codes>[\w\-]+(?:[\s,]+[\w\-]+)*)))?",
    re.IGNORECASE,
)
ALL = frozenset({"*"})
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass
class Suppressions:
    """Suppressed codes per line (``*`` means every code) and for the whole file."""

    lines: dict[int, set[str]] = field(default_factory=dict)
    file: set[str] = field(default_factory=set)

    def covers(self, code: str, name: str, lines: tuple[int, ...]) -> bool:
        """Whether a finding of rule ``code``/``name`` on any of ``lines`` is suppressed."""
        if code == "AMP000":
            return False
        if _matches(self.file, code, name):
            return True
        return any(_matches(self.lines.get(line, set()), code, name) for line in lines)


def _matches(tokens: set[str], code: str, name: str) -> bool:
    return any(t == "*" or code.startswith(t.upper()) or t.lower() == name for t in tokens)


def _codes(text: str | None) -> set[str]:
    if text is None:
        return set(ALL)
    return {token for token in re.split(r"[\s,]+", text) if token} or set(ALL)


def _comments(source: str) -> list[tuple[int, str, bool]]:
    """(line, comment text, whether the comment is alone on its line)."""
    found = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(source, newline=None).readline):
            if token.type == tokenize.COMMENT:
                own_line = not token.line[: token.start[1]].strip()
                found.append((token.start[0], token.string, own_line))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        pass
    return found


def parse(source: str) -> Suppressions:
    """All suppression comments of a file."""
    result = Suppressions()
    lines = _LINE_BREAK.split(source)  # Python's line breaks only (not str.splitlines' \f etc.)
    for line, comment, own_line in _comments(source):
        for match in _DIRECTIVE.finditer(comment):
            codes = _codes(match.group("codes") or match.group("noqa_codes"))
            if match.group("kind") and match.group("kind").lower() == "ignore-file":
                result.file |= codes
                continue
            result.lines.setdefault(line, set()).update(codes)
            if own_line and match.group("kind"):
                target = _next_code_line(lines, line)
                if target is not None:
                    result.lines.setdefault(target, set()).update(codes)
    return result


def _next_code_line(lines: list[str], line: int) -> int | None:
    for number in range(line + 1, len(lines) + 1):
        text = lines[number - 1].strip()
        if text and not text.startswith("#"):
            return number
    return None
