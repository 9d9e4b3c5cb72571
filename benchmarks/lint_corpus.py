"""amplint's speed on a real corpus, side by side with libcst parse-only and TorchFix.

``python -m benchmarks.lint_corpus`` downloads (``pip download --no-deps``) gluoncv 0.10.5.post0,
gluonnlp 0.10.0, d2l 1.0.3, keras 2.15.0 and timm 1.0.31, unpacks them into a temporary folder
(1,416 Python files, 439k lines; never committed) and times, in one run:

* ``ast.parse`` and ``libcst.parse_module`` of every file on one core (references);
* ``amplint check`` cold (empty cache) and warm (nothing changed), on all cores;
* one ~270-line file that needs a libcst parse, as a pre-commit hook runs it: ``import libcst``
  plus its parse (the floor for any libcst-based tool), amplint alone, amplint inside the corpus
  made a git project (the whole project known for context, the file just edited), TorchFix;
  and amplint on a ~270-line file its text pre-filter lets skip the parse;
* peak memory of a run on one package, on the corpus, and on the corpus copied twice (bounded);
* TorchFix 0.7.0 (``torchfix corpus``, and the same one file), installed into a temporary
  virtual environment (it needs libcst < 1.6, so not into the project's; it does not pull torch).

amplint is installed from the committed tree (``git archive HEAD``) into its own virtual
environment, as a user's ``pip install`` does (byte-compiled, no extras), and run through its
``amplint`` console script, as pre-commit runs it. Every tool runs as its own process; wall time
and that process tree's largest resident set are measured by a small wrapper. Prints a Markdown
table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

PACKAGES = (
    "gluoncv==0.10.5.post0",
    "gluonnlp==0.10.0",
    "d2l==1.0.3",
    "keras==2.15.0",
    "timm==1.0.31",
)
TORCHFIX = "torchfix==0.7.0"
ONE_FILE_RUNS = 5  # a one-file run is short: take the median of several

# Runs a command, then prints its wall time and the peak RSS of the largest process it waited for.
_WRAPPER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
wall = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"wall": wall, "peak_kb": peak, "code": done.returncode,
                  "stderr": done.stderr.decode(errors="replace")[-2000:]}))
"""

_PARSE = """
import sys, pathlib
mode = sys.argv[1]
if mode == "libcst":
    import libcst
    parse = libcst.parse_module
else:
    import ast
    parse = ast.parse
failed = 0
for path in sorted(pathlib.Path(sys.argv[2]).rglob("*.py")):
    try:
        parse(path.read_text(encoding="utf-8"))
    except Exception:
        failed += 1
print(failed, file=sys.stderr)
"""


def measure(command: list[str], cwd: Path, repeat: int = 1) -> dict:
    """Median wall time (s) and largest peak RSS (MiB) of ``command`` run ``repeat`` times."""
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", _WRAPPER, *command],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        )
        run = json.loads(out.stdout)
        if run["code"] not in (0, 1):
            shown = " ".join(command)[-120:]
            print(f"warning: {shown} exited {run['code']}: {run['stderr'][-300:]}", file=sys.stderr)
        runs.append(run)
    result = runs[0]
    result["wall"] = statistics.median(run["wall"] for run in runs)
    result["peak_mib"] = max(run.pop("peak_kb") for run in runs) / 1024
    return result


def fetch_corpus(folder: Path) -> Path:
    """Download the five packages and unpack them (wheels and sdists) under ``folder/corpus``."""
    downloads = folder / "downloads"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(downloads)]
        + list(PACKAGES),
        check=True,
    )
    corpus = folder / "corpus"
    for archive in sorted(downloads.iterdir()):
        if archive.suffix == ".whl":
            with zipfile.ZipFile(archive) as wheel:
                wheel.extractall(corpus / archive.name[: -len(".whl")])
        elif archive.name.endswith(".tar.gz"):
            with tarfile.open(archive) as sdist:
                if hasattr(tarfile, "data_filter"):  # Python 3.12+, 3.11.4+: no path tricks
                    sdist.extractall(corpus, filter="data")
                else:
                    sdist.extractall(corpus)
    return corpus


def torchfix_command(folder: Path) -> list[str] | None:
    """``torchfix`` from a fresh virtual environment in ``folder`` (None if it cannot install)."""
    venv = folder / "torchfix-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", TORCHFIX],
        capture_output=True,
        text=True,
    )
    if pip.returncode != 0:
        print(f"TorchFix could not be installed: {pip.stderr.strip()[-500:]}", file=sys.stderr)
        return None
    return [str(venv / "bin" / "torchfix")]


