"""amplint's recall and precision on hand-labelled real training code (issue 11).

``python -m benchmarks.lint_accuracy`` downloads the archives listed in
``benchmarks/accuracy/corpus.csv`` (``pip download --no-deps``) into a temporary folder, checks that
every label of ``benchmarks/accuracy/labels.csv`` still points at a line holding its snippet,
installs amplint from the committed tree (or from ``--amplint-ref REF``, several times for a
before/after in one run) into its own virtual environment, runs ``amplint check --format json`` on
each package's folder as a user would (so the project context applies) and scores the findings on
the labelled files:

* recall: the share of positive labels with a finding of the same family (AMP1/AMP2/AMP3) within
  ±3 lines;
* precision (a): each finding is matched to the nearest label of its family within ±3 lines;
  findings matched to a positive / (those + findings matched to a trap);
* precision (b): of all findings on the labelled files, the share judged true by reading them
  (``benchmarks/accuracy/judgements.csv``; debatable counts as not true). Findings without a
  judgement are listed as "unjudged — read them" and the figure is marked incomplete.

The labelling procedure is in ``benchmarks/accuracy/README.md``. Per-family and per-framework
figures are printed too; on a few dozen positives they are noise.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.lint_corpus import amplint_install, machine

ACCURACY = Path(__file__).resolve().parent / "accuracy"
WINDOW = 3  # a finding matches a label of its family within this many lines
FAMILIES = ("AMP1", "AMP2", "AMP3")
FRAMEWORKS = ("mxnet", "pytorch", "keras")
LABEL_FIELDS = (
    "framework",
    "package",
    "version",
    "file",
    "line",
    "family",
    "verdict",
    "configuration",
    "snippet",
    "why",
)
JUDGEMENT_FIELDS = ("package", "version", "file", "line", "code", "verdict", "why")
CORPUS_FIELDS = ("package", "version", "archive")


class DataError(ValueError):
    """A labels, judgements or corpus file that cannot be used as it is."""


@dataclass(frozen=True)
class Label:
    framework: str
    package: str
    version: str
    file: str
    line: int
    family: str
    verdict: str  # "positive" or "trap"
    configuration: str
    snippet: str
    why: str


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    file: str
    line: int
    code: str
    message: str = ""

    @property
    def family(self) -> str:
        return self.code[:4]

    @property
    def key(self) -> tuple[str, str, str, int, str]:
        return (self.package, self.version, self.file, self.line, self.code)


@dataclass
class Score:
    """Recall and precision of one set of findings against the labels."""

    positives: int = 0
    found: int = 0
    on_positive: int = 0  # findings matched to a positive label
    on_trap: int = 0  # findings matched to a trap label
    unlabelled: int = 0  # findings with no label of their family within the window
    total: int = 0  # every finding on the labelled files
    judged_true: int = 0
    unjudged: list[Finding] = field(default_factory=list)
    missed: list[Label] = field(default_factory=list)
    trap_hits: list[tuple[Finding, Label]] = field(default_factory=list)

    @property
    def recall(self) -> float | None:
        return self.found / self.positives if self.positives else None

    @property
    def precision_labels(self) -> float | None:
        matched = self.on_positive + self.on_trap
        return self.on_positive / matched if matched else None

    @property
    def precision_read(self) -> float | None:
        return self.judged_true / self.total if self.total else None


def _rows(path: Path, fields: tuple[str, ...]) -> list[dict[str, str]]:
    """The rows of a CSV file whose header is exactly ``fields``."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != fields:
            raise DataError(
                f"{path}: header must be {','.join(fields)} "
                f"(found {','.join(reader.fieldnames or [])})"
            )
        rows = []
        for number, row in enumerate(reader, start=2):
            if None in row or any(value is None for value in row.values()):
                raise DataError(f"{path}:{number}: expected {len(fields)} columns")
            row["_where"] = f"{path}:{number}"
            rows.append(row)
        return rows


def _line_number(row: dict[str, str]) -> int:
    try:
        line = int(row["line"])
    except ValueError:
        raise DataError(f"{row['_where']}: line {row['line']!r} is not a number") from None
    if line < 1:
        raise DataError(f"{row['_where']}: line must be 1 or more")
    return line


