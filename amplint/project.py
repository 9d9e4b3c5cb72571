"""The cheap project-wide pass: which modules run in reduced precision, and why.

Text-level only (regular expressions, no parse): a module that turns on reduced precision passes
its precision to every module it imports within the linted tree, transitively. The result for one
file is a small picklable :class:`Context` (part of the cache key of issue 5).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from pathlib import Path

# A file can only turn on reduced precision if one of these appears in it (ast-free pre-filter).
_SIGNAL = re.compile(
    r"float16|bfloat16|\bfp16\b|\bbf16\b|\.half\(\)|autocast|\bamp\.init\(|--amp\b"
)
_BF16_ONLY = re.compile(r"bfloat16|\bbf16\b")
_FP16 = re.compile(r"(?<!b)float16|\bfp16\b|\.half\(\)|--amp\b|mixed_float16")
_IMPORT = re.compile(r"^[ \t]*import[ \t]+([\w. \t,]+)", re.MULTILINE)
_FROM = re.compile(
    r"^[ \t]*from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]+)", re.MULTILINE
)
_COMMENT = re.compile(r"#[^\n]*")


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
    """Imports and own reduced-precision signals of one module, from its text."""
    text = _COMMENT.sub("", source)
    precisions: set[str] = set()
    if _SIGNAL.search(text):
        if _FP16.search(text) or re.search(r"\bamp\.init\(\s*\)", text):
            precisions.add("float16")
        if _BF16_ONLY.search(text):
            precisions.add("bfloat16")
        if not precisions:
            precisions.add("float16")
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


def module_names(path: Path, root: Path) -> list[str]:
    """Dotted names under which ``path`` may be imported (every suffix of its path from root)."""
    try:
        parts = list(path.resolve().relative_to(root.resolve()).with_suffix("").parts)
    except ValueError:
        parts = [path.stem]
    if parts and parts[-1] == "__init__":
        parts.pop()
    return [".".join(parts[i:]) for i in range(len(parts))] if parts else []


def _resolve_relative(name: str, path: Path, root: Path) -> str | None:
    dots = len(name) - len(name.lstrip("."))
    if not dots:
        return name
    try:
        package = list(path.resolve().relative_to(root.resolve()).parent.parts)
    except ValueError:
        return None
    if dots - 1 > len(package):
        return None
    base = package[: len(package) - (dots - 1)]
    rest = name[dots:]
    return ".".join(base + ([rest] if rest else []))


def analyse(facts: dict[Path, ModuleFacts], root: Path) -> dict[Path, Context]:
    """Contexts of every file: precisions inherited from the modules that import it."""
    by_name: dict[str, list[Path]] = {}
    for path in sorted(facts):
        for name in module_names(path, root):
            by_name.setdefault(name, []).append(path)

    def targets(importer: Path, name: str) -> list[Path]:
        absolute = _resolve_relative(name, importer, root)
        if absolute is None:
            return []
        candidates = by_name.get(absolute, [])
        if len(candidates) > 1:  # ambiguous: prefer the importer's own folder (sys.path[0])
            candidates = [c for c in candidates if c.parent == importer.parent] or []
        return [c for c in candidates if c != importer]

    edges = {
        path: sorted({t for n in fact.imports for t in targets(path, n)})
        for path, fact in facts.items()
    }
    reasons: dict[Path, dict[str, str]] = {}
    for source in sorted(path for path, fact in facts.items() if fact.precisions):
        seen = {source}
        queue = deque(edges[source])
        while queue:
            target = queue.popleft()
            if target in seen:
                continue
            seen.add(target)
            known = reasons.setdefault(target, {})
            for precision in facts[source].precisions:
                known.setdefault(precision, f"imported by {source.name}, which enables {precision}")
            queue.extend(edges[target])
    return {
        path: Context(tuple(sorted(known)), "; ".join(known[p] for p in sorted(known)))
        for path, known in sorted(reasons.items())
    }
