"""Checking: one libcst parse and one index walk per file, every selected rule on that index.

``lint_source`` is a pure function of (source, path, context, settings) -> findings, so results
can be cached and computed in other processes. Python's own parser checks every file's syntax
first (fast, and it shields libcst from inputs that crash it); libcst parses only files that can
hold a hazard (a reduced-precision switch or AMP API in the text, or a context saying the file
runs in reduced precision and code the rules look at). Positions are computed only for files
with findings.
"""

from __future__ import annotations

import functools
import re

from amplint.findings import Finding, parse_error
from amplint.project import NO_CONTEXT, Context
from amplint.settings import Settings


@functools.lru_cache(maxsize=1)
def _reduced_precision_code() -> re.Pattern[str]:
    """What rules look for in a file that runs in reduced precision only because an importer
    (or ``--assume-amp``) says so: layer constructors, data loaders, batch sizes, backward,
    losses, softmax and metrics."""
    from amplint.frameworks import keras, mxnet, torch

    names = {q.rsplit(".", 1)[1] for m in (mxnet, keras, torch) for q in m.LAYERS}
    alternatives = "|".join(sorted(names | {"DataLoader"}))
    return re.compile(
        rf"\b(?:{alternatives})\s*\(|\b(?:batch_size|classes|num_classes)\s*="
        r"|\.backward\(|\.gradient\(|softmax|cross_entropy|criterion|Loss\w*\(|\.update\("
    )


def might_hold_hazard(source: str, context: Context, settings: Settings) -> bool:
    """Cheap text test: can any rule fire on this file? (False: skip the parse.)"""
    from amplint.switches import in_code

    if in_code(source):
        return True
    if context.precisions or context.received or context.summaries or settings.assume_amp:
        return bool(_reduced_precision_code().search(source))
    return False


class Parsed:
    """A parsed module and its index; its precision model without project context (what
    the project pass asks) is built when first asked for."""

    def __init__(self, module, index, path: str) -> None:
        self.module, self.index, self.path = module, index, path

    @functools.cached_property
    def model(self):
        from amplint.precision import PrecisionModel

        return PrecisionModel(self.index, path=self.path)

    def with_borrowed(self, borrowed: dict):
        """The precision model read with the values of other modules' constants."""
        from amplint.precision import PrecisionModel

        return PrecisionModel(self.index.with_borrowed(borrowed), path=self.path)


_PARSED: dict[str, Parsed] = {}
_PARSED_KEEP = 4


def _parse(source: str, path: str) -> Parsed:
    """The parse of ``source``, shared by the project pass and the check of the same text in
    one process (a file edited in a project is parsed once). Raises libcst's errors."""
    from amplint.cache import digest

    key = digest(source)
    found = _PARSED.get(key)
    if found is None:
        import libcst as cst

        from amplint.index import FileIndex

        module = cst.parse_module(source)
        found = Parsed(module, FileIndex.build(module), path)
        while len(_PARSED) >= _PARSED_KEEP:
            del _PARSED[next(iter(_PARSED))]
        _PARSED[key] = found
    return found


def parsed(source: str, path: str = "") -> Parsed | None:
    """:func:`_parse`, None when the source does not parse."""
    if _python_parse_problem(source) is not None:
        return None
    import libcst as cst

    try:
        return _parse(source, path)
    except (cst.ParserSyntaxError, RecursionError, MemoryError):
        return None