def _one_of(row: dict[str, str], key: str, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if row[key] not in allowed:
        raise DataError(f"{row['_where']}: {key} {row[key]!r} is not one of {', '.join(allowed)}")
    return row[key]


def load_labels(path: Path) -> list[Label]:
    """The labels of ``path``, validated: known families, verdicts and frameworks, a line number,
    a snippet and a reason on every row, no site labelled twice."""
    labels, seen = [], set()
    for row in _rows(path, LABEL_FIELDS):
        for key in ("package", "version", "file", "snippet", "why", "configuration"):
            if not row[key].strip():
                raise DataError(f"{row['_where']}: {key} is empty")
        label = Label(
            framework=_one_of(row, "framework", FRAMEWORKS),
            package=row["package"],
            version=row["version"],
            file=row["file"],
            line=_line_number(row),
            family=_one_of(row, "family", FAMILIES),
            verdict=_one_of(row, "verdict", ("positive", "trap")),
            configuration=row["configuration"],
            snippet=row["snippet"],
            why=row["why"],
        )
        site = (label.package, label.version, label.file, label.line, label.family)
        if site in seen:
            raise DataError(
                f"{row['_where']}: {label.file}:{label.line} {label.family} is labelled twice"
            )
        seen.add(site)
        labels.append(label)
    return labels


def load_judgements(path: Path) -> dict[tuple[str, str, str, int, str], tuple[str, str]]:
    """(package, version, file, line, code) -> (verdict, why), validated."""
    judgements: dict[tuple[str, str, str, int, str], tuple[str, str]] = {}
    for row in _rows(path, JUDGEMENT_FIELDS):
        verdict = _one_of(row, "verdict", ("true", "false", "debatable"))
        if not row["why"].strip():
            raise DataError(f"{row['_where']}: why is empty")
        key = (row["package"], row["version"], row["file"], _line_number(row), row["code"])
        if key in judgements:
            raise DataError(
                f"{row['_where']}: {row['file']}:{row['line']} {row['code']} is judged twice"
            )
        judgements[key] = (verdict, row["why"])
    return judgements


def load_corpus(path: Path) -> list[tuple[str, str, str]]:
    """(package, version, archive kind) of every archive to fetch."""
    return [
        (row["package"], row["version"], _one_of(row, "archive", ("wheel", "sdist")))
        for row in _rows(path, CORPUS_FIELDS)
    ]


def check_snippets(labels: Iterable[Label], roots: dict[tuple[str, str], Path]) -> list[str]:
    """One line per label whose file is missing or whose line does not hold its snippet."""
    problems = []
    for label in labels:
        root = roots.get((label.package, label.version))
        where = f"{label.package}=={label.version} {label.file}:{label.line}"
        if root is None:
            problems.append(f"{where}: the package is not in corpus.csv")
            continue
        path = root / label.file
        if not path.is_file():
            problems.append(f"{where}: no such file in the archive")
            continue
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        text = lines[label.line - 1] if label.line <= len(lines) else ""
        if label.snippet not in text:
            problems.append(f"{where}: expected {label.snippet!r}, found {text.strip()!r}")
    return problems


def nearest_label(finding: Finding, labels: Iterable[Label]) -> Label | None:
    """The label of the finding's family and file nearest to its line within ``WINDOW`` lines
    (the earlier line on a tie), or None."""
    best: Label | None = None
    for label in labels:
        if (label.package, label.version, label.file, label.family) != (
            finding.package,
            finding.version,
            finding.file,
            finding.family,
        ):
            continue
        distance = abs(label.line - finding.line)
        if distance > WINDOW:
            continue
        if best is None or (distance, label.line) < (abs(best.line - finding.line), best.line):
            best = label
    return best


def score(
    labels: list[Label],
    findings: list[Finding],
    judgements: dict[tuple[str, str, str, int, str], tuple[str, str]],
) -> Score:
    """Recall and both precisions of ``findings`` (on the labelled files only) against
    ``labels``; ``judgements`` decide precision (b)."""
    files = {(label.package, label.version, label.file) for label in labels}
    findings = [f for f in findings if (f.package, f.version, f.file) in files]
    result = Score(total=len(findings))
    for label in labels:
        if label.verdict != "positive":
            continue
        result.positives += 1
        if any(
            (f.package, f.version, f.file, f.family)
            == (label.package, label.version, label.file, label.family)
            and abs(f.line - label.line) <= WINDOW
            for f in findings
        ):
            result.found += 1
        else:
            result.missed.append(label)
    for finding in findings:
        label = nearest_label(finding, labels)
        if label is None:
            result.unlabelled += 1
        elif label.verdict == "positive":
            result.on_positive += 1
        else:
            result.on_trap += 1
            result.trap_hits.append((finding, label))
        judged = judgements.get(finding.key)
        if judged is None:
            result.unjudged.append(finding)
        elif judged[0] == "true":
            result.judged_true += 1
    return result


def breakdown(
    labels: list[Label],
    findings: list[Finding],
    judgements: dict[tuple[str, str, str, int, str], tuple[str, str]],
) -> dict[str, Score]:
    """Scores per family and per framework (labels and findings restricted to each)."""
    frameworks = {(lab.package, lab.version, lab.file): lab.framework for lab in labels}
    parts: dict[str, Score] = {}
    for family in FAMILIES:
        parts[family] = score(
            [lab for lab in labels if lab.family == family],
            [f for f in findings if f.family == family],
            judgements,
        )
    for framework in FRAMEWORKS:
        parts[framework] = score(
            [lab for lab in labels if lab.framework == framework],
            [f for f in findings if frameworks.get((f.package, f.version, f.file)) == framework],
            judgements,
        )
    return parts


def parse_findings(report: str, package: str, version: str, root: Path) -> list[Finding]:
    """amplint's JSON report, paths made relative to the package's folder ``root``."""
    findings = []
    for item in json.loads(report or "[]"):
        path = Path(item["path"])
        if not path.is_absolute():
            path = root / path
        try:
            relative = path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            continue
        findings.append(
            Finding(package, version, relative, int(item["line"]), item["code"], item["message"])
        )
    return findings


def fetch(folder: Path, corpus: list[tuple[str, str, str]]) -> dict[tuple[str, str], Path]:
    """Download and unpack every archive of the corpus, one folder per package version (a wheel
    as is, an sdist without its top folder). ``lint_corpus.fetch_corpus`` downloads its own fixed
    list into one folder, so it is not reusable here."""
    roots = {}
    for package, version, archive in corpus:
        downloads = folder / "downloads" / f"{package}-{version}"
        # --no-binary for the package alone: its build requirements stay wheels (fast)
        binary = ["--only-binary", ":all:"] if archive == "wheel" else ["--no-binary", package]
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *binary]
            + ["-d", str(downloads), f"{package}=={version}"],
            check=True,
        )
        (file,) = sorted(downloads.iterdir())
        root = folder / "corpus" / f"{package}-{version}"
        if file.suffix == ".whl":
            with zipfile.ZipFile(file) as wheel:
                wheel.extractall(root)
        else:
            unpacked = folder / "unpacked" / f"{package}-{version}"
            with tarfile.open(file) as sdist:
                if hasattr(tarfile, "data_filter"):
                    sdist.extractall(unpacked, filter="data")
                else:
                    sdist.extractall(unpacked)
            (top,) = list(unpacked.iterdir())
            shutil.move(str(top), str(root))
        roots[(package, version)] = root
    return roots


