"""Which files a check reads: discovery under folders, default excludes and ``.gitignore``."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
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
    """Files found (path, name to display), one-line problems with the given paths, and the
    given paths an exclude removed, with the exclude (path as given, which exclude)."""

    files: list[tuple[Path, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    excluded: list[tuple[str, str]] = field(default_factory=list)


# A configured exclude: the absolute path of a file or folder -> the exclude matching it, or None.
Exclude = Callable[[str], "str | None"]


@dataclass
class Trace:
    """What a walk's result depends on besides the excludes (see :mod:`amplint.walk_cache`):
    the folders it listed or found to be an environment, the ``.gitignore`` files it read or
    could have read, and whether it met a symlink."""

    paths: list[str] = field(default_factory=list)
    symlink: bool = False


def _no_exclude(path: str) -> str | None:
    return None


def _is_environment(folder: str) -> bool:
    """A virtual environment (``pyvenv.cfg``) or a conda environment (``conda-meta/``)."""
    return os.path.isfile(os.path.join(folder, "pyvenv.cfg")) or os.path.isdir(
        os.path.join(folder, "conda-meta")
    )


def _builtin(name: str) -> str | None:
    """The built-in exclude a file or folder name matches."""
    if name in DEFAULT_EXCLUDES:
        return name
    return "*.egg-info" if name.endswith(".egg-info") else None


def _repository_chain(folder: str) -> list[str]:
    """``folder`` and the folders above it up to its repository root (or the filesystem root),
    outermost first."""
    chain = [folder]
    while not os.path.exists(os.path.join(chain[-1], ".git")):
        parent = os.path.dirname(chain[-1])
        if parent == chain[-1]:
            break
        chain.append(parent)
    return chain[::-1]


def _gitignores_above(folder: str) -> list[GitIgnore]:
    """``.gitignore`` files of the folders above ``folder`` (its own is read by the walk), from
    its repository root (or the filesystem root) down; none above a repository root."""
    loaded = (GitIgnore.load(f) for f in _repository_chain(folder)[:-1])
    return [g for g in loaded if g is not None]


def _ignoring(path: str, is_dir: bool, ignores: Sequence[GitIgnore]) -> GitIgnore | None:
    """The ``.gitignore`` that ignores ``path`` (the deepest one that decides wins, as in git)."""
    decision = None
    for ignore in ignores:
        verdict = ignore.ignored(path, is_dir)
        if verdict is not None:
            decision = ignore if verdict else None
    return decision


def _gitignored(path: str, is_dir: bool, ignores: Sequence[GitIgnore]) -> str | None:
    """Which ``.gitignore`` line ignores ``path``, as a reason."""
    ignore = _ignoring(path, is_dir, ignores)
    if ignore is None:
        return None
    where = os.path.join(ignore.folder, ".gitignore")
    return f"{ignore.rule(path, is_dir)!r} in {shown_path(where)}"


def shown_path(path: str) -> str:
    """A path relative to the current folder when it lies below it, else absolute."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def exclusion(path: str, root: str, exclude: Exclude = _no_exclude) -> str | None:
    """Which exclude removes ``path`` (a file or folder named on the command line), or None:
    a built-in exclude or a virtual environment among its folders below the project ``root``
    (only its name when it lies outside), a configured exclude, or a ``.gitignore`` line that
    ignores it or a folder above it — the same excludes a walk of the project applies."""
    absolute = os.path.abspath(path)
    is_dir = os.path.isdir(absolute)
    relative = os.path.relpath(absolute, root)
    if relative.startswith(".."):
        current, parts = os.path.dirname(absolute), [os.path.basename(absolute)]
    else:
        current, parts = root, [part for part in relative.split(os.sep) if part != "."]
    for depth, name in enumerate(parts):
        current = os.path.join(current, name)
        builtin = _builtin(name)
        if builtin is not None:
            return f"the built-in exclude {builtin!r}"
        if (is_dir or depth < len(parts) - 1) and _is_environment(current):
            return f"the built-in exclude of virtual environments ({name!r} is one)"
    configured = exclude(absolute)
    if configured is not None:
        return configured
    real = os.path.realpath(absolute)
    chain = _repository_chain(real if is_dir else os.path.dirname(real))
    ignores: list[GitIgnore] = []
    for number, current in enumerate(chain):
        why = _gitignored(current, True, ignores) if number else None
        if why is not None:
            return why
        own = GitIgnore.load(current) if current != real else None
        ignores = ignores + [own] if own is not None else ignores
    return None if is_dir else _gitignored(real, False, ignores)


def _walk(
    folder: str,
    resolved: str,
    display: str,
    ignores: list[GitIgnore],
    problems: list[str],
    exclude: Exclude,
    trace: Trace | None = None,
) -> Iterator[tuple[str, str, str]]:
    """(path, display name, resolved path) of the files below ``folder`` (absolute), whose
    resolved form is ``resolved``. Plain strings and one ``scandir`` per folder: this walks
    whole projects."""
    if trace is not None:
        trace.paths += [folder, os.path.join(folder, ".gitignore")]
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
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
        if trace is not None and entry.is_symlink():
            trace.symlink = True
        if is_dir:
            if _builtin(name) is not None:
                continue
            if _is_environment(entry.path):
                if trace is not None:
                    trace.paths.append(entry.path)
                continue
            if exclude(entry.path) is None and _ignoring(real, True, ignores) is None:
                yield from _walk(entry.path, real, shown, ignores, problems, exclude, trace)
        elif not name.endswith(SUFFIXES):
            continue
        elif not is_file:
            if entry.is_symlink():
                problems.append(f"{shown}: broken symlink or symlink loop")
        elif exclude(entry.path) is None and _ignoring(real, False, ignores) is None:
            yield entry.path, shown, os.path.realpath(real) if entry.is_symlink() else real


def discover(
    paths: Sequence[str],
    root: str | None = None,
    exclude: Exclude = _no_exclude,
    trace: Trace | None = None,
) -> Discovery:
    """Expand command-line paths into files. A given file or folder that an exclude removes
    (see :func:`exclusion`; ``root`` is the project root, by default the current folder) is
    listed in ``excluded``, as pre-commit passes every changed file; below a given folder the
    same excludes prune the walk. ``trace`` collects what the walks depend on."""
    result = Discovery()
    root = os.path.abspath(root or os.curdir)
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
        why = exclusion(given, root, exclude)
        if why is not None:
            result.excluded.append((given, why))
            continue
        if path.is_dir():
            resolved = os.path.realpath(given)
            ignores = _gitignores_above(resolved)
            if trace is not None:  # where a .git or a .gitignore above would change them
                for folder in _repository_chain(resolved)[:-1]:
                    trace.paths += [folder, os.path.join(folder, ".gitignore")]
            shown = os.path.normpath(given)
            found = _walk(
                os.path.abspath(given), resolved, shown, ignores, result.problems, exclude, trace
            )
        else:
            found = iter([(given, os.path.normpath(given), os.path.realpath(given))])
        for file, shown, key in found:
            if key not in seen:
                seen.add(key)
                result.files.append((Path(file), shown))
    return result
