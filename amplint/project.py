"""The cheap project-wide pass: which modules run in reduced precision, and why.

Text-level only (regular expressions, no parse): a module that turns on reduced precision passes
its precision to every module it imports within the linted tree, transitively, except through a
registry (a module importing ``HUB_IMPORTS`` or more modules of the tree, like a model zoo's
``__init__``): a script uses one model of a registry, and which one is not known statically.
A switch found in the text is confirmed on the file's tokens with string literals and comments
blanked (only files that match pay for tokenizing). The result for one file is a small picklable
:class:`Context` (part of the cache key of issue 5).
"""

from __future__ import annotations

import os
import re
from collections import deque
from dataclasses import dataclass
from pathlib import Path

# Keras 2 and 3 ways to set a mixed precision policy (amplint.precision reads them too).
POLICY_CALLS = ("set_global_policy", "set_policy", "set_dtype_policy", "Policy", "DTypePolicy")
_DTYPE = r"""(?:['"](?:mixed_)?(b?float16)['"]|(?:np|numpy|torch|tf|jnp)\.(b?float16|half))"""
# Model-level switches only (a float16 word in a docstring or a float16 tensor is not one).
_SWITCHES = (
    # amp.init('bfloat16'); "amp(?<!\wamp)" is "\bamp" with a literal prefix (10-70x faster).
    re.compile(r"amp(?<!\wamp)\.init\(\s*(?:target_dtype\s*=\s*)?" + _DTYPE),
    re.compile(r"\.cast\(\s*" + _DTYPE),
    re.compile(rf"(?:{'|'.join(POLICY_CALLS)})\(\s*(?:name\s*=\s*)?" + _DTYPE),
    re.compile(r"autocast(?<!\wautocast)\([^)]*?dtype\s*=\s*" + _DTYPE),
    re.compile(r"add_argument\([^)]*?default\s*=\s*" + _DTYPE),
)
_FLOAT16_SWITCHES = (
    re.compile(r"amp(?<!\wamp)\.init\(\s*\)"),  # contrib's default, and gluon_amp's without a dtype
    re.compile(r"\.half\(\)(?!\s*\.\s*(?:float|state_dict|cpu|numpy)\b)"),
    re.compile(r"autocast(?<!\wautocast)\((?![^)]*(?:dtype|enabled\s*=\s*False|['\"]cpu['\"]))"),
    re.compile(r"""add_argument\(\s*['"]--(?:use[-_])?(?:amp|fp16|half|mixed[-_]precision)['"]"""),
)
_IMPORT = re.compile(r"^[ \t]*import[ \t]+([\w. \t,]+)", re.MULTILINE)
_FROM = re.compile(
    r"^[ \t]*from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]+)", re.MULTILINE
)
_COMMENT = re.compile(r"#[^\n]*")
_DOCSTRING = re.compile(r"(\"\"\"|\'\'\')[\s\S]*?\1")


# A module importing this many modules of the linted tree is a registry (see above).
HUB_IMPORTS = 10


@dataclass(frozen=True)
class Context:
    """What the rest of the project says about one file: precisions it runs in, and why."""

    precisions: tuple[str, ...] = ()
    reason: str | None = None


NO_CONTEXT = Context()


@dataclass(frozen=True)
class ModuleFacts:
    """What the project pass reads from one file (pure function of its text; cacheable)."""

    precisions: tuple[str, ...]
    imports: tuple[str, ...]  # dotted names, relative ones keep their leading dots


def scan(source: str) -> ModuleFacts:
    """Imports and own reduced-precision switches of one module, from its text."""
    text = _COMMENT.sub("", _DOCSTRING.sub("''", source))
    precisions = _switches(text)
    if precisions:
        code = code_only(source)
        if code is not None:
            precisions = _switches(code)
    imports: list[str] = []
    for match in _IMPORT.finditer(text):
        for part in match.group(1).split(","):
            words = part.split()
            if words:
                imports.append(words[0])
    for match in _FROM.finditer(text):
        module = match.group(1)
        names = match.group(2).strip("() \t\n")
        imports.append(module)
        for part in names.split(","):
            words = part.split()
            if words and words[0] != "*":
                sep = "" if module.endswith(".") else "."
                imports.append(f"{module}{sep}{words[0]}")
    return ModuleFacts(tuple(sorted(precisions)), tuple(imports))


def _switches(text: str) -> set[str]:
    precisions: set[str] = set()
    for pattern in _SWITCHES:
        for match in pattern.finditer(text):
            precisions.add(
                "bfloat16" if match.group(1 if match.group(1) else 2).startswith("b") else "float16"
            )
    if any(pattern.search(text) for pattern in _FLOAT16_SWITCHES):
        precisions.add("float16")
    return precisions


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


def analyse(facts: dict[Path, ModuleFacts]) -> dict[Path, Context]:
    """Contexts of every file: precisions inherited from the modules that import it, directly
    or through other modules (module names come from the package folders)."""
    if not any(fact.precisions for fact in facts.values()):
        return {}
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

    base = os.path.commonpath([os.path.dirname(p) for p in paths])

    def shown(path: str) -> str:
        return os.path.relpath(path, base).replace(os.sep, "/")

    reasons: dict[str, dict[str, str]] = {}
    for source in (path for path in paths if facts[by_path[path]].precisions):
        seen = {source}
        queue = deque(imports_of(source))
        while queue:
            target = queue.popleft()
            if target in seen:
                continue
            seen.add(target)
            known = reasons.setdefault(target, {})
            for precision in facts[by_path[source]].precisions:
                reason = f"imported by {shown(source)}, which enables {precision}"
                known.setdefault(precision, reason)
            if len(imports_of(target)) < HUB_IMPORTS:
                queue.extend(imports_of(target))
    return {
        by_path[path]: Context(tuple(sorted(known)), "; ".join(known[p] for p in sorted(known)))
        for path, known in sorted(reasons.items())
    }
