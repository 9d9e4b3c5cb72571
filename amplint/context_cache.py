"""The project pass's contexts remembered across runs, as the stat cache remembers files.

Checking one changed file of a large project needs the context of that file only, yet
:func:`amplint.project.analyse` names every module and resolves the imports and calls that
reach it. What it returns depends only on every module's facts (remembered with their digest,
the fingerprint, by :mod:`amplint.stat_cache`), on the files it is asked about, and on the files
it reads itself: the JSON configurations modules name, and the text of some modules (the
checked file among them), which it looks at only without comments and docstrings
(:func:`amplint.project._strip`) and line by line (blank lines and trailing spaces mean nothing
to it). So its contexts are stored under a key made of the fingerprints and the files asked
about, with the digests of the files it read; a later run with the same key reuses them when
each of those files still has that digest (for a module whose bytes changed: the digest of its
lines of code without comments). An edit that keeps a module's facts (a comment, most changes
inside a function) then costs no project pass, and the facts of the other modules are not even
decoded.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from pathlib import Path

from amplint.cache import Cache, digest
from amplint.project import Context, ModuleFacts, Spread, _strip, analyse


def contexts(
    cache: Cache,
    fingerprints: Mapping[str, str],
    facts: Callable[[], dict[str, ModuleFacts]],
    digests: Mapping[str, str],
    digest_of: Callable[[str], str],
    wanted: set[str],
) -> dict[str, Context]:
    """:func:`amplint.project.analyse` of ``facts()`` for the files ``wanted``, from the cache
    when the same facts (``fingerprints``) and files read gave them before. Files by absolute
    path; ``digests``: the content digests of the project's files; ``digest_of`` digests a
    JSON file."""
    key = digest("contexts", sorted(fingerprints.items()), sorted(wanted))
    stored = cache.get(key)
    if isinstance(stored, dict):
        try:
            if _still_read(stored["sources"], digests) and all(
                digest_of(path) == known for path, known in stored["files"].items()
            ):
                return {path: _context(data) for path, data in stored["contexts"]}
        except (AttributeError, KeyError, TypeError, ValueError):  # damaged: analyse again
            pass
    sources: dict[str, list[str]] = {}
    files: dict[str, str] = {}

    def read(path: str) -> str | None:
        data = _read(path)
        sources[path] = _digests(data)
        return _text(data) if data is not None else None

    def read_digest(path: str) -> str:
        files[path] = digest_of(path)
        return files[path]

    given = {Path(path): fact for path, fact in facts().items()}
    found = analyse(given, read_digest, read, only={Path(path) for path in wanted})
    cache.put(
        key,
        {
            "sources": sources,
            "files": files,
            "contexts": sorted((str(path), _json(context)) for path, context in found.items()),
        },
    )
    return {str(path): context for path, context in found.items()}


def _read(path: str) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except OSError:
        return None


def _text(data: bytes) -> str:
    """What ``Path.read_text(encoding="utf-8", errors="replace")`` returns for ``data``."""
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace").read()


def _digests(data: bytes | None) -> list[str]:
    """A module's content digest and the digest of its text as the pass sees it ("": none)."""
    if data is None:
        return ["", ""]
    lines = (line.rstrip() for line in _strip(_text(data)).splitlines())
    return [digest(data), digest("code lines", [line for line in lines if line])]


def _still_read(sources: dict[str, list[str]], digests: Mapping[str, str]) -> bool:
    """Whether each module the pass read still reads the same to it: the same bytes (known
    for the project's modules: no read), else the same text without comments."""
    for path, (content, stripped) in sources.items():
        if digests.get(path) == content and content:
            continue
        if _digests(_read(path))[1] != stripped:
            return False
    return True


def _json(context: Context) -> list:
    spreads = [
        [s.dtype, s.how, sorted(s.names) if s.names is not None else None, list(s.configurations)]
        + [s.why, s.framework, s.trains, s.condition]
        for s in context.spreads
    ]
    pairs = [[list(pair) for pair in part] for part in (context.files, context.modules)]
    return [spreads, pairs[0], context.received, context.summaries, context.options, pairs[1]]


def _context(data: list) -> Context:
    spreads, files, received, summaries, options, modules = data
    return Context(
        tuple(
            Spread(dtype, how, frozenset(names) if names is not None else None, tuple(shown), *rest)
            for dtype, how, names, shown, *rest in spreads
        ),
        tuple(tuple(pair) for pair in files),
        *(received, summaries, options),
        tuple(tuple(pair) for pair in modules),
    )
