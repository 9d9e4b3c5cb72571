"""Fixing files: read each file with findings a fixer handles, fix its text, then write it back
atomically (``--fix``) or print a unified diff (``--diff``).

Files are decoded as Python decodes them and written back in the same encoding (a BOM stays, line
endings stay). A write goes to a temporary file beside the target that replaces it in one rename,
only if the file still holds what was read: nothing the user had is lost.
"""

from __future__ import annotations

import difflib
import functools
import io
import os
import tempfile
import tokenize
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from amplint.findings import Finding
from amplint.fix.apply import fix_source


@dataclass
class FixRun:
    """What fixing did: the findings that remain, how many were fixed, the diffs, why fixable
    findings were not fixed, files that could not be written, and the fixed standard input."""

    remaining: list[Finding] = field(default_factory=list)
    fixed: int = 0
    diffs: list[str] = field(default_factory=list)
    reasons: dict[Finding, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    stdin: str | None = None


def fix_files(
    findings: Sequence[Finding],
    paths: Mapping[str, Path],
    lint: Callable[[str, str], list[Finding]],
    unsafe: bool = False,
    write: bool = True,
) -> FixRun:
    """Fix the files of ``findings``. ``paths`` maps a finding's path (as displayed) to the file;
    ``lint(display, text)`` re-lints a file's new text with its context and settings."""
    from amplint.fix import FIXERS

    by_file: dict[str, list[Finding]] = {}
    for finding in findings:
        by_file.setdefault(finding.path, []).append(finding)
    run = FixRun()
    for display, found in sorted(by_file.items()):
        path = paths.get(display)
        fixable = [f for f in found if f.code in FIXERS]
        if path is None or not fixable or any(f.code == "AMP000" for f in found):
            if path is None:
                run.reasons.update({f: "notebooks are not fixed automatically" for f in fixable})
            run.remaining.extend(found)
            continue
        try:
            data = path.read_bytes()
            text, encoding = _decode(data)
        except (OSError, UnicodeDecodeError, SyntaxError, LookupError) as error:
            run.errors.append(f"cannot read {display}: {error}")
            run.remaining.extend(found)
            continue
        result = fix_source(text, found, functools.partial(lint, display), unsafe)
        if result.changed:
            run.diffs.append(unified_diff(display, result.original, result.fixed))
            if write:
                try:
                    write_atomic(path, result.fixed.encode(encoding), data)
                except (OSError, UnicodeEncodeError) as error:
                    run.errors.append(f"cannot write {display}: {error}")
                    run.remaining.extend(found)
                    continue
        run.fixed += result.applied
        run.remaining.extend(result.remaining)
        run.reasons.update(result.reasons)
    run.remaining.sort()
    return run


def _decode(data: bytes) -> tuple[str, str]:
    """Text and encoding as Python reads source (PEP 263 cookie, BOM as ``utf-8-sig``)."""
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    return data.decode(encoding), encoding


def unified_diff(display: str, before: str, after: str) -> str:
    """A unified diff of one file (``a/`` and ``b/`` prefixes for relative paths, as git)."""
    relative = not Path(display).is_absolute()
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=f"a/{display}" if relative else display,
        tofile=f"b/{display}" if relative else display,
    )
    no_newline = "\n\\ No newline at end of file\n"
    return "".join(line if line.endswith("\n") else line + no_newline for line in lines)


def write_atomic(path: Path, data: bytes, expected: bytes) -> None:
    """Replace the file's content by ``data`` in one rename, keeping its permissions; a symlink
    stays a link (its target is written). OSError when the file is read-only or changed since it
    was read."""
    target = Path(os.path.realpath(path))
    if not os.access(target, os.W_OK) or not target.stat().st_mode & 0o222:
        raise OSError("the file is read-only; nothing was written")
    if target.read_bytes() != expected:
        raise OSError("the file changed while amplint was fixing it; nothing was written")
    handle, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        status = target.stat()
        os.chmod(temporary, status.st_mode & 0o7777)
        if hasattr(os, "chown") and (status.st_uid, status.st_gid) != (os.getuid(), os.getgid()):
            try:  # keep the owner when allowed to (as root); otherwise it is ours, as editors do
                os.chown(temporary, status.st_uid, status.st_gid)
            except PermissionError:
                pass
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
