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
from collections.abc import Callable
from dataclasses import dataclass, field

from amplint.cache import Cache, digest
from amplint.project import ModuleFacts

RACY_SECONDS = 3  # coarser than any file system's timestamps amplint meets (FAT: 2 s)

Stat = tuple[int, int, int, int]  # mtime_ns, ctime_ns, size, inode


@dataclass(frozen=True)
class Known:
    """One file as last read: its stat (None when it may change unnoticed), digest, and the
    digest of its facts; the facts themselves are read when first asked for (the project pass
    may not need them: see :mod:`amplint.context_cache`)."""

    stat: Stat | None
    content: str
    fingerprint: str  # digest of the facts as JSON; "" for a file out of the project pass
    pending: bool  # what its switches turn on is not known yet: it needs a parse
    stored: Callable[[], list | None] = field(compare=False, repr=False)  # the facts as JSON

    @classmethod
    def of(cls, stat: Stat | None, content: str, facts: ModuleFacts | None) -> Known:
        stored = facts.to_json() if facts is not None else None
        fingerprint = digest("facts", stored) if stored is not None else ""
        pending = facts is not None and facts.outgoing is None
        return cls(stat, content, fingerprint, pending, lambda: stored)

    @functools.cached_property
    def facts(self) -> ModuleFacts | None:
        """The facts; None for a file out of the project pass, and for one whose facts were
        lost (several runs writing the cache at once, a damaged entry: read it again)."""
        try:
            stored = self.stored()
            return ModuleFacts.from_json(stored) if stored is not None else None
        except (TypeError, ValueError):
            return None


def stat_of(path: str) -> Stat | None:
    """The parts of ``os.stat`` that change with the content; None when it cannot be stat'ed."""
    try:
        result = os.stat(path)
    except OSError:
        return None
    return (result.st_mtime_ns, result.st_ctime_ns, result.st_size, result.st_ino)


class StatCache:
    """Digests and facts of a project's files by path, stored in ``cache`` under ``root``: the
    stats and digests in one entry, the facts by their digest in another, read only when the
    project pass needs them (most runs after an edit do not)."""

    def __init__(self, cache: Cache, root: str) -> None:
        self._cache = cache
        self._key = digest("stat-cache", root)
        self._facts_key = digest("stat-cache facts", root)
        stored = cache.get(self._key)
        self._stored: dict[str, list] = stored if isinstance(stored, dict) else {}  # decoded lazily
        self._known: dict[str, Known] = {}
        self._facts: dict[str, list] | None = None  # the stored facts by digest, once read
        self._new: dict[str, list] = {}  # facts found in this run, by digest
        self._changed = False
        # Taken before any file is stat'ed: a change after it always shows in a later stat.
        self._started = time.time_ns()

    def _stored_facts(self, fingerprint: str) -> list | None:
        if fingerprint in self._new:
            return self._new[fingerprint]
        if self._facts is None:
            table = self._cache.get(self._facts_key)
            self._facts = table if isinstance(table, dict) else {}
        return self._facts.get(fingerprint)

    def get(self, path: str, stat: Stat) -> Known | None:
        """What was remembered of ``path`` if its stat is the one given (and was trusted)."""
        known = self._known.get(path)
        if known is None and path in self._stored:
            try:
                stored_stat, content, fingerprint, pending = self._stored[path]
            except (TypeError, ValueError):  # a damaged entry: read the file again
                return None
            if not isinstance(fingerprint, str) or not isinstance(pending, bool):
                return None
            facts = functools.partial(self._stored_facts, fingerprint)
            stored_stat = tuple(stored_stat) if stored_stat else None
            known = self._known[path] = Known(stored_stat, content, fingerprint, pending, facts)
        if known is None or known.stat is None or known.stat != stat:
            return None
        return known

    def put(self, path: str, stat: Stat | None, content: str, facts: ModuleFacts | None) -> Known:
        """Remember ``path`` as read after ``stat`` was taken."""
        if stat is not None and max(stat[0], stat[1]) >= self._started - RACY_SECONDS * 10**9:
            stat = None  # changed just now: it may change again within the same timestamp
        known = self._known[path] = Known.of(stat, content, facts)
        if known.fingerprint:
            self._new[known.fingerprint] = known.stored()  # type: ignore[assignment]
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
        """Store what changed (nothing is written when every file was known): the facts first,
        so that a run reading the new entry finds them (if another run's write lost some, the
        files are read again)."""
        if not self._changed:
            return
        entries = dict(self._stored)
        for path, known in self._known.items():
            entries[path] = [known.stat, known.content, known.fingerprint, known.pending]
        used = {e[2] for e in entries.values() if isinstance(e, list) and len(e) == 4}
        facts = {}
        for fingerprint in sorted(used - {""}):
            stored = self._stored_facts(fingerprint)
            if stored is not None:
                facts[fingerprint] = stored
        if facts != self._facts:
            self._cache.put(self._facts_key, facts)
        self._cache.put(self._key, dict(sorted(entries.items())))
        self._changed = False
