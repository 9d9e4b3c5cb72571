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


def _is_environment(entries: list[os.DirEntry]) -> bool:
    """A virtual environment (``pyvenv.cfg``) or a conda environment (``conda-meta/``)."""
    for entry in entries:
        try:
            if entry.name == "pyvenv.cfg" and entry.is_file():
                return True
            if entry.name == "conda-meta" and entry.is_dir():
                return True
        except OSError:
            continue
    return False


def _gitignores_above(folder: str) -> list[GitIgnore]:
    """``.gitignore`` files of the folders above ``folder`` (its own is read by the walk), from
    its repository root (or the filesystem root) down; none above a repository root."""
    chain = []
    current = folder
    while not os.path.exists(os.path.join(current, ".git")):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
        chain.append(current)
    loaded = (GitIgnore.load(f) for f in reversed(chain))
    return [g for g in loaded if g is not None]


def _is_ignored(path: str, is_dir: bool, ignores: Sequence[GitIgnore]) -> bool:
    decision = False
    for ignore in ignores:  # the deepest .gitignore that decides wins, as in git
        verdict = ignore.ignored(path, is_dir)
        if verdict is not None:
            decision = verdict
    return decision


def _walk(
    folder: str,
    resolved: str,
    display: str,
    ignores: list[GitIgnore],
    problems: list[str],
    top: bool = False,
) -> Iterator[tuple[str, str, str]]:
    """(path, display name, resolved path) of the files below ``folder``, whose resolved form
    is ``resolved``. Plain strings and one ``scandir`` per folder: this walks whole projects."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    if not top and _is_environment(entries):
        return
    if any(entry.name == ".gitignore" for entry in entries):
        own = GitIgnore.load(resolved)  # matched against resolved paths, also for `check .`
        ignores = ignores + [own] if own is not None else ignores
    for entry in entries:
        name = entry.name
        shown = os.path.join(display, name) if display != "." else name
        real = os.path.join(resolved, name)
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
            is_file = entry.is_file()
        except OSError:
            is_dir = is_file = False
        if is_dir:
            if name in DEFAULT_EXCLUDES or name.endswith(".egg-info"):
                continue
            if not _is_ignored(real, True, ignores):
                yield from _walk(entry.path, real, shown, ignores, problems)
        elif not name.endswith(SUFFIXES):
            continue
        elif not is_file:
            if entry.is_symlink():
                problems.append(f"{shown}: broken symlink or symlink loop")
        elif not _is_ignored(real, False, ignores):
            yield entry.path, shown, os.path.realpath(real) if entry.is_symlink() else real


def discover(paths: Sequence[str]) -> Discovery:
    """Expand command-line paths into files. Explicit files are always checked."""
    result = Discovery()
    seen: set[str] = set()
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
            resolved = os.path.realpath(given)
            ignores = _gitignores_above(resolved)
            shown = os.path.normpath(given)
            found = _walk(given, resolved, shown, ignores, result.problems, top=True)
        else:
            found = iter([(given, os.path.normpath(given), os.path.realpath(given))])
        for file, shown, key in found:
            if key not in seen:
                seen.add(key)
                result.files.append((Path(file), shown))
    return result
