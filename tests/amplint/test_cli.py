"""The CLI through a real subprocess: formats, exit codes, selection, bad input."""

from __future__ import annotations

import json
from pathlib import Path

HAZARD = """\
from mxnet.gluon import nn
from mxnet.contrib import amp
amp.init()
net = nn.HybridSequential()
net.add(nn.Dense(100))
"""


def test_text_json_and_exit_codes(tmp_path, amplint):
    (tmp_path / "train.py").write_text(HAZARD)
    (tmp_path / "clean.py").write_text("print('hello')\n")
    text = amplint("check", ".", cwd=tmp_path)
    assert text.returncode == 1, text.stderr
    assert text.stdout.splitlines()[0].startswith("train.py:5:18: AMP201 Dense units=100")
    assert "Found 1 finding (2 files checked)." in text.stdout
    as_json = amplint("check", "train.py", "--format", "json", cwd=tmp_path)
    data = json.loads(as_json.stdout)
    assert [
        (d["path"], d["line"], d["column"], d["end_line"], d["end_column"], d["code"], d["name"])
        for d in data
    ] == [("train.py", 5, 18, 5, 21, "AMP201", "dim-not-multiple-of-8")]
    assert "Found 1 finding" in as_json.stderr
    assert amplint("check", ".", "--exit-zero", cwd=tmp_path).returncode == 0
    assert amplint("check", "clean.py", cwd=tmp_path).returncode == 0
    assert amplint("check", ".", "--ignore", "dim-not-multiple-of-8", cwd=tmp_path).returncode == 0


def test_bad_input_one_line_each(tmp_path, amplint):
    (tmp_path / "broken.py").write_text("def f(:\n    amp.init()\n")
    (tmp_path / "latin.py").write_bytes(b"x = '\xff\xfe float16'\n")
    (tmp_path / "empty.py").write_text("")
    (tmp_path / "deep.py").write_text("x = " + "(" * 3000 + "1" + ")" * 3000 + "  # float16\n")
    (tmp_path / "loop.py").symlink_to(tmp_path / "loop.py")
    unreadable = Path("/proc/self/mem")  # exists, but reading it fails (even for root)
    if unreadable.exists():
        (tmp_path / "unreadable.py").symlink_to(unreadable)
    result = amplint("check", ".", "missing_dir", "--exit-zero", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("broken.py:1:1: AMP000 syntax error") for line in lines)
    assert any(line.startswith("latin.py:1:1: AMP000 cannot decode") for line in lines)
    assert any(line.startswith("deep.py:1:1: AMP000") for line in lines)
    if unreadable.exists():
        assert any(line.startswith("unreadable.py:1:1: AMP000 cannot read file") for line in lines)
    assert "amplint: error: missing_dir: no such file or folder" in result.stderr
    assert "amplint: error: loop.py: broken symlink or symlink loop" in result.stderr


def test_an_unreadable_path_alone_is_not_all_clear(tmp_path, amplint):
    result = amplint("check", "missing.py", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "amplint: error: missing.py: no such file or folder"
    assert result.stdout.strip() == (
        "No hazards found (0 files checked), but 1 given path could not be read."
    )


def test_unknown_rule_is_a_usage_error(amplint):
    result = amplint("check", "--select", "AMP999")
    assert result.returncode == 2
    assert "unknown rule 'AMP999'" in result.stderr


def test_rules_and_explain(amplint):
    listing = amplint("rules")
    assert listing.returncode == 0 and "AMP201  dim-not-multiple-of-8" in listing.stdout
    explained = amplint("explain", "AMP201")
    assert explained.returncode == 0 and "Fix:" in explained.stdout
    assert amplint("explain", "dim-not-multiple-of-8").stdout == explained.stdout
    assert amplint("explain", "nope").returncode == 2


def test_every_rule_is_listed_and_explained():
    from click.testing import CliRunner

    from amplint.cli import main
    from amplint.rules import RULES

    runner = CliRunner()
    listing = runner.invoke(main, ["rules"]).output
    for code, rule in {"AMP000": None, **RULES}.items():
        assert code in listing
        result = runner.invoke(main, ["explain", code])
        assert result.exit_code == 0, result.output
        if rule is not None:
            assert result.output.startswith(f"{code} {rule.name}")
            assert "Why it matters" in result.output and "Fix" in result.output
    assert "off by default" in runner.invoke(main, ["explain", "AMP306"]).output


def test_huge_file_is_checked(tmp_path, amplint):
    body = "".join(f"layer_{i} = nn.Dense({8 * (i % 50 + 1)})\n" for i in range(2500))
    (tmp_path / "big.py").write_text(
        "from mxnet.gluon import nn\nfrom mxnet.contrib import amp\namp.init()\n"
        + body
        + "odd = nn.Dense(30)\n"
    )
    result = amplint("check", "big.py", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.startswith("big.py:2504:16: AMP201 Dense units=30")
