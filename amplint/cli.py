"""The command line: ``amplint check``, ``amplint rules``, ``amplint explain``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import click

from amplint import __version__

FORMATS = ("text", "json")


def _split(values: Sequence[str]) -> list[str]:
    return [part for value in values for part in value.split(",") if part.strip()]


def build_settings(
    select: Sequence[str],
    ignore: Sequence[str],
    assume_amp: str | None,
    alignment: int = 8,
    min_dimension: int | None = None,
):
    """Settings from command-line values; click.UsageError for unknown rules or bad values."""
    from amplint.rules import resolve
    from amplint.settings import Settings, default_selection

    try:
        chosen = resolve(_split(select)) if select else set(default_selection())
        chosen -= resolve(_split(ignore))
        return Settings(frozenset(chosen), alignment, min_dimension, assume_amp)
    except ValueError as error:
        raise click.UsageError(str(error)) from None


def emit(findings, files: int, output_format: str, out) -> None:
    """Write findings in the chosen format; the summary goes to stderr for machine formats."""
    from amplint.report import text

    if output_format == "json":
        from amplint.report import json as json_report

        json_report.render(findings, out)
        click.echo(text.summary(findings, files), err=True)
    else:
        text.render(findings, out)
        click.echo(text.summary(findings, files), file=out)


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
@click.option("--ignore", multiple=True, help="Rule codes, names or prefixes to skip.")
@click.option(
    "--format", "output_format", type=click.Choice(FORMATS), default="text", show_default=True
)
@click.option(
    "--assume-amp",
    type=click.Choice(["float16", "bfloat16"]),
    help="Treat every file as running in this reduced precision.",
)
@click.option(
    "--alignment",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="The multiple dimensions and batch sizes should have.",
)
@click.option(
    "--min-dimension",
    type=click.IntRange(min=0),
    default=None,
    help="Do not report dimensions smaller than this.",
)
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when findings are reported.")
def check(
    paths: tuple[str, ...],
    select: tuple[str, ...],
    ignore: tuple[str, ...],
    output_format: str,
    assume_amp: str | None,
    alignment: int,
    min_dimension: int | None,
    exit_zero: bool,
) -> None:
    """Check PATHS (default: the current folder) for mixed-precision hazards."""
    from amplint.engine import check_files
    from amplint.files import common_root, discover

    settings = build_settings(select, ignore, assume_amp, alignment, min_dimension)
    discovery = discover(paths or (".",))
    for problem in discovery.problems:
        click.echo(f"amplint: error: {problem}", err=True)
    root = common_root([Path(p) for p in paths or (".",)])
    result = check_files(discovery.files, settings, root)
    emit(result.findings, result.files, output_format, sys.stdout)
    sys.exit(exit_code(result.findings, len(discovery.problems), exit_zero))


@main.command()
@click.option(
    "--format", "output_format", type=click.Choice(FORMATS), default="text", show_default=True
)
def rules(output_format: str) -> None:
    """List every rule: code, name, whether it is on by default, and what it finds."""
    from amplint.rules import RULES

    if output_format == "json":
        import json

        data = [
            {"code": r.code, "name": r.name, "default": r.default, "summary": r.summary}
            for r in RULES.values()
        ]
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"{'AMP000':<8}{'parse-error':<34}{'on':<5}A file that cannot be parsed or decoded.")
    for rule in RULES.values():
        state = "on" if rule.default else "off"
        click.echo(f"{rule.code:<8}{rule.name:<34}{state:<5}{rule.summary}")


@main.command()
@click.argument("rule")
def explain(rule: str) -> None:
    """Print the documentation of RULE (a code such as AMP201, or a name)."""
    import textwrap

    from amplint.rules import PARSE_ERROR, lookup

    if rule.strip().upper() == PARSE_ERROR[0] or rule.strip().lower() == PARSE_ERROR[1]:
        click.echo(f"{PARSE_ERROR[0]} {PARSE_ERROR[1]}\n\n{PARSE_ERROR_DOC}")
        return
    found = lookup(rule)
    if found is None:
        raise click.UsageError(f"unknown rule {rule!r} (see `amplint rules`)")
    default = "" if found.default else " (off by default: turn it on with --select)"
    click.echo(f"{found.code} {found.name}{default}\n\n{textwrap.dedent(found.doc).strip()}")


PARSE_ERROR_DOC = """A file that cannot be analysed: a syntax error, undecodable bytes, nesting too
deep for the parser, an unreadable file, or an internal error of a rule on that file.

It is reported at 1:1, makes amplint exit with status 2 (also with --exit-zero), and cannot be
suppressed. Every other file is still checked.

Fix: make the file valid Python in its declared encoding (UTF-8 by default)."""