def amplint_install(folder: Path) -> Path:
    """``amplint`` installed from the committed tree (``git archive HEAD``; outside a git
    checkout, the repository folder) into a fresh virtual environment in ``folder``: what users
    run, and edits made to the work tree while the benchmark runs change neither the code
    measured nor its cache."""
    repo = Path(__file__).resolve().parents[1]
    source = folder / "amplint-src"
    source.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", "--format=tar", "HEAD"], capture_output=True
    )
    if archive.returncode == 0:
        subprocess.run(["tar", "-x", "-C", str(source)], input=archive.stdout, check=True)
    else:
        source = repo
    venv = folder / "amplint-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(source)]
    subprocess.run(pip, check=True)
    return venv


# Run by the installed amplint's Python: the file closest to LINES lines among those that
# mention float16 and that amplint's text pre-filter sends to the libcst parse (NEEDS_PARSE 1)
# or lets skip it (0: a mention in a comment).
_PICK = """
import pathlib, sys
from amplint.engine import might_hold_hazard
from amplint.project import NO_CONTEXT
from amplint.settings import Settings
corpus, needs_parse, lines = pathlib.Path(sys.argv[1]), sys.argv[2] == "1", int(sys.argv[3])
candidates = []
for path in sorted(corpus.rglob("*.py")):
    text = path.read_text(encoding="utf-8", errors="replace")
    if "float16" in text and might_hold_hazard(text, NO_CONTEXT, Settings()) == needs_parse:
        candidates.append((abs(text.count("\\n") - lines), str(path)))
print(min(candidates)[1])
"""


def one_file(venv: Path, corpus: Path, needs_parse: bool, lines: int = 270) -> Path:
    """The benchmark's one file (see ``_PICK``), chosen by the amplint being measured."""
    python = str(venv / "bin" / "python")
    args = [str(corpus), "1" if needs_parse else "0", str(lines)]
    picked = subprocess.run(
        [python, "-c", _PICK, *args], capture_output=True, text=True, check=True
    )
    return Path(picked.stdout.strip())


