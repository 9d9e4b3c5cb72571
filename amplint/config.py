"""``[tool.amplint]`` in ``pyproject.toml``: discovery, validation, and the project root.

The configuration is found by walking up from the checked paths to the first ``pyproject.toml``
that has a ``[tool.amplint]`` table (as ruff does with ``[tool.ruff]``), or given with
``--config FILE``. Patterns in ``exclude``, ``extend-exclude`` and ``per-file-ignores`` are
relative to the folder of that file, which is also the project root used for the cross-file
precision context (without a configuration file: the git root, else the current folder).
"""

from __future__ import annotations

import fnmatch
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRECISIONS = ("float16", "bfloat16")


class ConfigError(Exception):
    """A configuration file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Config:
    """The options of one ``[tool.amplint]`` table; ``None`` where the file does not set them."""

    path: Path | None = None
    root: Path = Path(".")
    select: tuple[str, ...] | None = None
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    exclude: tuple[str, ...] | None = None
    extend_exclude: tuple[str, ...] = ()
    alignment: int | None = None
    min_dimension: int | None = None
    assume_amp: str | None = None
    cache_dir: Path | None = None

    def ignored_for(self, path: str | Path) -> tuple[str, ...]:
        """Selectors that ``per-file-ignores`` turns off for ``path``."""
        relative = relative_to_root(path, self.root)
        if relative is None:
            return ()
        return tuple(
            selector
            for pattern, selectors in self.per_file_ignores
            if glob_matches(pattern, relative)
            for selector in selectors
        )


def _string_list(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    return None


def _positive_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    return None


def _non_negative_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _per_file_ignores(value: Any) -> tuple[tuple[str, tuple[str, ...]], ...] | None:
    if not isinstance(value, dict):
        return None
    pairs = []
    for pattern, selectors in value.items():
        codes = _string_list(selectors)
        if codes is None:
            return None
        pairs.append((pattern, codes))
    return tuple(pairs)


def _precision(value: Any) -> str | None:
    return value if value in PRECISIONS else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# key in the file -> (field of Config, parser returning None for a bad value, what is expected)
_KEYS = {
    "select": ("select", _string_list, "a list of rule codes, names or prefixes"),
    "extend-select": ("extend_select", _string_list, "a list of rule codes, names or prefixes"),
    "ignore": ("ignore", _string_list, "a list of rule codes, names or prefixes"),
    "per-file-ignores": (
        "per_file_ignores",
        _per_file_ignores,
        'a table of glob = ["CODE", ...], e.g. "tests/*" = ["AMP201"]',
    ),
    "exclude": ("exclude", _string_list, "a list of glob patterns"),
    "extend-exclude": ("extend_exclude", _string_list, "a list of glob patterns"),
    "alignment": ("alignment", _positive_int, "a positive integer such as 8"),
    "min-dimension": ("min_dimension", _non_negative_int, "an integer >= 0 (0 reports all)"),
    "assume-amp": ("assume_amp", _precision, '"float16" or "bfloat16"'),
    "cache-dir": ("cache_dir", _text, "a folder path"),
}

KEYS = tuple(_KEYS)


def _read_toml(path: Path) -> dict[str, Any]:
    # imported here: a project without a pyproject.toml (or an amplint.toml) never needs it
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python < 3.11 only
        import tomli as tomllib
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise ConfigError(
            f"{path}: cannot read the configuration file ({error.strerror})"
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None


def _table(data: dict[str, Any]) -> dict[str, Any] | None:
    tool = data.get("tool")
    if isinstance(tool, dict) and "amplint" in tool:
        return tool["amplint"]
    return None


def load(path: str | Path) -> Config:
    """Read and validate the ``[tool.amplint]`` table of ``path`` (empty options when absent)."""
    path = Path(path).absolute()
    if not path.is_file():
        raise ConfigError(f"{path}: configuration file not found")
    table = _table(_read_toml(path))
    root = path.parent
    if table is None:
        return Config(path=path, root=root)
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.amplint] must be a table")
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _KEYS:
            import difflib

            close = difflib.get_close_matches(key, KEYS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(KEYS)})"
            raise ConfigError(f"{path}: [tool.amplint] unknown key '{key}'{hint}")
        name, parse, expected = _KEYS[key]
        parsed = parse(value)
        if parsed is None:
            raise ConfigError(
                f"{path}: [tool.amplint] {key} = {value!r} is invalid: expected {expected}"
            )
        values[name] = parsed
    if "cache_dir" in values:
        values["cache_dir"] = (root / values["cache_dir"]).absolute()
    return Config(path=path, root=root, **values)


def start_folder(paths: Sequence[str | Path]) -> Path:
    """The deepest folder holding every checked path (the current folder when there are none)."""
    folders = [
        (Path(p).absolute() if Path(p).is_dir() else Path(p).absolute().parent)
        for p in paths
        if str(p) != "-"
    ]
    if not folders:
        return Path.cwd()
    return Path(os.path.commonpath([str(folder) for folder in folders]))


def discover(paths: Sequence[str | Path]) -> Path | None:
    """The nearest ``pyproject.toml`` with a ``[tool.amplint]`` table above the checked paths."""
    for folder in (start_folder(paths), *start_folder(paths).parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file() and _table(_read_toml(candidate)) is not None:
            return candidate
    return None


def git_root(start: Path) -> Path | None:
    """The nearest folder above ``start`` that holds a ``.git`` entry."""
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return None


def resolve(paths: Sequence[str | Path], config_file: str | Path | None = None) -> Config:
    """The configuration for a run: ``--config FILE`` if given, else the discovered file.

    Without any file the options are empty and the root is the git root (or the start folder).
    """
    if config_file is not None:
        return load(config_file)
    found = discover(paths)
    if found is not None:
        return load(found)
    start = start_folder(paths)
    return Config(root=git_root(start) or start)


def relative_to_root(path: str | Path, root: Path) -> str | None:
    """``path`` relative to ``root`` in posix form, or ``None`` when it lies outside."""
    try:
        return Path(path).absolute().relative_to(root.absolute()).as_posix()
    except ValueError:
        return None


def glob_matches(pattern: str, relative: str) -> bool:
    """ruff's pattern semantics on a root-relative posix path.

    A pattern without ``/`` matches any single component (``build``, ``*_pb2.py``); one with a
    ``/`` is anchored at the root and matches the path or any folder above it (``tests/*``,
    ``src/legacy``). ``*`` may cross folders in anchored patterns, as in ruff.
    """
    pattern = pattern.strip()
    if pattern.startswith("./"):
        pattern = pattern[2:]
    pattern = pattern.rstrip("/")
    parts = relative.split("/")
    if "/" not in pattern:
        return any(fnmatch.fnmatchcase(part, pattern) for part in parts)
    return any(
        fnmatch.fnmatchcase("/".join(parts[:end]), pattern) for end in range(1, len(parts) + 1)
    )
