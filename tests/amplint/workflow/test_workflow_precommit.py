"""The `amplint` hook of .pre-commit-hooks.yaml with the real pre-commit tool.

A throw-away git repository gets a git pre-commit hook that runs ``pre-commit try-repo`` on this
repository's committed hook definition (``language: python``: pre-commit builds a virtual
environment and pip-installs amplint into it, from the local clone and PyPI only). A commit with a
hazard is refused; the same commit after the fix goes through.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PRE_COMMIT = shutil.which("pre-commit", path=str(Path(sys.executable).parent)) or shutil.which(
    "pre-commit"
)

HAZARD = """\
from mxnet.contrib import amp
from mxnet.gluon import nn
amp.init()
net = nn.HybridSequential()
net.add(nn.Dense(10))
"""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(PRE_COMMIT is None, reason="pre-commit is in the test extra"),
    pytest.mark.skipif(not (REPO / ".git").exists(), reason="needs this repository's git clone"),
]


def git(*args: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def test_a_commit_with_a_hazard_is_refused_and_accepted_after_the_fix(tmp_path):
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    project = tmp_path / "project"
    project.mkdir()
    env = dict(
        os.environ,
        PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"),
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.com",
    )
    env.pop("PYTHONPATH", None)
    assert git("init", "-q", ".", cwd=project, env=env).returncode == 0
    hook = project / ".git" / "hooks" / "pre-commit"
    hook.write_text(f'#!/bin/sh\nexec "{PRE_COMMIT}" try-repo "{REPO}" amplint --ref {head}\n')
    hook.chmod(hook.stat().st_mode | stat.S_IEXEC)

    (project / "train.py").write_text(HAZARD)
    git("add", "train.py", cwd=project, env=env)
    refused = git("commit", "-q", "-m", "train", cwd=project, env=env)
    assert refused.returncode != 0, refused.stdout + refused.stderr
    output = refused.stdout + refused.stderr
    assert "amplint" in output and "Failed" in output
    assert "train.py:5:18: AMP201" in output
    assert git("rev-parse", "--verify", "HEAD", cwd=project, env=env).returncode != 0

    (project / "train.py").write_text(HAZARD.replace("Dense(10)", "Dense(16)"))
    git("add", "train.py", cwd=project, env=env)
    accepted = git("commit", "-q", "-m", "train", cwd=project, env=env)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "Passed" in accepted.stdout + accepted.stderr
    assert git("rev-parse", "--verify", "HEAD", cwd=project, env=env).returncode == 0
