"""``.gitignore`` files, matched by pathspec's implementation of git's own rules."""

from __future__ import annotations

import os


def _spec(lines: list[str]):
    """pathspec's ``GitIgnoreSpec`` of ``lines``. A line git cannot use (a lone ``!`` or
    ``\\``) is skipped, as git skips it, instead of failing the whole file."""
    from pathspec import GitIgnoreSpec  # only runs that meet a .gitignore pay for it

    try:
        return GitIgnoreSpec.from_lines(lines)
    except ValueError:
        usable = []
        for line in lines:
            try:
                GitIgnoreSpec.from_lines([line])
            except ValueError:
                continue
            usable.append(line)
        return GitIgnoreSpec.from_lines(usable)


class GitIgnore:
    """The patterns of one ``.gitignore`` file, matched against paths below its folder."""

    def __init__(self, folder: str, lines: list[str]) -> None:
        self.folder = folder
        self._prefix = folder.rstrip(os.sep) + os.sep
        self._files = _spec(lines)
        # In git "gen/**" matches what is inside gen, not gen itself (so "!gen/keep.py" can
        # re-include a file); pathspec matches the folder too. Folders are checked with the
        # trailing "/**" read as "/*", which is the same for everything below the folder.
        self._folders = _spec(
            [line.rstrip()[:-1] if line.rstrip().endswith("/**") else line for line in lines]
        )

    @classmethod
    def load(cls, folder: str) -> GitIgnore | None:
        """The ``.gitignore`` of ``folder``; None when it has none (or it cannot be read)."""
        try:
            with open(os.path.join(folder, ".gitignore"), encoding="utf-8", errors="replace") as f:
                return cls(folder, f.read().splitlines())
        except OSError:
            return None

    def ignored(self, path: str, is_dir: bool) -> bool | None:
        """True (ignored) or False (re-included by ``!``) when a pattern decides, else None.
        ``path`` is absolute and resolved, like the folder the file was loaded from."""
        found = self._check(path, is_dir)
        return found[1].include if found is not None else None

    def rule(self, path: str, is_dir: bool) -> str | None:
        """The line of this file that decides for ``path`` (None when none does)."""
        found = self._check(path, is_dir)
        if found is None or found[1].index is None:
            return None
        spec, result = found
        if len(spec.patterns) == len(self._files.patterns):
            spec = self._files  # the line as written ("gen/**", not the "gen/*" folders use)
        return spec.patterns[result.index].pattern

    def _check(self, path: str, is_dir: bool):
        """The spec used for ``path`` and pathspec's CheckResult (None outside this folder)."""
        if not path.startswith(self._prefix):
            return None
        relative = path[len(self._prefix) :].replace(os.sep, "/")
        if is_dir:
            return self._folders, self._folders.check_file(relative + "/")
        return self._files, self._files.check_file(relative)
