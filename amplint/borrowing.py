"""Constants a module reads from other modules of the project (``import sockeye.constants as
C`` ... ``if args.dtype == C.DTYPE_FP16: model.cast(C.DTYPE_FP16)``): the values its
switches compare and cast to.

A module's own facts are a function of its text; the values of another module's constants are
known only once the project pass has read every file (as text facts: top-level names assigned
once, :func:`amplint.project._constants`). So the names a module reads through its imports are
noted with its text facts (:func:`names_read`, only for modules naming a switch: the ones
parsed for what they turn on), the project pass looks their values up (:func:`borrowed`), and
the module's switches are read again with them (a second round, for those modules only).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amplint.cache import digest

if TYPE_CHECKING:
    from amplint.project import ModuleFacts

Borrowed = tuple[tuple[str, Any], ...]  # (name as the module's imports resolve it, value)

_READ = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\.([A-Za-z_]\w*)(?![\w(])")


def names_read(text: str, table: dict[str, str]) -> tuple[str, ...]:
    """What the text reads through its imports, as they resolve (``C.DTYPE_FP16`` ->
    ``.constants.DTYPE_FP16``; a name imported from a module as itself): the candidates for
    constants of other modules. Calls are left out (``C.build()`` is not a constant)."""
    found = {table[head] + "." + name for head, name in _READ.findall(text) if head in table}
    found.update(imported for bound, imported in table.items() if "." in imported.lstrip("."))
    return tuple(sorted(found))


def borrowed(facts: dict[Path, ModuleFacts]) -> dict[Path, Borrowed]:
    """For each module reading constants of other modules of the project: their values."""
    from amplint.project import _module_names, _relative_base

    readers = [path for path, fact in facts.items() if fact.borrows]
    if not readers:
        return {}
    names = _module_names(frozenset(str(path) for path in facts))
    by_name: dict[str, list[Path]] = {}
    for path in facts:
        by_name.setdefault(names[str(path)], []).append(path)
    tables: dict[Path, dict[str, Any]] = {}
    found = {}
    for reader in readers:
        importer = str(reader)
        package = reader.name == "__init__.py"
        values = []
        for name in facts[reader].borrows:
            module, _, attribute = name.rpartition(".")
            absolute = _relative_base(module, names[importer], package) if module else None
            candidates = [p for p in by_name.get(absolute or "", []) if p != reader]
            if len(candidates) != 1:  # none, or scripts of one name: which one is not known
                continue
            target = candidates[0]
            if target not in tables:
                tables[target] = dict(facts[target].constants)
            if attribute in tables[target]:
                values.append((name, tables[target][attribute]))
        if values:
            found[reader] = tuple(values)
    return found


def given_key(values: Borrowed) -> str:
    """What a module's facts record of the constants they were read with ("" for none)."""
    return digest("borrowed", values) if values else ""
