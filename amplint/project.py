"""The project pass: which modules run in reduced precision because another module of the
project imports and runs them so, and in which of the importer's configurations.

What the pass reads from one file is a pure function of its text, cached with the file's stat
(:class:`ModuleFacts`): its imports (text), the files it reads (DeepSpeed JSON configurations it
names) and, only for files the switch table's text pattern matches
(:func:`amplint.switches.in_code`), what it turns on in the modules it imports — computed
by the precision model on a libcst parse (:class:`Outgoing`):

* a process-wide switch (``amp.init()``, a Keras policy) covers every module it imports within
  the linted tree, transitively, except through a registry (a module importing ``HUB_IMPORTS``
  or more modules of the tree, like a model zoo's ``__init__``: a script uses one model of a
  registry, and which one is not known statically);
* an object switch or an ``autocast`` block covers the classes and functions of another module
  its models are built from (``GPT`` of ``model.py`` for ``model = GPT(conf)`` run under
  ``torch.autocast``), and what that module imports.

Each spread carries the importer's configurations (``--dtype float16``). The result for one
file is a small picklable :class:`Context`, part of its cache key.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import re
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from amplint.linkage import Linkage

_IMPORT = re.compile(r"^[ \t]*import[ \t]+([\w. \t,]+)", re.MULTILINE)
_FROM = re.compile(
    r"^[ \t]*from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]+)", re.MULTILINE
)
_COMMENT = re.compile(r"#[^\n]*")
_DOCSTRING = re.compile(r"(\"\"\"|\'\'\')[\s\S]*?\1")
# Configuration files a module may read (DeepSpeed): their text is part of its cache key.
_JSON_NAME = re.compile(r"""['"]([^'"\n]+\.json)['"]""")

# A module importing this many modules of the linted tree is a registry (see above).
HUB_IMPORTS = 10


@dataclass(frozen=True)
class Spread:
    """Reduced precision another module of the project brings into this one: in ``dtype``
    (``how``: see :mod:`amplint.switches`), for the classes and functions ``names`` (None: all
    of the module), in the importer's configurations (``configurations``, as text; empty: all),
    and why (``imported by train.py, which enables float16``)."""

    dtype: str
    how: str
    names: frozenset[str] | None
    configurations: tuple[str, ...]
    why: str
    framework: str | None = None
    trains: bool = True  # the importer computes gradients (it trains what it switches)
    condition: str = ""  # the importer's configurations as its options (JSON, amplint.interface)

    def fact(self):
        """The spread as a precision fact of this module; the importer's configurations are
        one opaque choice here (``train.py: --dtype float16``)."""
        from amplint.conditions import ALWAYS, BOOL, Condition, Option, truthy
        from amplint.precision import Reduced

        condition: Condition = ALWAYS
        if self.configurations:
            shown = " or ".join(self.configurations)
            condition = truthy(Option(f"@{shown}", shown, BOOL, False, sets=True))
        return Reduced(condition, self.dtype, self.how, self.why, None, self.framework, False)


@dataclass(frozen=True)
class Context:
    """What the rest of the project says about one file: the reduced precision other modules
    bring into it, and the digests of other files it reads (JSON configurations)."""

    spreads: tuple[Spread, ...] = ()
    files: tuple[tuple[str, str], ...] = ()
    # what other modules pass to this one's functions, and what calling theirs does
    # (JSON, see amplint.interface): {function: {parameter: cases}}, {called name: summary}
    received: str = ""
    summaries: str = ""
    # options its functions read that project functions register (JSON [[dest, option]...])
    options: str = ""
    # functions of the project returning a module (a lazy import), by the name this module
    # calls them: (name, module)
    modules: tuple[tuple[str, str], ...] = ()

    @property
    def precisions(self) -> tuple[str, ...]:
        return tuple(sorted({spread.dtype for spread in self.spreads}))

    @property
    def reason(self) -> str | None:
        whys = list(dict.fromkeys(spread.why for spread in self.spreads))
        return "; ".join(whys) if whys else None


NO_CONTEXT = Context()


@dataclass(frozen=True)
class Outgoing:
    """What a module turns on in a module it imports: ``module`` as the importer names it
    (``.model``; None: every module it imports), ``names`` there (None: all of it)."""

    module: str | None
    names: tuple[str, ...] | None
    dtype: str
    how: str
    framework: str | None
    configurations: tuple[str, ...]
    subclasses: bool = False  # the classes of the project deriving from ``names`` (see below)
    trains: bool = True  # the importer computes gradients or steps an optimizer
    # with ``subclasses`` and ``module`` None: what the method ``factory`` of the subclasses
    # of the importer's own class ``names[0]`` builds (``model = cls.build_model(args)``)
    factory: str | None = None
    condition: str = ""  # ``configurations`` as the importer's options (JSON)


@dataclass(frozen=True)
class ModuleFacts:
    """What the project pass reads from one file (pure function of its text; cacheable).
    ``outgoing`` is None while it is not known: the text names a switch, and finding out what
    it turns on takes a parse (done in the check's workers, see :mod:`amplint.runner`)."""

    imports: tuple[str, ...]  # dotted names, relative ones keep their leading dots; ``m.*``
    outgoing: tuple[Outgoing, ...] | None = ()
    reads: tuple[str, ...] = ()  # files it names that amplint reads too (JSON)
    calls: str = ""  # JSON: its calls into the project with what they pass (amplint.interface)
    summaries: str = ""  # JSON: what calling its functions does
    # top-level classes with their bases, as imported (``espnet.nets.asr_interface.ASRInterface``)
    # or as written for a class of the same module
    classes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # top-level names bound to an imported function (``get_tf_dtype = _performance.get_tf_dtype``)
    aliases: tuple[tuple[str, str], ...] = ()
    # top-level names assigned once, to a number or a string (``NUM_CLASSES = 1001``)
    constants: tuple[tuple[str, int | float | str], ...] = ()
    registers: str = ""  # JSON: options it registers on parsers it is handed (registrations)
    # top-level functions returning a module they import: (function, module)
    modules: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> list:
        spreads = None
        if self.outgoing is not None:
            spreads = [
                [o.module, o.names, o.dtype, o.how, o.framework, list(o.configurations)]
                + [o.subclasses, o.trains, o.factory, o.condition]
                for o in self.outgoing
            ]
        classes = [[name, list(bases)] for name, bases in self.classes]
        imports, reads = list(self.imports), list(self.reads)
        aliases = [list(alias) for alias in self.aliases]
        constants = [list(constant) for constant in self.constants]
        modules = [list(pair) for pair in self.modules]
        return [
            *(imports, spreads, reads, self.calls, self.summaries, classes),
            *(aliases, constants, self.registers, modules),
        ]

    @classmethod
    def from_json(cls, data: list) -> ModuleFacts:
        imports, spreads, reads, calls, summaries, classes = data[:6]
        aliases, constants, registers, modules = data[6:]
        outgoing = None
        if spreads is not None:
            outgoing = tuple(
                Outgoing(
                    *(m, tuple(n) if n is not None else None, d, h, f, tuple(c)),
                    *(sub, t, fa, j),
                )
                for m, n, d, h, f, c, sub, t, fa, j in spreads
            )
        found = tuple((name, tuple(bases)) for name, bases in classes)
        bound = tuple((name, imported) for name, imported in aliases)
        written = tuple((name, value) for name, value in constants)
        returned = tuple((function, module) for function, module in modules)
        return cls(
            *(tuple(imports), outgoing, tuple(reads), calls, summaries, found),
            *(bound, written, registers, returned),
        )


def scan(source: str, path: str = "", parse: bool = True) -> ModuleFacts:
    """Imports, files read and outgoing reduced precision of the module at ``path`` (left
    unknown, None, when ``parse`` is false and finding it out needs a parse)."""
    text = _strip(source)
    imports = list(_imported(text))
    reads = tuple(sorted(set(_JSON_NAME.findall(text)))) if "deepspeed" in text else ()
    from amplint.switches import in_code, mentioned

    outgoing: tuple[Outgoing, ...] | None = ()
    calls = summaries = ""
    if imports and mentioned(text):
        if not parse:
            outgoing = None
        elif in_code(source):
            outgoing, calls, summaries = _outgoing(source, path)
    registers = ""
    if "add_argument" in text:
        from amplint.registrations import scan as registrations

        registers = registrations(source, _import_table(text))
    classes, aliases, constants = _classes(text), _aliases(text), _constants(text)
    return ModuleFacts(
        *(tuple(imports), outgoing, reads, calls, summaries, classes),
        *(aliases, constants, registers, _returned_modules(text)),
    )


_ALIAS = re.compile(r"^(\w+)[ \t]*=[ \t]*([A-Za-z_]\w*)\.([\w.]+)[ \t]*$", re.MULTILINE)


def _aliases(text: str) -> tuple[tuple[str, str], ...]:
    """Top-level names bound to an attribute of an imported module (text only), each with
    what it names as imported (``core.get_tf_dtype`` -> ``official.utils.flags._performance.
    get_tf_dtype``): calls through such a name reach the function it binds."""
    found = _ALIAS.findall(text)
    if not found:
        return ()
    table = _import_table(text)
    return tuple((name, f"{table[head]}.{rest}") for name, head, rest in found if head in table)


_CONSTANT = re.compile(
    r"^([A-Za-z_]\w*)[ \t]*(?::[^=\n]+)?=[ \t]*(-?\d+(?:\.\d*)?|'[^'\\\n]*'|\"[^\"\\\n]*\")[ \t]*$",
    re.MULTILINE,
)
# any assignment of a name, also indented (a function or a branch may change the global)
_ASSIGNED = re.compile(r"^[ \t]*([A-Za-z_]\w*)[ \t]*(?::[^=\n]+)?[-+*/|&]?=[^=]", re.MULTILINE)


def _constants(text: str) -> tuple[tuple[str, int | float | str], ...]:
    """Top-level names assigned a number or a string once (text only): what another module
    reading ``module.NAME`` gets."""
    found = _CONSTANT.findall(text)
    if not found:
        return ()
    counts: dict[str, int] = {}
    for name in _ASSIGNED.findall(text):
        counts[name] = counts.get(name, 0) + 1
    return tuple((name, ast.literal_eval(value)) for name, value in found if counts.get(name) == 1)


_CLASS = re.compile(r"^class[ \t]+(\w+)[ \t]*(?:\(([^)]*)\))?[ \t]*:", re.MULTILINE)


def _classes(text: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Top-level classes and their bases (text only), each base as its import names it."""
    found = list(_CLASS.finditer(text))
    if not found:
        return ()
    table = _import_table(text)
    classes = []
    for match in found:
        bases = []
        for part in (match.group(2) or "").split(","):
            base = part.strip()
            if not base or "=" in base or not re.fullmatch(r"[\w.]+", base):
                continue
            head, dot, rest = base.partition(".")
            imported = table.get(head, head)
            plain = imported == head or imported.startswith(head + ".")  # ``import a.b``
            bases.append(base if plain else imported + dot + rest)
        classes.append((match.group(1), tuple(bases)))
    return tuple(classes)


_INNER_IMPORT = re.compile(r"^[ \t]+import[ \t]+([\w.]+)(?:[ \t]+as[ \t]+(\w+))?[ \t]*$", re.M)
_RETURN_NAME = re.compile(r"^[ \t]+return[ \t]+(\w+)[ \t]*$", re.M)


def _returned_modules(text: str) -> tuple[tuple[str, str], ...]:
    """Top-level functions that import a module and return it, their only return (a lazy
    import: ``def try_import_nlp(): import gluonnlp ... return gluonnlp``), with the module."""
    if not _INNER_IMPORT.search(text):
        return ()
    starts = list(_TOP_LEVEL.finditer(text))
    found = []
    for i, match in enumerate(starts):
        if match.group(0).startswith("class"):
            continue
        body = text[match.end() : starts[i + 1].start() if i + 1 < len(starts) else len(text)]
        bound = {}
        for inner in _INNER_IMPORT.finditer(body):
            module, alias = inner.groups()
            if alias or "." not in module:
                bound[alias or module] = module
        returned = {name.group(1) for name in _RETURN_NAME.finditer(body)}
        if len(returned) == 1 and returned <= bound.keys():
            found.append((match.group(1), bound[returned.pop()]))
    return tuple(found)


def _strip(source: str) -> str:
    """The text with comments and docstrings removed (cheap, not exact)."""
    return _COMMENT.sub("", _DOCSTRING.sub("''", source))


def _imported(text: str):
    """(import as written, name it binds) for every import of the text."""
    for match in _IMPORT.finditer(text):
        for part in match.group(1).split(","):
            words = part.split()
            if words:
                yield words[0]
    for match in _FROM.finditer(text):
        module = match.group(1)
        yield module
        for part in match.group(2).strip("() \t\n").split(","):
            words = part.split()
            if words:  # a star import as ``module.*``
                sep = "" if module.endswith(".") else "."
                yield f"{module}{sep}{words[0]}"


def uses(source: str) -> dict[str, tuple[str, ...]]:
    """Each top-level class and function with the imports it uses, also through the other
    top-level classes and functions it names (text only: names in its body): how a spread to
    one class reaches its parts. Read only for modules a spread reaches."""
    text = _strip(source)
    return dict(_uses(text, _import_table(text)))


def _import_table(text: str) -> dict[str, str]:
    """Each name an import binds -> what it imports (``nn`` -> ``torch.nn``)."""
    local: dict[str, str] = {}
    for match in _IMPORT.finditer(text):
        for part in match.group(1).split(","):
            words = part.split()
            if words:
                bound = words[2] if len(words) == 3 and words[1] == "as" else words[0].split(".")[0]
                local[bound] = words[0]
    for match in _FROM.finditer(text):
        module = match.group(1)
        for part in match.group(2).strip("() \t\n").split(","):
            words = part.split()
            if words and words[0] != "*":
                sep = "" if module.endswith(".") else "."
                bound = words[2] if len(words) == 3 and words[1] == "as" else words[0]
                local[bound] = f"{module}{sep}{words[0]}"
    return local


_TOP_LEVEL = re.compile(r"^(?:async[ \t]+def|def|class)[ \t]+(\w+)", re.MULTILINE)
_WORD = re.compile(r"[A-Za-z_]\w*")


def _uses(text: str, local: dict[str, str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Each top-level class and function with the imports it uses, also through the other
    top-level classes and functions it names (text only: names in its body)."""
    starts = list(_TOP_LEVEL.finditer(text))
    words: dict[str, set[str]] = {}
    for i, match in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        words.setdefault(match.group(1), set()).update(_WORD.findall(text, match.end(), end))
    used = {name: {local[w] for w in found if w in local} for name, found in words.items()}
    changed = True
    while changed:
        changed = False
        for name, found in words.items():
            for other in found & words.keys():
                if other != name and not used[other] <= used[name]:
                    used[name] |= used[other]
                    changed = True
    return tuple((name, tuple(sorted(found))) for name, found in sorted(used.items()))


def _outgoing(source: str, path: str) -> tuple[tuple[Outgoing, ...], str, str]:
    """What the module's switches turn on in the modules it imports, what it passes to the
    project functions it calls, what calling its own functions does (a parse; nothing when
    the file cannot be parsed: its lint reports that)."""
    from amplint.engine import parsed

    found = parsed(source, path)
    if found is None:
        return (), "", ""
    model = found.model
    outgoing = tuple(Outgoing(*spread) for spread in model.outgoing())
    calls = model.bindings_out()
    summaries = model.summaries_out()
    return (
        outgoing,
        json.dumps(calls, sort_keys=True) if calls else "",
        json.dumps(summaries, sort_keys=True) if summaries else "",
    )


def code_only(source: str) -> str | None:
    """``source`` with comments removed and string literals other than single words (dtype
    names, option flags) replaced by ``''``; None when a string does not end. Strings are lexed
    by the newest Python's rules whatever Python runs this (:func:`amplint.syntax.code_only`)."""
    from amplint.syntax import code_only

    return code_only(source)


def _module_names(paths: list[str]) -> dict[str, str]:
    """The dotted name each file is imported under: its path from the folder above its
    outermost package (folders holding an ``__init__.py``), or its stem for a top-level script.
    Plain strings, not pathlib: this runs over every file of the project on each run."""
    packages = {os.path.dirname(p) for p in paths if os.path.basename(p) == "__init__.py"}
    prefixes: dict[str, list[str]] = {}

    def prefix(folder: str) -> list[str]:
        if folder not in prefixes:
            parent = os.path.dirname(folder)
            inside = folder in packages and parent != folder
            prefixes[folder] = [*prefix(parent), os.path.basename(folder)] if inside else []
        return prefixes[folder]

    names = {}
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        own = [] if stem == "__init__" else [stem]
        names[path] = ".".join(prefix(os.path.dirname(path)) + own)
    return names


def _relative_base(name: str, importer: str, is_package: bool) -> str | None:
    """Absolute form of a relative import (``..models.resnet``) seen from module ``importer``."""
    dots = len(name) - len(name.lstrip("."))
    if not dots:
        return name
    package = importer.split(".") if is_package else importer.split(".")[:-1]
    if dots - 1 > len(package):
        return None
    base = package[: len(package) - (dots - 1)]
    rest = name[dots:]
    return ".".join(base + ([rest] if rest else [])) or None


def analyse(
    facts: dict[Path, ModuleFacts],
    digest_of: Callable[[str], str] | None = None,
    source_of: Callable[[str], str | None] | None = None,
    only: set[Path] | None = None,
) -> dict[Path, Context]:
    """Contexts of every file: what the modules importing it (directly, or through other
    modules) turn on in it, and the digests of the files it reads (``digest_of``).
    ``source_of`` reads a module's text when a spread to one of its classes must follow what
    that class uses (by default, from disk). ``only``: the files whose contexts are wanted
    (the files being checked); the others are left out."""
    files: dict[str, tuple[tuple[str, str], ...]] = {}
    if digest_of is not None:
        for path, fact in facts.items():
            if fact.reads:
                folder = os.path.dirname(str(path))
                files[str(path)] = tuple(
                    (name, digest_of(os.path.join(folder, name))) for name in fact.reads
                )
    returning = {str(path): dict(fact.modules) for path, fact in facts.items() if fact.modules}
    if not returning and not any(fact.outgoing or fact.calls for fact in facts.values()):
        return {Path(p): Context((), f) for p, f in sorted(files.items())}  # (None: not known)
    by_path = {str(path): path for path in facts}
    paths = sorted(by_path, key=lambda path: path.split(os.sep))  # pathlib's order
    names = _module_names(paths)
    by_name: dict[str, list[str]] = {}
    for path, name in names.items():
        by_name.setdefault(name, []).append(path)

    def targets(importer: str, name: str) -> list[str]:
        absolute = _relative_base(name, names[importer], importer.endswith("__init__.py"))
        candidates = by_name.get(absolute, []) if absolute is not None else []
        if len(candidates) > 1:  # scripts with the same name: the importer's folder wins
            folder = os.path.dirname(importer)
            candidates = [c for c in candidates if os.path.dirname(c) == folder]
        return [c for c in candidates if c != importer]

    edges: dict[str, list[str]] = {}

    def imports_of(importer: str) -> list[str]:
        """The modules of the tree ``importer`` imports (resolved once, only when reached)."""
        if importer not in edges:
            imports = facts[by_path[importer]].imports
            edges[importer] = sorted({t for n in imports for t in targets(importer, n)})
        return edges[importer]

    def hub(importer: str) -> bool:
        """A registry: it imports ``HUB_IMPORTS`` or more modules of the tree (the package a
        ``from package import module`` runs on the way does not count)."""
        imported = imports_of(importer)
        passed = {
            path
            for path in imported
            if os.path.basename(path) == "__init__.py"
            and any(
                other != path and other.startswith(os.path.dirname(path) + os.sep)
                for other in imported
            )
        }
        return len(imported) - len(passed) >= HUB_IMPORTS

    base = os.path.commonpath([os.path.dirname(p) for p in paths])

    def shown(path: str) -> str:
        return os.path.relpath(path, base).replace(os.sep, "/")

    found: dict[str, dict[tuple, Spread]] = {}
    read_uses: dict[str, dict[str, tuple[str, ...]]] = {}

    def uses_in(path: str) -> dict[str, tuple[str, ...]]:
        if path not in read_uses:
            source = (source_of or _read_text)(path)
            read_uses[path] = uses(source) if source is not None else {}
        return read_uses[path]

    def add(target: str, spread: Spread) -> None:
        key = (spread.dtype, spread.how, spread.names, spread.configurations, spread.framework)
        key += (spread.trains,)
        found.setdefault(target, {}).setdefault(key, spread)

    def spread_on(start: list[str], spread: Spread, seen: set[str]) -> None:
        """``spread`` to the modules ``start`` and, whole, to what they import (not past a
        hub)."""
        queue = deque((target, spread) for target in start)
        while queue:
            target, current = queue.popleft()
            if target in seen:
                continue
            seen.add(target)
            add(target, current)
            if not hub(target):
                whole = dataclasses.replace(current, names=None)
                queue.extend((inner, whole) for inner in imports_of(target))

    def spread_named(importer: str, imported: str, spread: Spread, within: bool = False) -> None:
        """``spread`` to the class or function ``imported`` (``.model.GPT``, as ``importer``
        writes it; ``within``: a class of ``importer`` itself): in the module defining it —
        through re-exports — and to what it uses there, class by class (a model class passes
        it to all its parts; a registry function using many modules passes nothing on)."""
        pending, seen, whole = [(importer, imported)], set(), {importer}
        while pending:
            frm, name = pending.pop()
            module = [] if within else targets(frm, name)
            if module:  # ``from . import blocks``: a module used as a whole
                spread_on(module, dataclasses.replace(spread, names=None), whole)
                continue
            package, _, attribute = name.rpartition(".")
            inside = [frm] if within else []
            within = False
            for target in inside or (targets(frm, package) if package else []):
                if (target, attribute) in seen:
                    continue
                seen.add((target, attribute))
                fact = facts[by_path[target]]
                uses = uses_in(target)
                if attribute in uses:
                    add(target, dataclasses.replace(spread, names=frozenset({attribute})))
                    is_class = any(cls == attribute for cls, _ in fact.classes)
                    if is_class or len(uses[attribute]) < HUB_IMPORTS:
                        pending.extend((target, inner) for inner in uses[attribute])
                else:  # re-exported: follow the import of that name
                    pending.extend(
                        (target, inner)
                        for inner in fact.imports
                        if inner.rpartition(".")[2] == attribute and inner != name
                    )

    def is_class(path: str, name: str) -> bool:
        return any(cls == name for cls, _ in facts[by_path[path]].classes)

    def defining(
        importer: str, name: str, defines: Callable[[str, str], bool] = is_class
    ) -> set[tuple[str, str]]:
        """The (module, name) a dotted name written in ``importer`` is defined as (a class by
        default; what ``defines`` accepts), through re-exports."""
        pending, seen, found = [(importer, name)], set(), set()
        while pending:
            frm, name = pending.pop()
            package, _, attribute = name.rpartition(".")
            for target in targets(frm, package) if package else []:
                if (target, attribute) in seen:
                    continue
                seen.add((target, attribute))
                fact = facts[by_path[target]]
                if defines(target, attribute):
                    found.add((target, attribute))
                else:
                    pending.extend(
                        (target, inner)
                        for inner in fact.imports
                        if inner.rpartition(".")[2] == attribute and inner != name
                    )
        return found

    derived: dict[tuple[str, str], set[tuple[str, str]]] = {}

    def subclasses(base: tuple[str, str]) -> set[tuple[str, str]]:
        """Every class of the project deriving from ``base``, directly or not (the bases of
        every module's classes are read once, when first asked)."""
        if not derived:
            for path in paths:
                for cls, bases in facts[by_path[path]].classes:
                    for written in bases:
                        if "." not in written:
                            parents = {(path, written)}
                        else:
                            parents = defining(path, written)
                        for parent in parents:
                            derived.setdefault(parent, set()).add((path, cls))
        found, pending = set(), [base]
        while pending:
            for child in derived.get(pending.pop(), ()):
                if child not in found:
                    found.add(child)
                    pending.append(child)
        return found

    linkage = Linkage(
        {p: json.loads(facts[by_path[p]].calls) for p in paths if facts[by_path[p]].calls},
        {p: json.loads(facts[by_path[p]].summaries) for p in paths if facts[by_path[p]].summaries},
        targets,
        lambda path: facts[by_path[path]].imports,
        lambda path: set(uses_in(path)),
        lambda path: dict(facts[by_path[path]].aliases),
        lambda path: dict(facts[by_path[path]].constants),
        subclasses,
    )
    for source in (path for path in paths if facts[by_path[path]].outgoing):
        for out in facts[by_path[source]].outgoing:
            configurations = tuple(f"{shown(source)}: {c}" for c in out.configurations)
            plain = Spread(out.dtype, out.how, None, configurations, "", out.framework, out.trains)
            if out.factory is not None:
                for path, cls in sorted(subclasses((source, (out.names or ("",))[0]))):
                    why = f"built by {cls}.{out.factory}, run in {out.dtype} by {shown(source)}"
                    spread = dataclasses.replace(plain, why=why)
                    for used in _method_uses(path, cls, out.factory, source_of or _read_text):
                        spread_named(path, used, spread, within=used.startswith("."))
                continue
            if out.subclasses:
                for name in out.names or ():
                    for parent in defining(source, f"{out.module}.{name}"):
                        for path, cls in sorted(subclasses(parent)):
                            if not _imports_framework(facts[by_path[path]], out.framework):
                                continue  # a Chainer model of the same interface
                            why = f"{cls} is one of the {name} models {shown(source)} runs in "
                            spread = dataclasses.replace(plain, why=why + out.dtype)
                            spread_named(path, f".{cls}", spread, within=True)
                continue
            if out.module is None:
                why = f"imported by {shown(source)}, which enables {out.dtype}"
                spread = dataclasses.replace(plain, why=why, condition=out.condition)
                spread_on(imports_of(source), spread, {source})
                continue
            for name in out.names or ():
                why = f"{name} run in {out.dtype} by {shown(source)}"
                spread_named(source, f"{out.module}.{name}", dataclasses.replace(plain, why=why))
    for source, fact in linkage.switches():  # a project helper run with the caller's options
        configurations = tuple(f"{shown(source)}: {c}" for c in fact.condition.describe())
        why = f"imported by {shown(source)}, which enables {fact.dtype}"
        spread = Spread(fact.dtype, fact.how, None, configurations, why, fact.framework)
        spread_on(imports_of(source), spread, {source})
    tables = _registered_options(facts, by_path, paths, linkage, set(found))
    wanted = {str(path) for path in only} if only is not None else None
    aliases = {}
    if returning:
        returners = {function for found in returning.values() for function in found}

        def returns_module(path: str, name: str) -> bool:
            return name in returning.get(path, {})

        for path in paths if wanted is None else sorted(wanted & set(paths)):
            own = returning.get(path, {})
            imported = {}
            for written in facts[by_path[path]].imports:
                if written.rpartition(".")[2] in returners:
                    for module, function in sorted(defining(path, written, returns_module)):
                        imported[written] = returning[module][function]
            if own or imported:
                aliases[path] = tuple(sorted({**own, **imported}.items()))
    crossing = {
        path: linkage.context_of(path)
        for path in (linkage.modules() if wanted is None else wanted & set(paths))
    }
    contexts = {}
    every = set(found) | set(files) | set(crossing) | set(aliases)
    for path in sorted(every, key=lambda p: p.split(os.sep)):
        spreads = tuple(sorted(found.get(path, {}).values(), key=_spread_order))
        received, summaries = crossing.get(path, ("", ""))
        options = json.dumps(tables[path]) if path in found and tables.get(path) else ""
        context = Context(
            *(spreads, files.get(path, ()), received, summaries),
            *(options, aliases.get(path, ())),
        )
        if context != NO_CONTEXT and (wanted is None or path in wanted):
            contexts[by_path.get(path, Path(path))] = context
    return contexts


def _registered_options(
    facts: dict[Path, ModuleFacts],
    by_path: dict[str, Path],
    paths: list[str],
    linkage: Linkage,
    reduced: set[str],
) -> dict[str, list]:
    """Each module's options that project functions register on parsers (see
    :mod:`amplint.registrations`); the namespaces modules hand to functions of modules that
    run in reduced precision become bindings of ``linkage``."""
    from amplint.conditions import ALWAYS
    from amplint.interface import condition_json
    from amplint.registrations import Registry

    registers = {p: facts[by_path[p]].registers for p in paths if facts[by_path[p]].registers}
    registry = Registry(registers, linkage.locate)
    always = condition_json(ALWAYS)
    tables = {}
    for path in registry.modules():
        tables[path] = table = registry.options(path)
        bindings = []
        for name, key in registry.handoffs(path) if table else ():
            located = linkage.locate(path, name)
            if located is not None and located[0] in reduced:
                bindings.append([name, {key: [[always, ["ns", table, False]]]}, always])
        if bindings:
            linkage.add(path, bindings)
    return tables


_INDENT = re.compile(r"^([ \t]*)\S", re.MULTILINE)


def _method_uses(
    path: str, cls: str, method: str, source_of: Callable[[str], str | None]
) -> list[str]:
    """What the method ``method`` of the top-level class ``cls`` names (text only): its imports
    as written (``espnet2.asr.espnet_model.ESPnetASRModel``) and the top-level classes and
    functions of its own module (``.Net``); nothing when the class does not define it."""
    source = source_of(path)
    if source is None:
        return []
    text = _strip(source)
    start = re.search(rf"^class[ \t]+{cls}\b[^\n]*\n", text, re.MULTILINE)
    if start is None:
        return []
    end = re.compile(r"^\S", re.MULTILINE).search(text, start.end())
    body = text[start.end() : end.start() if end else len(text)]
    head = re.search(rf"^([ \t]+)(?:async[ \t]+)?def[ \t]+{method}\b", body, re.MULTILINE)
    if head is None:
        return []
    indent = len(head.group(1))
    stop = len(body)
    for line in _INDENT.finditer(body, head.end()):
        if len(line.group(1)) <= indent and not body.startswith(")", line.end() - 1):
            stop = line.start()
            break
    words = set(_WORD.findall(body, head.end(), stop))
    local = _import_table(text)
    tops = {m.group(1) for m in _TOP_LEVEL.finditer(text)}
    found = sorted(local[w] for w in words if w in local)
    return found + sorted(f".{w}" for w in words & tops if w not in local)


# The top-level modules a framework's models import.
_FRAMEWORK_MODULES = {
    "torch": ("torch",),
    "mxnet": ("mxnet", "gluoncv", "gluonnlp"),
    "keras": ("keras", "tensorflow", "tf_keras"),
}


def _imports_framework(fact: ModuleFacts, framework: str | None) -> bool:
    """Whether a module imports ``framework`` (a model class of it can be defined there)."""
    heads = _FRAMEWORK_MODULES.get(framework or "")
    return heads is None or any(name.split(".")[0] in heads for name in fact.imports)


def _read_text(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _spread_order(spread: Spread) -> tuple:
    return (spread.why, spread.dtype, spread.how, sorted(spread.names or ()), spread.configurations)
