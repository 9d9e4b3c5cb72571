"""amplint's speed on a real corpus, side by side with libcst parse-only and TorchFix.

``python -m benchmarks.lint_corpus`` downloads (``pip download --no-deps``) gluoncv 0.10.5.post0,
gluonnlp 0.10.0, d2l 1.0.3, keras 2.15.0 and timm 1.0.31, unpacks them into a temporary folder
(1,416 Python files, 439k lines; never committed) and times, in one run:

* ``ast.parse`` and ``libcst.parse_module`` of every file on one core (references);
* ``amplint check`` cold (empty cache) and warm (nothing changed), on all cores;
* ``amplint check`` of one ~270-line file, as a pre-commit hook runs it, alone and inside the
  corpus made a git project (so the whole project is read for context, cache warm);
* peak memory of a run on one package, on the corpus, and on the corpus copied twice (bounded);
* TorchFix 0.7.0 (``torchfix corpus``, and the same one file), installed into a temporary
  virtual environment (it needs libcst < 1.6, so not into the project's; it does not pull torch).

Every tool runs as its own process; wall time and that process tree's largest resident set are
measured by a small wrapper. Prints a Markdown table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

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


def measure(
    command: list[str], cwd: Path, env: dict[str, str] | None = None, repeat: int = 1
) -> dict:
    """Median wall time (s) and largest peak RSS (MiB) of ``command`` run ``repeat`` times."""
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", _WRAPPER, *command],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(out.stdout))
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


def amplint_snapshot(folder: Path) -> Path:
    """A copy of the committed amplint (``git archive HEAD``) so that edits made to the work
    tree while the benchmark runs neither change the code measured nor invalidate its cache;
    outside a git checkout, the repository folder itself."""
    repo = Path(__file__).resolve().parents[1]
    target = folder / "amplint-src"
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", "--format=tar", "HEAD", "amplint"],
        capture_output=True,
    )
    if archive.returncode != 0:
        return repo
    target.mkdir()
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def one_file(corpus: Path, lines: int = 270) -> Path:
    """The file whose length is closest to ``lines`` among those mentioning float16."""
    candidates = []
    for path in sorted(corpus.rglob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        if "float16" in text:
            candidates.append((abs(text.count("\n") - lines), str(path)))
    return Path(min(candidates)[1])


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
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="amplint-bench-"))
    try:
        corpus = fetch_corpus(folder)
        files = sorted(corpus.rglob("*.py"))
        line_count = sum(p.read_bytes().count(b"\n") for p in files)
        amplint = [sys.executable, "-m", "amplint", "check"]
        quiet = ["--format", "json", "--exit-zero", "--output-file", os.devnull]
        env = dict(os.environ, PYTHONPATH=str(amplint_snapshot(folder)))
        rows: list[tuple[str, str, dict]] = []

        def row(
            label: str, command: list[str], shown: str, cwd: Path = corpus, repeat: int = 1
        ) -> dict:
            result = measure(command, cwd, env, repeat)
            rows.append((label, shown, result))
            print(f"{label}: {result['wall']:.2f} s, {result['peak_mib']:.0f} MiB", file=sys.stderr)
            return result

        parse = [sys.executable, "-c", _PARSE]
        row("ast.parse, every file, 1 core", [*parse, "ast", "."], "ast.parse loop")
        row("libcst.parse_module, every file, 1 core", [*parse, "libcst", "."], "libcst loop")
        shutil.rmtree(corpus / ".amplint_cache", ignore_errors=True)
        package = next(p.name for p in sorted(corpus.iterdir()) if p.name.startswith("gluonnlp"))
        row(
            "amplint, one package (gluonnlp), no cache",
            [*amplint, package, *quiet, "--no-cache"],
            f"amplint check {package} --no-cache",
        )
        cold = row(
            "amplint cold (empty cache), all cores", [*amplint, ".", *quiet], "amplint check ."
        )
        warm = row("amplint warm (nothing changed)", [*amplint, ".", *quiet], "amplint check .")
        double = folder / "double"
        for copy in ("a", "b"):
            shutil.copytree(corpus, double / copy, ignore=shutil.ignore_patterns(".amplint_cache"))
        row(
            "amplint, the corpus twice (2x files), no cache: memory stays bounded",
            [*amplint, ".", *quiet, "--no-cache"],
            "amplint check . --no-cache",
            cwd=double,
        )
        shutil.rmtree(double)
        single = one_file(corpus)
        rel = str(single.relative_to(corpus))
        size = single.read_bytes().count(b"\n")
        row(
            f"amplint one file ({size} lines), no project, no cache (median of {ONE_FILE_RUNS})",
            [*amplint, rel, *quiet, "--no-cache"],
            f"amplint check {single.name} --no-cache",
            repeat=ONE_FILE_RUNS,
        )
        subprocess.run(["git", "init", "-q", str(corpus)], check=True)
        measure([*amplint, rel, *quiet], corpus, env)  # fill the cache for the git project
        row(
            "amplint one file in the corpus as a git project (cache warm, file edited)",
            [
                "sh",
                "-c",
                f"echo '# edited' >> {rel} && {' '.join(amplint)} {rel} {' '.join(quiet)}",
            ],
            f"amplint check {single.name}",
        )
        torchfix = None
        if not args.skip_torchfix:
            command = torchfix_command(folder)
            if command is not None:
                row(
                    f"TorchFix 0.7.0 one file ({size} lines) (median of {ONE_FILE_RUNS})",
                    [*command, rel],
                    f"torchfix {single.name}",
                    repeat=ONE_FILE_RUNS,
                )
                torchfix = row("TorchFix 0.7.0", [*command, "."], "torchfix .")

        date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        print(f"Machine: {machine()}; load average at the end {load}.")
        commit = subprocess.run(
            ["git", "-C", str(Path(__file__).resolve().parents[1]), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        print(f"Date: {date}. amplint at commit {commit or 'unknown'}.")
        print("Command: `python -m benchmarks.lint_corpus`.")
        print(f"Corpus: {', '.join(PACKAGES)} — {len(files):,} files, {line_count:,} lines.\n")
        print("| what | command | wall (s) | peak RSS (MiB) |")
        print("|---|---|---|---|")
        for label, command, result in rows:
            print(f"| {label} | `{command}` | {result['wall']:.2f} | {result['peak_mib']:.0f} |")
        print(f"\nwarm/cold = {warm['wall'] / cold['wall']:.3f}", end="")
        if torchfix is not None:
            print(f"; cold/TorchFix = {cold['wall'] / torchfix['wall']:.3f}", end="")
        print()
    finally:
        if args.keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
