"""The project's file list is remembered while no folder it listed and no ``.gitignore`` changed
(amplint.walk_cache); every change that adds, removes or ignores a module is still seen.

The project is adapted from karpathy/nanoGPT (GitHub, master of 2023): train.py builds GPT from
model.py and runs it under ``torch.autocast`` in float16 (shortened); pre-commit checks model.py
alone, whose finding comes from the script found by the project walk."""

from __future__ import annotations

import os

import pytest

from amplint import files, stat_cache
from amplint.runner import Request, run

TRAIN = """\
import torch
from model import GPT
model = GPT()
with torch.autocast(device_type='cuda', dtype=torch.float16):
    logits = model(x)
"""
MODEL = """\
import torch.nn as nn
class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.lm_head = nn.Linear(768, 50257)
"""
FOUND = [("model.py", 5, "AMP201")]


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A git project with the model only, and a pre-commit run on it: (findings, whether the
    project was walked)."""
    (tmp_path / ".git").mkdir()
    (tmp_path / "model.py").write_text(MODEL)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(stat_cache, "RACY_SECONDS", -3600)  # every stat is trusted
    walks = []
    real = files._walk

    def counted(folder, *args):
        walks.append(folder)
        return real(folder, *args)

    monkeypatch.setattr(files, "_walk", counted)

    def check():
        walks.clear()
        outcome = run(Request(paths=("model.py",), jobs=1))
        return [(f.path, f.line, f.code) for f in outcome.findings], bool(walks)

    return tmp_path, check


def test_a_script_added_later_is_found(project):
    root, check = project
    assert check() == ([], True)
    check()  # the first run made .amplint_cache/ in the folder walked: walked once more
    assert check() == ([], False)  # nothing changed: not walked
    (root / "train.py").write_text(TRAIN)
    assert check() == (FOUND, True)
    assert check() == (FOUND, False)


def test_a_script_added_in_a_folder_below_is_found(project):
    """The root folder's mtime stays: only the folder the script is added to changes."""
    root, check = project
    (root / "scripts" / "gpt2").mkdir(parents=True)
    assert check() == ([], True)
    before = os.stat(root).st_mtime_ns
    (root / "scripts" / "gpt2" / "train.py").write_text(TRAIN)
    assert os.stat(root).st_mtime_ns == before
    assert check() == (FOUND, True)


def test_a_gitignore_edited_in_place_is_seen(project):
    root, check = project
    (root / "train.py").write_text(TRAIN)
    (root / ".gitignore").write_text("*.log\n")
    assert check() == (FOUND, True)
    before = os.stat(root).st_mtime_ns
    with open(root / ".gitignore", "a") as handle:  # the folder's mtime stays
        handle.write("train.py\n")
    assert os.stat(root).st_mtime_ns == before
    assert check() == ([], True)


def test_a_removed_script_is_forgotten(project):
    root, check = project
    (root / "train.py").write_text(TRAIN)
    assert check() == (FOUND, True)
    (root / "train.py").unlink()
    assert check() == ([], True)


@pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
def test_a_walk_that_meets_a_symlink_is_not_remembered(project, tmp_path_factory):
    root, check = project
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "train.py"
    elsewhere.write_text("x = 1\n")
    (root / "train.py").symlink_to(elsewhere)
    assert check() == ([], True)
    elsewhere.write_text(TRAIN)  # the link's folder does not change
    assert check() == (FOUND, True)
