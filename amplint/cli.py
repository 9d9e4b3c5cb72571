"""The command line: ``amplint check``, ``amplint rules``, ``amplint explain``."""

from __future__ import annotations

import os
import sys

import click

from amplint import __version__

FORMATS = ("text", "json", "sarif", "github")


def emit(
    findings, files: int, output_format: str, out, successful: bool = True, problems: int = 0
) -> None:
    """Write findings in the chosen format; the summary goes to stderr for machine formats."""
    from amplint.report import text

    if output_format == "text":
        text.render(findings, out)
        click.echo(text.summary(findings, files, problems), file=out)
        return
    if output_format == "json":
        from amplint.report import json as json_report

        json_report.render(findings, out)
    elif output_format == "sarif":
        from amplint.report import sarif
        from amplint.rules import RULES

        out.write(sarif.render(findings, RULES.items(), successful=successful))
    else:
        from amplint.report import github

        out.write(github.render(findings))
    click.echo(text.summary(findings, files, problems), err=True)


def exit_code(findings, problems: int, exit_zero: bool) -> int:
    """0 clean, 1 findings (0 with --exit-zero), 2 when something could not be analysed."""
    if problems or any(f.code == "AMP000" for f in findings):
        return 2
    if findings and not exit_zero:
        return 1
    return 0


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="amplint")
def main() -> None:
    """amplint: find mixed-precision hazards in Gluon, Keras and PyTorch code."""


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option(
    "--select", multiple=True, help="Rule codes, names or prefixes to check (comma-separated)."
)
@click.option("--extend-select", multiple=True, help="Rules to check on top of the selection.")
@click.option("--ignore", multiple=True, help="Rule codes, names or prefixes to skip.")
@click.option(
    "--format", "output_format", type=click.Choice(FORMATS), default="text", show_default=True
)
@click.option(
    "--output-file",
    "-o",
    type=click.Path(dir_okay=False, writable=True, path_type=str),
    help="Write the report to this file instead of standard output.",
)
@click.option(
    "--assume-amp",
    type=click.Choice(["float16", "bfloat16"]),
    help="Treat every file as running in this reduced precision.",
)
@click.option(
    "--alignment",
    type=click.IntRange(min=1),
    default=None,
    help="The multiple dimensions and batch sizes should have (default: 8).",
)
@click.option(
    "--min-dimension",
    type=click.IntRange(min=0),
    default=None,
    help="Do not report dimensions smaller than this (default: 8; 0 reports all).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=str),
    help="Read [tool.amplint] from this file instead of the nearest pyproject.toml.",
)
@click.option("--no-cache", is_flag=True, help="Neither read nor write .amplint_cache/.")
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=None,
    help="Files checked in parallel (default: all cores).",
)
@click.option(
    "--stdin-filename",
    type=click.Path(path_type=str),
    help="The path of the source read from standard input (`-`), for context and reports.",
)
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when findings are reported.")
@click.option("--fix", is_flag=True, help="Fix what can be fixed safely, in place.")
@click.option("--diff", is_flag=True, help="Print the fixes as a unified diff; write nothing.")
@click.option(
    "--unsafe-fixes", is_flag=True, help="Also apply fixes that change shapes and checkpoints."
)
def check(
    paths: tuple[str, ...],
    select: tuple[str, ...],
    extend_select: tuple[str, ...],
    ignore: tuple[str, ...],
    output_format: str,
    output_file: str | None,
    assume_amp: str | None,
    alignment: int | None,
    min_dimension: int | None,
    config_file: str | None,
    no_cache: bool,
    jobs: int | None,
    stdin_filename: str | None,
    exit_zero: bool,
    fix: bool,
    diff: bool,
    unsafe_fixes: bool,
) -> None:
    """Check PATHS (default: the current folder; `-` reads standard input) for hazards."""
    from amplint.config import ConfigError
    from amplint.runner import STDIN, Request, run

    if stdin_filename is not None and not paths:
        paths = (STDIN,)
    request = Request(
        paths=paths or (".",),
        config_file=config_file,
        select=select,
        extend_select=extend_select,
        ignore=ignore,
        alignment=alignment,
        min_dimension=min_dimension,
        assume_amp=assume_amp,
        use_cache=not no_cache,
        jobs=jobs,
        stdin=sys.stdin.read() if STDIN in paths else None,
        stdin_filename=stdin_filename,
    )
    try:
        outcome = run(request)
    except ConfigError as error:
        click.echo(f"amplint: error: {error}", err=True)
        sys.exit(2)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    found, fixed, report_to = outcome.findings, None, sys.stdout
    if fix or diff:
        from amplint.fix.command import fix_outcome

        outcome, fixed = fix_outcome(request, outcome, unsafe_fixes, write=not diff)
        patch_or_source = "".join(fixed.diffs) if diff else fixed.stdin
        if patch_or_source is not None:  # stdout carries the patch or the fixed stdin
            sys.stdout.write(patch_or_source)
            sys.stdout.flush()
            report_to = sys.stderr
    for problem in outcome.problems:
        click.echo(f"amplint: error: {problem}", err=True)
    for line in outcome.excluded:
        click.echo(f"amplint: {line}", err=True)
    problems = len(outcome.problems)
    code = exit_code(found if diff else outcome.findings, problems, exit_zero)
    if diff:  # the patch alone on stdout; what would remain, and why, on stderr
        from amplint.report import text

        text.render(outcome.findings, sys.stderr)
    elif output_file is None:
        emit(outcome.findings, outcome.files, output_format, report_to, code != 2, problems)
    else:
        try:  # as ruff does, the report's folder is created when missing
            os.makedirs(os.path.dirname(os.path.abspath(output_file)), exist_ok=True)
            with open(output_file, "w", encoding="utf-8") as out:
                emit(outcome.findings, outcome.files, output_format, out, code != 2, problems)
        except OSError as error:
            click.echo(f"amplint: error: cannot write {output_file}: {error.strerror}", err=True)
            sys.exit(2)
    if fixed is not None:
        from amplint.fix.command import summary

        text_out = output_format == "text" and output_file is None and report_to is sys.stdout
        click.echo(summary(fixed, len(outcome.findings), not diff), err=not text_out)
    sys.exit(code)