def one_file_rows(
    corpus: Path,
    folder: Path,
    venv: Path,
    amplint: list[str],
    torchfix: list[str] | None,
    record: Callable[[str, str, dict], dict],
) -> None:
    """The one-file rows, their runs interleaved (the machine's speed drifts from one minute
    to the next): libcst's floor, amplint alone, amplint in a git project right after an edit,
    TorchFix; then amplint on a file whose text lets it skip the parse."""
    single = one_file(venv, corpus, needs_parse=True)
    rel = str(single.relative_to(corpus))
    size = single.read_bytes().count(b"\n")
    other = one_file(venv, corpus, needs_parse=False)
    alone, no_parse = folder / "alone", folder / "alone-no-parse"  # no project around them
    for target, path in ((alone, single), (no_parse, other)):
        target.mkdir()
        shutil.copy(path, target / path.name)
    subprocess.run(["git", "init", "-q", str(corpus)], check=True)
    measure([*amplint, rel], corpus)  # the project is known: the cache is warm but for the file
    floor = "import libcst, sys; libcst.parse_module(open(sys.argv[1]).read())"
    edit = f"echo '# edited' >> {shlex.quote(rel)} && {shlex.join([*amplint, rel])}"
    runs = [
        (
            f"`import libcst` + its parse of one file ({size} lines): the floor",
            f"python -c 'import libcst; parse' {single.name}",
            [str(venv / "bin" / "python"), "-c", floor, rel],
            corpus,
        ),
        (
            f"**amplint one file** ({size} lines, needs a parse), no project, no cache",
            f"amplint check {single.name} --no-cache",
            [*amplint, single.name, "--no-cache"],
            alone,
        ),
        (
            "amplint the same file in the corpus as a git project, just edited",
            f"amplint check {single.name}",
            ["sh", "-c", edit],
            corpus,
        ),
    ]
    if torchfix is not None:
        label = "**TorchFix 0.7.0 one file** (the same file)"
        runs.append((label, f"torchfix {single.name}", [*torchfix, rel], corpus))
    measured: list[list[dict]] = [[] for _ in runs]
    for _ in range(ONE_FILE_RUNS):
        for results, (_, _, command, cwd) in zip(measured, runs):
            results.append(measure(command, cwd))
    for results, (label, shown, _, _) in zip(measured, runs):
        result = dict(
            results[0],
            wall=statistics.median(r["wall"] for r in results),
            peak_mib=max(r["peak_mib"] for r in results),
        )
        record(f"{label} (median of {ONE_FILE_RUNS})", shown, result)
    lines = other.read_bytes().count(b"\n")
    record(
        f"amplint one file ({lines} lines, float16 only in a comment: no parse), no project, "
        f"no cache (median of {ONE_FILE_RUNS})",
        f"amplint check {other.name} --no-cache",
        measure([*amplint, other.name, "--no-cache"], no_parse, ONE_FILE_RUNS),
    )


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--skip-torchfix", action="store_true")
    parser.add_argument(
        "--one-file-only", action="store_true", help="only the one-file rows (a few minutes)"
    )
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="amplint-bench-"))
    try:
        corpus = fetch_corpus(folder)
        files = sorted(corpus.rglob("*.py"))
        line_count = sum(p.read_bytes().count(b"\n") for p in files)
        venv = amplint_install(folder)
        amplint = [str(venv / "bin" / "amplint"), "check"]
        quiet = ["--format", "json", "--exit-zero", "--output-file", os.devnull]
        torchfix = None if args.skip_torchfix else torchfix_command(folder)
        rows: list[tuple[str, str, dict]] = []

        def row(
            label: str, command: list[str], shown: str, cwd: Path = corpus, repeat: int = 1
        ) -> dict:
            result = measure(command, cwd, repeat)
            return record(label, shown, result)

        def record(label: str, shown: str, result: dict) -> dict:
            rows.append((label, shown, result))
            print(f"{label}: {result['wall']:.2f} s, {result['peak_mib']:.0f} MiB", file=sys.stderr)
            return result

        cold = warm = torchfix_all = None
        if not args.one_file_only:
            parse = [sys.executable, "-c", _PARSE]
            row("ast.parse, every file, 1 core", [*parse, "ast", "."], "ast.parse loop")
            row("libcst.parse_module, every file, 1 core", [*parse, "libcst", "."], "libcst loop")
            shutil.rmtree(corpus / ".amplint_cache", ignore_errors=True)
            package = next(
                p.name for p in sorted(corpus.iterdir()) if p.name.startswith("gluonnlp")
            )
            row(
                "amplint, one package (gluonnlp), no cache",
                [*amplint, package, *quiet, "--no-cache"],
                f"amplint check {package} --no-cache",
            )
            check_all = [*amplint, ".", *quiet]
            cold = row("amplint cold (empty cache), all cores", check_all, "amplint check .")
            warm = row("amplint warm (nothing changed)", check_all, "amplint check .")
            double = folder / "double"
            for copy in ("a", "b"):
                ignore = shutil.ignore_patterns(".amplint_cache")
                shutil.copytree(corpus, double / copy, ignore=ignore)
            row(
                "amplint, the corpus twice (2x files), no cache: memory stays bounded",
                [*amplint, ".", *quiet, "--no-cache"],
                "amplint check . --no-cache",
                cwd=double,
            )
            shutil.rmtree(double)
        one_file_rows(corpus, folder, venv, amplint + quiet, torchfix, record)
        if torchfix is not None and not args.one_file_only:
            torchfix_all = row("TorchFix 0.7.0", [*torchfix, "."], "torchfix .")

        date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        print(f"Machine: {machine()}; load average at the end {load}.")
        commit = subprocess.run(
            ["git", "-C", str(Path(__file__).resolve().parents[1]), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        print(f"Date: {date}. amplint at commit {commit or 'unknown'}.")
        flags = " --one-file-only" if args.one_file_only else ""
        print(f"Command: `python -m benchmarks.lint_corpus{flags}`.")
        print(f"Corpus: {', '.join(PACKAGES)} — {len(files):,} files, {line_count:,} lines.\n")
        print("| what | command | wall (s) | peak RSS (MiB) |")
        print("|---|---|---|---|")
        for label, command, result in rows:
            print(f"| {label} | `{command}` | {result['wall']:.2f} | {result['peak_mib']:.0f} |")
        if cold is not None and warm is not None:
            print(f"\nwarm/cold = {warm['wall'] / cold['wall']:.3f}", end="")
            if torchfix_all is not None:
                print(f"; cold/TorchFix = {cold['wall'] / torchfix_all['wall']:.3f}", end="")
            print()
    finally:
        if args.keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
