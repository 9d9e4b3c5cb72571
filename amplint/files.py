"""Which files a check reads: discovery under folders, default excludes and ``.gitignore``."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from amplint.gitignore import GitIgnore

SUFFIXES = (".py", ".ipynb")  # notebooks: amplint.notebooks
DEFAULT_EXCLUDES = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        "build",
        "dist",
        "__pycache__",
        ".amplint_cache",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".hypothesis",
        ".eggs",
        "node_modules",
        "site-packages",
        "__pypackages__",
    }
)


@dataclass
class Discovery:
    """Files found (path, name to display) and one-line problems with the given paths."""

    files: list[tuple[Path, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def excluded_folder(folder: Path) -> bool:
    """Default excludes: VCS and tool folders, build output, virtual environments."""
    name = folder.name
    if name in DEFAULT_EXCLUDES or name.endswith(".egg-info"):
        return True
    return (folder / "pyvenv.cfg").is_file() or (folder / "conda-meta").is_dir()


def _gitignores_above(folder: Path) -> list[GitIgnore]:
    """``.gitignore`` files of the folders above ``folder`` (its own is read by the walk), from
    its repository root (or the filesystem root) down; none above a repository root."""
    chain = []
    current = folder.resolve()
    while not (current / ".git").exists() and current.parent != current:
        current = current.parent
        chain.append(current)
    loaded = (GitIgnore.load(f) for f in reversed(chain))
    return [g for g in loaded if g is not None]


def _is_ignored(path: Path, is_dir: bool, ignores: Sequence[GitIgnore]) -> bool:
    decision = False
    for ignore in ignores:
        verdict = ignore.ignored(path, is_dir)
        if verdict is not None:
            decision = verdict
    return decision


def _walk(
    folder: Path, display: str, ignores: list[GitIgnore], problems: list[str]
) -> Iterator[tuple[Path, str]]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    resolved = folder.resolve()
    own = GitIgnore.load(resolved)  # matched against resolved paths, also for `check .`
    ignores = ignores + [own] if own is not None else ignores
    for entry in entries:
        path = Path(entry.path)
        shown = os.path.join(display, entry.name) if display != "." else entry.name
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
            is_file = entry.is_file()
        except OSError:
            is_dir = is_file = False
        if not is_dir and not is_file and entry.name.endswith(SUFFIXES) and entry.is_symlink():
            problems.append(f"{shown}: broken symlink or symlink loop")
            continue
        if is_dir:
            if excluded_folder(path) or _is_ignored(resolved / entry.name, True, ignores):
                continue
            yield from _walk(path, shown, ignores, problems)
        elif is_file and entry.name.endswith(SUFFIXES):
            if not _is_ignored(resolved / entry.name, False, ignores):
                yield path, shown


def discover(paths: Sequence[str]) -> Discovery:
    """Expand command-line paths into files. Explicit files are always checked."""
    result = Discovery()
    seen: set[Path] = set()
    for given in paths:
        path = Path(given)
        try:
            exists = path.exists()
        except OSError:
            exists = False
        if not exists:
            kind = (
                "broken symlink or symlink loop" if path.is_symlink() else "no such file or folder"
            )
            result.problems.append(f"{given}: {kind}")
            continue
        if path.is_dir():
            found = _walk(path, os.path.normpath(given), _gitignores_above(path), result.problems)
        else:
            found = iter([(path, os.path.normpath(given))])
        for file, shown in found:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                result.files.append((file, shown))
    return result