def install_amplint(folder: Path, ref: str | None) -> Path:
    """A virtual environment with amplint installed from the committed tree (``ref`` None: the
    same as ``lint_corpus.amplint_install``) or from the git ``ref``."""
    if ref is None:
        return amplint_install(folder)
    repo = Path(__file__).resolve().parents[1]
    source = folder / "amplint-src"
    source.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", "--format=tar", ref], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive.stdout, check=True)
    venv = folder / "amplint-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "--quiet", str(source)], check=True)
    return venv


def run_amplint(
    venv: Path, roots: dict[tuple[str, str], Path], labels: list[Label]
) -> list[Finding]:
    """``amplint check . --format json`` in the folder of every labelled package."""
    findings = []
    for package, version in sorted({(lab.package, lab.version) for lab in labels}):
        root = roots[(package, version)]
        done = subprocess.run(
            [str(venv / "bin" / "amplint"), "check", ".", "--format", "json", "--exit-zero"]
            + ["--no-cache"],
            cwd=root,
            capture_output=True,
            text=True,
        )
        if done.returncode not in (0, 1):
            tail = done.stderr.strip()[-500:]
            raise RuntimeError(f"amplint on {package}=={version} exited {done.returncode}: {tail}")
        findings += parse_findings(done.stdout, package, version, root)
    return findings