@main.command()
@click.option(
    "--format", "output_format", type=click.Choice(FORMATS), default="text", show_default=True
)
def rules(output_format: str) -> None:
    """List every code: name, whether it is on by default, and what it finds.

    AMP4xx codes are found at run time by gluon_amp.report, never by `amplint check`.
    """
    from amplint.codes import CATALOG, SOURCE

    def state(code) -> str:
        return ("on" if code.default else "off") if code.stage == SOURCE else "run"

    if output_format == "json":
        import json

        data = [
            {
                "code": c.code,
                "name": c.name,
                "default": c.default,
                "stage": c.stage,
                "summary": _summary(c.doc),
            }
            for c in CATALOG.values()
        ]
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"{'AMP000':<8}{'parse-error':<34}{'on':<5}A file that cannot be parsed or decoded.")
    for code in CATALOG.values():
        click.echo(f"{code.code:<8}{code.name:<34}{state(code):<5}{_summary(code.doc)}")
    click.echo("\n(run: found at run time by gluon_amp.report, never by `amplint check`)")


def _summary(doc: str) -> str:
    """The first line of a documentation."""
    return doc.strip().splitlines()[0]


@main.command()
@click.argument("rule")
def explain(rule: str) -> None:
    """Print the documentation of RULE (a code such as AMP201, or a name), or of the topic
    `configurations` (how amplint decides in which configurations code is reduced)."""
    import textwrap

    from amplint.codes import PARSE_ERROR, SOURCE, entry
    from amplint.topics import TOPICS

    if rule.strip().lower() in TOPICS:
        click.echo(TOPICS[rule.strip().lower()].rstrip())
        return
    if rule.strip().upper() == PARSE_ERROR[0] or rule.strip().lower() == PARSE_ERROR[1]:
        click.echo(f"{PARSE_ERROR[0]} {PARSE_ERROR[1]}\n\n{PARSE_ERROR_DOC}")
        return
    found = entry(rule)
    if found is None:
        raise click.UsageError(f"unknown rule {rule!r} (see `amplint rules`)")
    if found.stage != SOURCE:
        note = " (found at run time by gluon_amp.report, never by amplint check)"
    else:
        note = "" if found.default else " (off by default: turn it on with --select)"
    click.echo(f"{found.code} {found.name}{note}\n\n{textwrap.dedent(found.doc).strip()}")
    if found.stage == SOURCE:
        click.echo(
            "\nA finding names the configurations of the script it holds in (--dtype float16):\n"
            "`amplint explain configurations` says how they are found."
        )


PARSE_ERROR_DOC = """A file that cannot be analysed: a syntax error, undecodable bytes, nesting too
deep for the parser, an unreadable file, or an internal error of a rule on that file.

It is reported at 1:1, makes amplint exit with status 2 (also with --exit-zero), and cannot be
suppressed. Every other file is still checked.

Fix: make the file valid Python in its declared encoding (UTF-8 by default)."""
