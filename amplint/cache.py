"""The result cache in ``.amplint_cache/`` beside the configuration, as ruff keeps ``.ruff_cache/``.

One small JSON file per entry, named by the SHA-256 of its key, under a folder per amplint
version. Every write goes to a temporary file in the same folder and is moved into place with
``os.replace``, which is atomic: several amplint processes (pre-commit runs some at once) may
read and write the same cache, and a reader sees a whole entry or none. A damaged or unreadable
entry is a miss; a cache folder that cannot be written turns caching off for the run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import amplint

FOLDER = ".amplint_cache"
KEEP_VERSIONS = 4  # folders of amplint versions kept side by side (development churns them)
_VERSION_FOLDER = re.compile(r"^\d[\w.+]*-[0-9a-f]{12}$")
_GITIGNORE = "# Created by amplint: the whole folder is a cache.\n*\n"
_CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by amplint.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)


def _jsonable(value: Any) -> Any:
    """``json.dumps`` hook for what JSON lacks: dataclasses, sets (sorted: no hash-seed order)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return str(value)


def digest(*parts: Any) -> str:
    """A stable SHA-256 hex digest of ``parts`` (bytes are hashed as they are)."""
    hasher = hashlib.sha256()
    for part in parts:
        if not isinstance(part, bytes):
            part = json.dumps(part, default=_jsonable, sort_keys=True).encode()
        hasher.update(len(part).to_bytes(8, "little"))
        hasher.update(part)
    return hasher.hexdigest()


def code_version() -> str:
    """amplint's version, plus a fingerprint of its source files for development installs."""
    package = Path(amplint.__file__).parent
    stats = sorted(
        (str(path.relative_to(package)), path.stat().st_size, path.stat().st_mtime_ns)
        for path in package.rglob("*.py")
    )
    return f"{amplint.__version__}-{digest(stats)[:12]}"


class Cache:
    """A key-value store of JSON data on disk; ``Cache(None)`` stores nothing."""

    def __init__(self, top: Path | None, version: str | None = None) -> None:
        self.version = version or code_version()
        self.top = top
        self.folder = top / self.version if top is not None else None

    @classmethod
    def beside(cls, root: Path, cache_dir: Path | None = None) -> Cache:
        """The cache of the project at ``root`` (``cache_dir`` overrides the location)."""
        return cls(cache_dir or root / FOLDER)

    def _entry(self, key: str) -> Path:
        assert self.folder is not None
        return self.folder / key[:2] / f"{key[2:]}.json"

    def get(self, key: str) -> Any | None:
        """The value stored under ``key``, or ``None``."""
        if self.folder is None:
            return None
        try:
            with open(self._entry(key), encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return None

    def put(self, key: str, value: Any) -> None:
        """Store ``value`` (JSON data) under ``key``; on a write error caching stops."""
        if self.folder is None:
            return
        entry = self._entry(key)
        try:
            if not entry.parent.is_dir():
                if not self.folder.is_dir():
                    self._prepare()
                entry.parent.mkdir(parents=True, exist_ok=True)
            _write_atomically(entry, json.dumps(value, separators=(",", ":")))
        except OSError:
            self.folder = None

    def _prepare(self) -> None:
        """Create the cache with its ``.gitignore`` and cache directory tag, and drop the
        folders of older amplint versions but the newest few."""
        assert self.top is not None and self.folder is not None
        self.top.mkdir(parents=True, exist_ok=True)
        for name, text in ((".gitignore", _GITIGNORE), ("CACHEDIR.TAG", _CACHEDIR_TAG)):
            if not (self.top / name).exists():
                _write_atomically(self.top / name, text)
        others = [
            folder
            for folder in self.top.iterdir()
            if folder != self.folder and _VERSION_FOLDER.match(folder.name) and folder.is_dir()
        ]
        others.sort(key=lambda folder: folder.stat().st_mtime, reverse=True)
        import shutil

        for old in others[KEEP_VERSIONS - 1 :]:
            shutil.rmtree(old, ignore_errors=True)


def _write_atomically(path: Path, text: str) -> None:
    """Write through a temporary file in the same folder and an atomic rename. The temporary
    file is made as ``tempfile.mkstemp`` makes one (a random name, created exclusively),
    without importing tempfile (and shutil and random) into every run."""
    temporary = str(path.parent / f".tmp-{os.urandom(8).hex()}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    descriptor = os.open(temporary, flags, 0o600)
    os.chmod(temporary, 0o644)  # a 0600 file would hide a shared cache from others
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