def _share(value: float | None, part: int, whole: int) -> str:
    return "—" if value is None else f"{value:.2f} ({part}/{whole})"


def report(name: str, labels: list[Label], findings: list[Finding], judgements: dict) -> Score:
    """Print one amplint's figures as Markdown; returns the overall score."""
    total = score(labels, findings, judgements)
    parts = breakdown(labels, findings, judgements)
    print(f"\n### amplint {name}\n")
    print("| scope | positives | recall | precision (a), labels | precision (b), read | findings |")
    print("|---|---:|---:|---:|---:|---:|")
    for scope, part in [("**all**", total), *parts.items()]:
        complete = "" if not part.unjudged else f", {len(part.unjudged)} unjudged"
        matched = part.on_positive + part.on_trap
        print(
            f"| {scope} | {part.positives} | {_share(part.recall, part.found, part.positives)} "
            f"| {_share(part.precision_labels, part.on_positive, matched)} "
            f"| {_share(part.precision_read, part.judged_true, part.total)}{complete} "
            f"| {part.total} ({part.unlabelled} away from any label) |"
        )
    print("\nPer-family and per-framework rows stand on a handful of labels each: noise.")
    if total.unjudged:
        print(f"\n**Precision (b) is incomplete: {len(total.unjudged)} unjudged — read them** ")
        print("(rows to complete and add to benchmarks/accuracy/judgements.csv):\n```")
        for f in total.unjudged:
            message = f.message.replace('"', "'")
            print(f'{f.package},{f.version},{f.file},{f.line},{f.code},,"{message}"')
        print("```")
    if total.missed:
        print("\nPositives not found:")
        for label in total.missed:
            print(
                f"- {label.package} {label.file}:{label.line} {label.family} "
                f"({label.configuration})"
            )
    if total.trap_hits:
        print("\nFindings on traps:")
        for f, label in total.trap_hits:
            print(f"- {f.package} {f.file}:{f.line} {f.code} — trap at {label.line}: {label.why}")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--amplint-ref",
        action="append",
        metavar="REF",
        help="measure amplint from this git ref (repeat for a side-by-side run); "
        "default: the committed tree (HEAD)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    try:
        labels = load_labels(ACCURACY / "labels.csv")
        judgements = load_judgements(ACCURACY / "judgements.csv")
        corpus = load_corpus(ACCURACY / "corpus.csv")
    except DataError as error:
        sys.exit(f"lint_accuracy: error: {error}")

    folder = Path(tempfile.mkdtemp(prefix="amplint-accuracy-"))
    try:
        roots = fetch(folder, corpus)
        problems = check_snippets(labels, roots)
        if problems:
            sys.exit(
                "lint_accuracy: labels do not match the fetched files:\n" + "\n".join(problems)
            )
        date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        print(f"Machine: {machine()}. Date: {date}.")
        refs = args.amplint_ref or [None]
        shown = " ".join(f"--amplint-ref {ref}" for ref in args.amplint_ref or [])
        print(f"Command: `python -m benchmarks.lint_accuracy{' ' + shown if shown else ''}`.")
        positives = sum(label.verdict == "positive" for label in labels)
        print(
            f"Labels: {len(labels)} ({positives} positives, {len(labels) - positives} traps) in "
            f"{len({(lab.package, lab.version, lab.file) for lab in labels})} files of "
            f"{', '.join(f'{p}=={v}' for p, v, _ in corpus)}."
        )
        for number, ref in enumerate(refs):
            target = folder / f"amplint-{number}"
            target.mkdir()
            venv = install_amplint(target, ref)
            commit = subprocess.run(
                ["git", "-C", str(Path(__file__).resolve().parents[1]), "rev-parse", "--short"]
                + [ref or "HEAD"],
                capture_output=True,
                text=True,
            ).stdout.strip()
            findings = run_amplint(venv, roots, labels)
            report(f"{ref or 'HEAD'} ({commit or 'unknown commit'})", labels, findings, judgements)
    finally:
        if args.keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
