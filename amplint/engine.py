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
from amplint.project import NO_CONTEXT, Context, code_only
from amplint.settings import Settings

# Rules that can fire without any reduced-precision signal in the file (contrib.amp misuse).
_AMP_API = re.compile(r"scale_loss|init_trainer|amp\.init|clip_grad|clip_global_norm")
_SIGNAL = re.compile(
    r"float16|bfloat16|\.half\b|autocast|amp\.init|mixed[-_]precision|\bfp16\b|--(?:use[-_])?(?:amp|half)\b"
)


def _mentions_amp(source: str) -> bool:
    """A precision switch or AMP API in the code itself: a mention in a comment or in prose
    ("# clip to float16.max") switches nothing on. Only files the regexes match are tokenized."""
    if not (_SIGNAL.search(source) or _AMP_API.search(source)):
        return False
    code = code_only(source)
    return code is None or bool(_SIGNAL.search(code) or _AMP_API.search(code))


@functools.lru_cache(maxsize=1)
def _reduced_precision_code() -> re.Pattern[str]:
    """What rules look for in a file that runs in reduced precision only because an importer
    (or ``--assume-amp``) says so: layer constructors, data loaders, batch sizes, backward."""
    from amplint.frameworks import keras, mxnet, torch

    names = {q.rsplit(".", 1)[1] for m in (mxnet, keras, torch) for q in m.LAYERS}
    alternatives = "|".join(sorted(names | {"DataLoader"}))
    return re.compile(
        rf"\b(?:{alternatives})\s*\(|\b(?:batch_size|classes|num_classes)\s*="
        r"|\.backward\(|\.gradient\("
    )


def might_hold_hazard(source: str, context: Context, settings: Settings) -> bool:
    """Cheap text test: can any rule fire on this file? (False: skip the parse.)"""
    if _mentions_amp(source):
        return True
    if context.precisions or settings.assume_amp:
        return bool(_reduced_precision_code().search(source))
    return False


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

    from amplint.index import FileIndex
    from amplint.precision import signals
    from amplint.rules import RULES
    from amplint.rules.api import Issue, RuleContext

    try:
        module = cst.parse_module(source)
        index = FileIndex.build(module)
    except cst.ParserSyntaxError as error:
        return [parse_error(path, f"syntax error: {error.message}")]
    except RecursionError:
        return [parse_error(path, "too deeply nested to parse")]
    except MemoryError:
        return [parse_error(path, "too large to parse")]
    issues: list[tuple[str, Issue]] = []
    errors: list[Finding] = []
    try:
        ctx = RuleContext(path, source, index, settings, context, signals(index))
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
