"""Jupyter notebooks: code cells joined into one Python source, findings mapped back to cells.

IPython syntax that is not Python (``%magic``, ``!shell``, ``x = !cmd``, ``obj?``, cell magics)
is masked with ``...`` so that it neither breaks the parse (no AMP000) nor hides the code around
it. Cells are numbered from 1 in notebook order, markdown cells included, as Jupyter shows them.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from amplint.findings import Finding

# Cell magics whose body is still Python; every other cell magic (%%bash, %%writefile, ...) hides
# the whole cell.
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug", "python", "python3"})

_HELP = re.compile(r"(\?{1,2}[\w.]+|[\w.]+\?{1,2})\s*$")  # obj?  obj??  ?obj  ??obj
_ASSIGNED_MAGIC = re.compile(r"^(\s*[\w.\[\], ]+=\s*)([!%].*)$")


class NotebookError(ValueError):
    """A ``.ipynb`` file that is not a readable notebook."""


@dataclass(frozen=True)
class NotebookSource:
    """The Python source of a notebook and where each code cell starts in it."""

    source: str
    cells: tuple[int, ...] = ()  # 1-based notebook position of each code cell, in order
    starts: tuple[int, ...] = ()  # 1-based line in ``source`` where that cell starts
    text: str = field(default="", repr=False)  # the .ipynb file's JSON, for file_lines
    notebook_cells: list[Any] = field(default_factory=list, repr=False, compare=False)

    @functools.cached_property
    def file_lines(self) -> tuple[tuple[int, ...], ...]:
        """Per code cell, the line of the .ipynb file holding each of its lines (``()`` for a
        cell not laid out as Jupyter writes it); worked out only when a finding needs it."""
        every = _file_lines(self.text, self.notebook_cells)
        return tuple(every[position - 1] for position in self.cells) if every else ()

    def _locate(self, line: int) -> tuple[int, int]:
        """(index of the code cell, line within the cell) of a 1-based line of ``source``."""
        index = max(bisect.bisect_right(self.starts, line) - 1, 0)
        return index, line - self.starts[index] + 1

    def map_finding(self, finding: Finding) -> Finding:
        """The finding located by cell (and by line of the .ipynb file where known); a span
        that runs past its cell ends there."""
        if not self.cells:
            return finding
        index, line = self._locate(finding.line)
        end_index, end_line = self._locate(finding.end_line)
        end_column = finding.end_column
        if end_index != index:
            end_line, end_column = line, finding.column
        in_file = self.file_lines[index] if self.file_lines else ()
        return dataclasses.replace(
            finding,
            line=line,
            end_line=end_line,
            end_column=end_column,
            cell=self.cells[index],
            notebook_line=in_file[line - 1] if line <= len(in_file) else None,
        )


def _code_lines(source: str) -> list[str]:
    """A cell's lines as Python reads them: split at ``\\n``, ``\\r\\n`` and ``\\r`` only
    (``str.splitlines`` also splits at form feeds and U+2028, which Python does not)."""
    lines = source.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    return lines


def _mask_line(line: str) -> str:
    """``line`` with IPython-only syntax replaced by ``...`` (same indentation)."""
    stripped = line.lstrip()
    indent = line[: len(line) - len(stripped)]
    if not stripped or stripped.startswith("#"):
        return line
    if stripped[0] in "%!" or _HELP.match(stripped):
        return indent + "..."
    assigned = _ASSIGNED_MAGIC.match(line)
    if assigned:
        return assigned.group(1) + "..."
    return line


def _continues(line: str, depth: int, quote: str) -> tuple[int, str]:
    """Bracket depth and open triple quote after ``line``, given those before it."""
    index = 0
    while index < len(line):
        char = line[index]
        if quote:
            if char == "\\":
                index += 1
            elif line.startswith(quote, index):
                index += len(quote) - 1
                quote = ""
        elif char == "#":
            break
        elif char in "\"'":
            triple = char * 3
            quote = triple if line.startswith(triple, index) else char
            index += len(quote) - 1
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth = max(depth - 1, 0)
        index += 1
    if quote in ("'", '"'):  # a one-quote string never spans lines
        quote = ""
    return depth, quote


def mask_cell(lines: list[str]) -> list[str]:
    """A code cell's lines with magics, shell escapes and help syntax masked.

    Only lines that start a logical line are looked at: ``% x`` continuing a bracketed
    expression, or text inside a triple-quoted string, is Python and stays.
    """
    if lines and lines[0].startswith("%%"):
        words = lines[0][2:].split()
        keep_body = bool(words) and words[0] in PYTHON_CELL_MAGICS
        return ["..."] + (mask_cell(lines[1:]) if keep_body else ["" for _ in lines[1:]])
    masked: list[str] = []
    depth, quote, continued, magic = 0, "", False, False
    for line in lines:
        if magic:  # a masked magic goes on after a trailing backslash
            masked.append("")
            magic = line.rstrip().endswith("\\")
            continue
        starts_logical = depth == 0 and not quote and not continued
        new = _mask_line(line) if starts_logical else line
        masked.append(new)
        if new != line:
            magic = line.rstrip().endswith("\\")
            continue
        depth, quote = _continues(line, depth, quote)
        continued = not quote and line.rstrip().endswith("\\")
    return masked


def _is_python(notebook: dict[str, Any]) -> bool:
    metadata = notebook.get("metadata") or {}
    language = (metadata.get("language_info") or {}).get("name") or (
        metadata.get("kernelspec") or {}
    ).get("language")
    return language is None or str(language).lower() in ("python", "python3", "ipython")


_SOURCE_KEY = re.compile(r'"source"\s*:\s*')


def _json_value(line: str) -> Any:
    """The JSON value a line of the file holds, without its trailing comma; None if none."""
    try:
        return json.loads(line.strip().rstrip(","))
    except ValueError:
        return None


def _file_lines(text: str, cells: list[Any]) -> tuple[tuple[int, ...], ...]:
    """For every cell, the line of ``text`` holding each of its source lines, where the cell is
    laid out as Jupyter writes it: its ``"source"`` a list of strings, one line of code each,
    one per line of the file after the ``[`` (or one string on the key's line); ``()`` for a
    cell laid out otherwise. Every line is checked to hold exactly that string. ``()`` for the
    whole file when its ``"source"`` keys and its cells do not pair up."""
    keys = list(_SOURCE_KEY.finditer(text))  # a key; the same word in a string is escaped
    if len(keys) != len(cells):
        return ()
    file_lines = text.split("\n")  # lines as editors and GitHub count them
    found: list[tuple[int, ...]] = []
    opening, counted = 1, 0  # the line of the current "source" key, counted up to its offset
    for key, cell in zip(keys, cells):
        source = cell.get("source") if isinstance(cell, dict) else None
        opening += text.count("\n", counted, key.end())
        counted = key.end()
        line_end = text.find("\n", key.end())
        rest = text[key.end() : line_end if line_end != -1 else len(text)]
        if isinstance(source, str):  # one JSON string: every line of it is on the key's line
            same = _json_value(rest) == source
            found.append((opening,) * len(_code_lines(source)) if same else ())
            continue
        if not isinstance(source, list) or not source or not rest.startswith("["):
            found.append((opening,) if source == [] else ())
            continue
        lines = range(opening + 1, opening + 1 + len(source))
        one_per_line = (
            all(isinstance(part, str) for part in source)
            and len(_code_lines("".join(source))) == len(source)
            and all(part.endswith("\n") for part in source[:-1])
            and lines[-1] <= len(file_lines)
            and all(_json_value(file_lines[n - 1]) == part for n, part in zip(lines, source))
        )
        found.append(tuple(lines) if one_per_line else ())
    return tuple(found)


def parse_notebook(text: str) -> NotebookSource:
    """The code cells of a notebook's JSON text as one Python source."""
    try:
        notebook = json.loads(text)
    except json.JSONDecodeError as error:
        raise NotebookError(f"not a valid notebook: JSON error at line {error.lineno}") from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise NotebookError("not a valid notebook: no 'cells' list (nbformat 4 is required)")
    if not _is_python(notebook):
        return NotebookSource("")
    lines: list[str] = []
    cells: list[int] = []
    starts: list[int] = []
    for position, cell in enumerate(notebook["cells"], start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(str(part) for part in source)
        if not isinstance(source, str):
            raise NotebookError(f"not a valid notebook: cell {position} has no text source")
        cells.append(position)
        starts.append(len(lines) + 1)
        lines.extend(mask_cell(_code_lines(source)))
    source = "\n".join(lines) + "\n" if lines else ""
    return NotebookSource(source, tuple(cells), tuple(starts), text, notebook["cells"])
