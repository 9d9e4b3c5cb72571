"""benchmarks.lint_accuracy's own logic on small synthetic inputs: label and judgement files,
the snippet check, matching findings to labels and the figures (no network, no amplint run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import lint_accuracy as acc
from benchmarks.lint_accuracy import Finding, Label

HEADER = ",".join(acc.LABEL_FIELDS)


def label(line: int, verdict: str = "positive", family: str = "AMP1", **kw) -> Label:
    values = dict(
        framework="mxnet",
        package="pkg",
        version="1.0",
        file="train.py",
        line=line,
        family=family,
        verdict=verdict,
        configuration="--dtype float16",
        snippet="loss",
        why="a reason",
    )
    values.update(kw)
    return Label(**values)


def finding(line: int, code: str = "AMP101", file: str = "train.py") -> Finding:
    return Finding("pkg", "1.0", file, line, code)


def write(tmp_path: Path, text: str, name: str = "labels.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_labels_load_and_validate(tmp_path):
    row = 'mxnet,pkg,1.0,train.py,7,AMP2,trap,always,"nn.Dense(10, in_units=3)",tiny'
    (loaded,) = acc.load_labels(write(tmp_path, f"{HEADER}\n{row}\n"))
    assert loaded == label(
        7, "trap", "AMP2", configuration="always", snippet="nn.Dense(10, in_units=3)", why="tiny"
    )


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("mxnet,pkg,1.0,train.py,7,AMP4,trap,always,x,y", "family 'AMP4' is not one of"),
        ("mxnet,pkg,1.0,train.py,7,AMP1,maybe,always,x,y", "verdict 'maybe' is not one of"),
        ("jax,pkg,1.0,train.py,7,AMP1,trap,always,x,y", "framework 'jax' is not one of"),
        ("mxnet,pkg,1.0,train.py,seven,AMP1,trap,always,x,y", "line 'seven' is not a number"),
        ("mxnet,pkg,1.0,train.py,0,AMP1,trap,always,x,y", "line must be 1 or more"),
        ("mxnet,pkg,1.0,train.py,7,AMP1,trap,always,,y", "snippet is empty"),
        ("mxnet,pkg,1.0,train.py,7,AMP1,trap,always,x", "expected 10 columns"),
    ],
)
def test_bad_label_rows_name_the_row_and_the_problem(tmp_path, row, message):
    path = write(tmp_path, f"{HEADER}\n{row}\n")
    with pytest.raises(acc.DataError, match=message) as error:
        acc.load_labels(path)
    assert f"{path}:2" in str(error.value)


def test_a_site_labelled_twice_and_a_wrong_header_are_refused(tmp_path):
    row = "mxnet,pkg,1.0,train.py,7,AMP1,trap,always,x,y"
    with pytest.raises(acc.DataError, match="labelled twice"):
        acc.load_labels(write(tmp_path, f"{HEADER}\n{row}\n{row}\n"))
    with pytest.raises(acc.DataError, match="header must be"):
        acc.load_labels(write(tmp_path, f"package,line\n{row}\n"))


def test_judgements_load_and_validate(tmp_path):
    header = ",".join(acc.JUDGEMENT_FIELDS)
    path = write(tmp_path, f"{header}\npkg,1.0,train.py,7,AMP201,debatable,a head\n", "j.csv")
    assert acc.load_judgements(path) == {
        ("pkg", "1.0", "train.py", 7, "AMP201"): ("debatable", "a head")
    }
    bad = write(tmp_path, f"{header}\npkg,1.0,train.py,7,AMP201,yes,a head\n", "bad.csv")
    with pytest.raises(acc.DataError, match="verdict 'yes'"):
        acc.load_judgements(bad)


def test_the_committed_label_files_are_valid():
    labels = acc.load_labels(acc.ACCURACY / "labels.csv")
    acc.load_judgements(acc.ACCURACY / "judgements.csv")
    corpus = acc.load_corpus(acc.ACCURACY / "corpus.csv")
    assert len(labels) >= 100
    assert {lab.framework for lab in labels} == set(acc.FRAMEWORKS)
    positives = [lab for lab in labels if lab.verdict == "positive"]
    assert len(positives) >= 60  # recall must rest on more than a handful of hazards
    assert {lab.framework for lab in positives} == set(acc.FRAMEWORKS)
    assert len(labels) - len(positives) >= 0.4 * len(labels)  # and traps keep precision honest
    assert {(lab.package, lab.version) for lab in labels} <= {(p, v) for p, v, _ in corpus}


def test_snippet_check_reports_a_moved_line_and_a_missing_file(tmp_path):
    root = tmp_path / "pkg-1.0"
    root.mkdir()
    (root / "train.py").write_text("import x\nloss = L(out, y)\n", encoding="utf-8")
    roots = {("pkg", "1.0"): root}
    assert acc.check_snippets([label(2, snippet="L(out")], roots) == []
    (moved,) = acc.check_snippets([label(1, snippet="L(out")], roots)
    assert "train.py:1: expected 'L(out', found 'import x'" in moved
    (missing,) = acc.check_snippets([label(1, file="gone.py")], roots)
    assert "no such file" in missing
    (past_end,) = acc.check_snippets([label(9, snippet="L(out")], roots)
    assert "found ''" in past_end


def test_nearest_label_of_the_same_family_within_three_lines():
    labels = [label(10, "trap"), label(13, "positive"), label(20, "positive", "AMP2")]
    assert acc.nearest_label(finding(12), labels).line == 13
    assert acc.nearest_label(finding(11), labels).line == 10
    assert acc.nearest_label(finding(20), labels) is None  # AMP1 finding, AMP2 label
    assert acc.nearest_label(finding(17, "AMP201"), labels).line == 20
    assert acc.nearest_label(finding(16, "AMP201"), labels) is None  # 4 lines away
    assert acc.nearest_label(finding(12, file="other.py"), labels) is None
    tie = [label(10, "trap"), label(14, "positive")]
    assert acc.nearest_label(finding(12), tie).line == 10  # a tie goes to the earlier line


def test_score_recall_and_both_precisions():
    labels = [
        label(10),  # found by the finding at 11
        label(30),  # missed: the only AMP1 finding near it is 5 lines away
        label(50, "trap"),  # hit by a finding
        label(70, "positive", "AMP3"),  # missed: only an AMP2 finding nearby
    ]
    findings = [
        finding(11),
        finding(35),  # no label within 3 lines
        finding(52),
        finding(70, "AMP201"),
        finding(5, "AMP101", file="unlabelled.py"),  # not on a labelled file: ignored
    ]
    judgements = {
        finding(11).key: ("true", ""),
        finding(35).key: ("debatable", ""),
        finding(52).key: ("false", ""),
    }
    result = acc.score(labels, findings, judgements)
    assert (result.positives, result.found) == (3, 1)
    assert [m.line for m in result.missed] == [30, 70]
    assert (result.on_positive, result.on_trap, result.unlabelled) == (1, 1, 2)
    assert result.precision_labels == 0.5
    assert result.total == 4
    assert result.judged_true == 1 and result.precision_read == 0.25  # debatable is not true
    assert [f.line for f in result.unjudged] == [70]
    assert [(f.line, lab.line) for f, lab in result.trap_hits] == [(52, 50)]


def test_breakdown_by_family_and_framework():
    labels = [label(10), label(40, "positive", "AMP2", framework="keras", file="k.py")]
    findings = [finding(10), finding(41, "AMP201", file="k.py")]
    parts = acc.breakdown(labels, findings, {})
    assert parts["AMP1"].found == 1 and parts["AMP2"].found == 1
    assert parts["AMP3"].positives == 0 and parts["AMP3"].recall is None
    assert parts["mxnet"].total == 1 and parts["keras"].total == 1
    assert parts["pytorch"].total == 0


def test_parse_findings_makes_paths_relative_to_the_package(tmp_path):
    root = tmp_path / "pkg-1.0"
    (root / "src").mkdir(parents=True)
    report = json.dumps(
        [
            {"path": "src/train.py", "line": 3, "code": "AMP301", "message": "m"},
            {"path": str(root / "src" / "model.py"), "line": 4, "code": "AMP201", "message": "n"},
            {"path": str(tmp_path / "elsewhere.py"), "line": 1, "code": "AMP201", "message": ""},
        ]
    )
    parsed = acc.parse_findings(report, "pkg", "1.0", root)
    assert [(f.file, f.line, f.family) for f in parsed] == [
        ("src/train.py", 3, "AMP3"),
        ("src/model.py", 4, "AMP2"),
    ]
    assert acc.parse_findings("", "pkg", "1.0", root) == []
