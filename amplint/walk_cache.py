"""The project's files remembered across runs while nothing that decides them changed.

A run on a few files of a project still needs the list of all of its files (the project pass
and the stat cache start from it), and walking a large project costs more than the rest of
that run's project work together. What a walk finds depends only on the names in the folders
it lists, on the ``.gitignore`` files it reads (and on those and the ``.git`` above it), and on
the excludes. A folder's modification time changes whenever a name in it is added, removed or
renamed, so the walk's result is stored with the stat of each folder it listed or found to be
an environment and of each ``.gitignore`` it read or could have read; a later run that finds
every one of them unchanged reuses the result, one ``stat`` per folder instead of a listing.

Walks that meet a symlink are not stored (what a link points to changes without its folder),
nor are walks in which something changed less than ``RACY_SECONDS`` before they started (as in
:mod:`amplint.stat_cache`: a second change within the file system's timestamp granularity could
otherwise go unnoticed).
"""

from __future__ import annotations

import time

from amplint import stat_cache
from amplint.cache import Cache, digest
from amplint.files import Exclude, Trace, discover


def project_files(
    cache: Cache, root: str, exclude: Exclude, excludes: object
) -> list[tuple[str, str]]:
    """``discover([root], root, exclude).files`` with paths as strings (its problems are left
    out: a walk that has any is not stored), from the cache when nothing it depends on changed.
    ``excludes``: what ``exclude`` is made from (the configured patterns and their root)."""
    key = digest("walk", root, excludes)
    stored = cache.get(key)
    if isinstance(stored, dict):
        try:
            if all(_stat(path) == stat for path, stat in stored["stats"]):
                return [(path, shown) for path, shown in stored["files"]]
        except (KeyError, TypeError, ValueError):  # a damaged entry: walk again
            pass
    started = time.time_ns()
    trace = Trace()
    found = discover([root], root, exclude, trace)
    files = [(str(path), shown) for path, shown in found.files]
    stats = [[path, _stat(path)] for path in trace.paths]
    settled = started - stat_cache.RACY_SECONDS * 10**9
    if (
        not trace.symlink
        and not found.problems
        and all(stat is None or max(stat[0], stat[1]) < settled for _, stat in stats)
    ):
        cache.put(key, {"stats": stats, "files": files})
    return files


def _stat(path: str) -> list[int] | None:
    """The stat of ``path`` as JSON stores it (None: missing)."""
    stat = stat_cache.stat_of(path)
    return list(stat) if stat is not None else None