def lint_source(
    source: str, path: str, context: Context = NO_CONTEXT, settings: Settings | None = None
) -> list[Finding]:
    """Findings for one module's source text, sorted. Never raises for bad input."""
    settings = settings or Settings()
    problem = _python_parse_problem(source)
    if problem is not None:
        return [parse_error(path, problem)]
    if not might_hold_hazard(source, context, settings):
        return []
    import libcst as cst

    from amplint.rules import RULES
    from amplint.rules.api import Issue, RuleContext

    try:
        shared = _parse(source, path)
        module, index = shared.module, shared.index
        if context.modules:  # names resolved through the project's lazy imports
            from amplint.index import FileIndex

            index = FileIndex.build(module, dict(context.modules))
        if context.borrowed:
            index = index.with_borrowed(dict(context.borrowed))
    except cst.ParserSyntaxError as error:
        return [parse_error(path, f"syntax error: {error.message}")]
    except RecursionError:
        return [parse_error(path, "too deeply nested to parse")]
    except MemoryError:
        return [parse_error(path, "too large to parse")]
    issues: list[tuple[str, Issue]] = []
    errors: list[Finding] = []
    try:
        ctx = RuleContext(path, source, index, settings, context)
    except RecursionError:
        return [parse_error(path, "too deeply nested to analyse")]
    except Exception as error:  # a bug of ours must not stop the run
        return [_internal_error(path, "the precision analysis", error)]
    for code in sorted(settings.select):
        rule = RULES.get(code)
        if rule is None:
            continue
        try:
            found = list(rule.check(ctx))
        except Exception as error:  # one rule failing on one file must not stop the run
            errors.append(_internal_error(path, code, error))
        else:
            issues.extend((code, issue) for issue in found)
    if not issues:
        return errors
    try:
        located = _locate(module, index, source, path, issues, ctx.provenance())
    except RecursionError:
        return [parse_error(path, "too deeply nested to analyse")]
    except Exception as error:
        return sorted([*errors, _internal_error(path, "locating findings", error)])
    return sorted(errors + located)


def _with(configuration: str) -> str:
    """``with --dtype float16``; ``without --amp`` as it is."""
    return (
        configuration if configuration.startswith(("without ", "not ")) else f"with {configuration}"
    )


def _internal_error(path: str, where: str, error: Exception) -> Finding:
    """AMP000 for a bug of ours, naming where it happened."""
    return parse_error(
        path, f"internal error in {where} ({type(error).__name__}: {error}); please report it"
    )


def _python_parse_problem(source: str) -> str | None:
    """Python's own (C) parser first: clear syntax errors, and a guard against inputs that make
    libcst's parser crash or take quadratic time (thousands of nested brackets or operators);
    syntax of a newer Python than this one is not an error (:mod:`amplint.syntax`)."""
    from amplint.syntax import parse_problem

    return parse_problem(source)


def _locate(module, index, source: str, path: str, issues, why: str) -> list[Finding]:
    """Turn issues into findings: positions, statement lines for suppressions, origins."""
    from amplint import suppressions
    from amplint.positions import locate
    from amplint.rules import RULES

    statements = {id(issue.node): index.statement_of(issue.node) for _, issue in issues}
    origins = [issue.origin[0] for _, issue in issues if issue.origin is not None]
    positions = locate(
        module, [issue.node for _, issue in issues] + list(statements.values()) + origins
    )
    suppressed = suppressions.parse(source)
    findings = []
    for code, issue in issues:
        name = RULES[code].name
        where = positions[id(issue.node)]
        statement = positions.get(id(statements[id(issue.node)]))
        first_line = statement.line if statement is not None else where.line
        if suppressed.covers(code, name, (where.line, first_line)):
            continue
        message = issue.message
        if issue.origin is not None:
            origin_node, what = issue.origin
            line = positions[id(origin_node)].line
            if line != where.line:
                message = f"{message} ({what}, line {line})"
        configurations: tuple[str, ...] = ()
        if issue.condition is not None:
            configurations = issue.condition.settings().describe()
            if configurations:
                message += f" ({'; or '.join(map(_with, configurations))})"
        message += why
        findings.append(
            Finding(
                path,
                where.line,
                where.column + 1,
                where.end_line,
                where.end_column + 1,
                code,
                name,
                message,
                fix=issue.fix,
                configurations=configurations,
            )
        )
    return findings


def decode(data: bytes) -> str:
    """Source bytes to text as Python does (PEP 263 coding cookie, BOM); UnicodeDecodeError or
    SyntaxError when it cannot be decoded."""
    import io
    import tokenize

    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    return data.decode(encoding)
