"""What amplint knows about each file of a project without reading it again, as git's index does.

A run needs every project file's content digest (part of the cache keys) and its facts for the
project pass (:func:`amplint.project.scan`). Reading and hashing a whole project on every
pre-commit call costs more than checking the one changed file, so both are remembered in one
cache entry per project, next to the file's stat: modification and change times in nanoseconds,
size and inode. A file whose stat is unchanged is not read; any write changes its ctime, which
user space cannot set back, so a file edited in place keeping its old mtime and size is still
read again. Like git's "racily clean" rule, a file changed (mtime or ctime) less than
``RACY_SECONDS`` before the run started is remembered without its stat: a second write within
the file system's timestamp granularity could otherwise go unnoticed. Losing the entry (several
processes writing at once, a damaged file) only means reading the files again.

On Windows ``st_ctime`` is the creation time, not the change time, so there an in-place edit
that sets the old mtime back and keeps the size goes unseen (as in git, whose index has the
same limitation there); ``--no-cache`` reads everything.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass

from amplint.cache import Cache, digest
from amplint.project import ModuleFacts

RACY_SECONDS = 3  # coarser than any file system's timestamps amplint meets (FAT: 2 s)

Stat = tuple[int, int, int, int]  # mtime_ns, ctime_ns, size, inode


@dataclass(frozen=True)
class Known:
    """One file as last read: its stat (None when it may change unnoticed), digest, and facts,
    kept as JSON with their digest (the project pass may not need them: see
    :mod:`amplint.context_cache`)."""

    stat: Stat | None
    content: str
    stored: list | None  # the facts as JSON, decoded when first asked for
    fingerprint: str  # digest of ``stored``; "" without facts

    @classmethod
    def of(cls, stat: Stat | None, content: str, facts: ModuleFacts | None) -> Known:
        stored = facts.to_json() if facts is not None else None
        return cls(stat, content, stored, digest("facts", stored) if stored is not None else "")

    @functools.cached_property
    def facts(self) -> ModuleFacts | None:
        """The facts (None for a file out of the project pass, or a damaged entry)."""
        try:
            return ModuleFacts.from_json(self.stored) if self.stored is not None else None
        except (TypeError, ValueError):
            return None

    @property
    def pending(self) -> bool:
        """Whether what its switches turn on is not known yet (it needs a parse)."""
        return self.stored is not None and ModuleFacts.pending_in(self.stored)


def stat_of(path: str) -> Stat | None:
    """The parts of ``os.stat`` that change with the content; None when it cannot be stat'ed."""
    try:
        result = os.stat(path)
    except OSError:
        return None
    return (result.st_mtime_ns, result.st_ctime_ns, result.st_size, result.st_ino)


class StatCache:
    """Digests and facts of a project's files by path, stored in ``cache`` under ``root``."""

    def __init__(self, cache: Cache, root: str) -> None:
        self._cache = cache
        self._key = digest("stat-cache", root)
        stored = cache.get(self._key)
        self._stored: dict[str, list] = stored if isinstance(stored, dict) else {}  # decoded lazily
        self._known: dict[str, Known] = {}
        self._changed = False
        # Taken before any file is stat'ed: a change after it always shows in a later stat.
        self._started = time.time_ns()

    def get(self, path: str, stat: Stat) -> Known | None:
        """What was remembered of ``path`` if its stat is the one given (and was trusted)."""
        known = self._known.get(path)
        if known is None and path in self._stored:
            try:
                stored_stat, content, facts, fingerprint = self._stored[path]
            except (TypeError, ValueError):  # a damaged entry: read the file again
                return None
            if not isinstance(facts, (list, type(None))) or not isinstance(fingerprint, str):
                return None
            known = Known(tuple(stored_stat) if stored_stat else None, content, facts, fingerprint)
            self._known[path] = known
        if known is None or known.stat is None or known.stat != stat:
            return None
        return known

    def put(self, path: str, stat: Stat | None, content: str, facts: ModuleFacts | None) -> Known:
        """Remember ``path`` as read after ``stat`` was taken."""
        if stat is not None and max(stat[0], stat[1]) >= self._started - RACY_SECONDS * 10**9:
            stat = None  # changed just now: it may change again within the same timestamp
        known = self._known[path] = Known.of(stat, content, facts)
        # An entry without a stat never matches: it is not worth a write (an editor's lint on
        # save, or a hook right after an edit, would otherwise rewrite the cache every time).
        self._changed = self._changed or stat is not None
        return known

    def keep_only(self, paths: set[str]) -> None:
        """Forget files that are no longer part of the project."""
        for table in (self._stored, self._known):
            gone = table.keys() - paths
            for path in gone:
                del table[path]
            self._changed = self._changed or bool(gone)

    def save(self) -> None:
        """Store what changed (nothing is written when every file was known)."""
        if not self._changed:
            return
        entries = dict(self._stored)
        for path, known in self._known.items():
            entries[path] = [known.stat, known.content, known.stored, known.fingerprint]
        self._cache.put(self._key, dict(sorted(entries.items())))
        self._changed = False
