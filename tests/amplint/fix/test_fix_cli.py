"""``amplint check --fix / --diff / --unsafe-fixes`` through a real subprocess."""

from __future__ import annotations

import json
import subprocess

TRAIN = """\
import argparse
from mxnet import autograd, gluon
from mxnet.contrib import amp

parser = argparse.ArgumentParser()
parser.add_argument("--batch-size", type=int, default=100)  # per device
args = parser.parse_args()
amp.init()
net = gluon.nn.HybridSequential()
net.add(gluon.nn.Dense(512), gluon.nn.Dense(10))
trainer = gluon.Trainer(net.collect_params(), "sgd")
loader = gluon.data.DataLoader(data, args.batch_size)
for x, y in loader:
    with autograd.record():
        loss = loss_fn(net(x), y)
    loss.backward()
    trainer.step(x.shape[0])
"""

SAFE = """\
amp.init_trainer(trainer)
loader = gluon.data.DataLoader(data, args.batch_size)
for x, y in loader:
    with autograd.record():
        loss = loss_fn(net(x), y)
        with amp.scale_loss(loss, trainer) as scaled_loss:
            scaled_loss.backward()
    trainer.step(x.shape[0])
"""


def _project(tmp_path):
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "broken.py").write_text("def f(:\n    amp.init()\n")
    return tmp_path / "train.py"


def test_diff_prints_a_patch_writes_nothing_and_says_why(tmp_path, amplint):
    train = _project(tmp_path)
    result = amplint("check", "train.py", "--diff", "--no-cache", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert train.read_text() == TRAIN
    assert result.stdout.startswith("--- a/train.py\n+++ b/train.py\n")
    assert "-    loss.backward()\n" in result.stdout
    assert "+amp.init_trainer(trainer)\n" in result.stdout
    assert "+net.add(" not in result.stdout and "+parser" not in result.stdout  # unsafe
    assert "AMP201 Dense units=10" in result.stderr
    assert "[not fixed: an unsafe fix is available with --unsafe-fixes" in result.stderr
    assert "Would fix 1 finding, 2 would remain." in result.stderr
    applied = subprocess.run(
        ["git", "apply", "--check", "-"], input=result.stdout, cwd=tmp_path, text=True
    )
    assert applied.returncode == 0


def test_fix_writes_reports_what_remains_and_is_idempotent(tmp_path, amplint):
    train = _project(tmp_path)
    result = amplint("check", "train.py", "--fix", "--no-cache", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert train.read_text().endswith(SAFE)
    lines = result.stdout.splitlines()
    assert [line.split(": ")[1].split()[0] for line in lines[:-2]] == ["AMP201", "AMP202"]
    assert lines[-1] == "1 fixed, 2 remaining."
    again = amplint("check", "train.py", "--fix", "--no-cache", cwd=tmp_path)
    assert again.stdout.splitlines()[-1] == "0 fixed, 2 remaining."
    assert train.read_text().endswith(SAFE)
    plain = amplint("check", "train.py", "--no-cache", "--format", "json", cwd=tmp_path)
    assert sorted(f["code"] for f in json.loads(plain.stdout)) == ["AMP201", "AMP202"]


def test_unsafe_fixes_leave_nothing_and_exit_zero(tmp_path, amplint):
    train = _project(tmp_path)
    result = amplint(
        "check",
        "train.py",
        "--fix",
        "--unsafe-fixes",
        "--no-cache",
        "--format",
        "json",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == []
    assert "3 fixed, 0 remaining." in result.stderr
    text = train.read_text()
    assert "default=104)  # per device" in text and "gluon.nn.Dense(16)" in text
    assert amplint("check", "train.py", "--no-cache", cwd=tmp_path).returncode == 0


def test_unparseable_file_is_left_alone(tmp_path, amplint):
    _project(tmp_path)
    result = amplint("check", ".", "--fix", "--unsafe-fixes", "--no-cache", cwd=tmp_path)
    assert result.returncode == 2
    assert (tmp_path / "broken.py").read_text() == "def f(:\n    amp.init()\n"
    assert "broken.py:1:1: AMP000" in result.stdout
    assert result.stdout.splitlines()[-1] == "3 fixed, 1 remaining."


def test_fix_of_standard_input_prints_the_fixed_source(tmp_path, amplint):
    source = TRAIN.replace("gluon.nn.Dense(10))", "gluon.nn.Dense(16))")
    result = amplint(
        "check",
        "-",
        "--stdin-filename",
        "train.py",
        "--fix",
        "--no-cache",
        cwd=tmp_path,
        stdin=source,
    )
    assert result.returncode == 1
    assert result.stdout.endswith(SAFE)
    assert "train.py:13:38: AMP202" in result.stderr  # where it is in the fixed source
    assert result.stderr.splitlines()[-1] == "1 fixed, 1 remaining."
    assert list(tmp_path.iterdir()) == []
