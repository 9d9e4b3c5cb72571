"""The project pass's contexts remembered across runs (amplint.context_cache): a pre-commit run
on the one file just edited reuses them while every module's facts and the text the pass reads
stay the same, and sees every change that matters to them.

The project is adapted from karpathy/nanoGPT (GitHub, master of 2023), train.py and model.py:
train.py builds ``GPT`` from model.py and runs it under ``torch.amp.autocast`` with a dtype
its configurator may set, so the layers GPT is built from run in reduced precision (shortened,
renamed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from amplint import context_cache, stat_cache
from amplint.cache import Cache
from amplint.project import analyse
from amplint.runner import Request, run

TRAIN = """\
import torch
from model import GPT, GPTConfig

dtype = 'bfloat16'
exec(open('configurator.py').read())
ptdtype = {'float32': torch.float32, 'bfloat16': torch.bfloat16, 'float16': torch.float16}[dtype]
ctx = torch.amp.autocast(device_type='cuda', dtype=ptdtype)
model = GPT(GPTConfig())
optimizer = torch.optim.AdamW(model.parameters(), lr=6e-4)
with ctx:
    logits, loss = model(X, Y)
loss.backward()
optimizer.step()
"""
MODEL = """\
import torch.nn as nn


class GPTConfig:
    n_embd = 768


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 3070)


class Head(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.lm_head = nn.Linear(config.n_embd, 50257)


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.mlp = MLP(config)
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    """The git project, and a pre-commit run on its model module: (findings, whether the
    project pass ran)."""
    (tmp_path / ".git").mkdir()
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "model.py").write_text(MODEL)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(stat_cache, "RACY_SECONDS", -3600)  # every stat is trusted
    passes = []
    real = context_cache.analyse

    def counted(*args, **kwargs):
        passes.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(context_cache, "analyse", counted)

    def check(*paths: str, use_cache: bool = True):
        passes.clear()
        outcome = run(Request(paths=paths or ("model.py",), jobs=1, use_cache=use_cache))
        return [(f.path, f.line, f.code) for f in outcome.findings], bool(passes)

    return tmp_path, check


MLP_LAYER = [("model.py", 11, "AMP201")]


def test_an_edit_that_leaves_the_facts_alone_reuses_the_project_pass(project):
    root, check = project
    assert check() == (MLP_LAYER, True)
    assert check() == (MLP_LAYER, False)
    with open(root / "model.py", "a") as handle:  # what the benchmark's edit does
        handle.write("# edited\n\n    \n")
    assert check() == (MLP_LAYER, False)
    assert check(use_cache=False) == (MLP_LAYER, True)


def test_remembered_contexts_equal_the_project_pass(project):
    root, check = project
    assert check(".") == ([*MLP_LAYER, ("train.py", 12, "AMP301")], True)  # float16: no scaler
    cache = Cache.beside(root)
    known = stat_cache.StatCache(cache, str(root))
    paths = {str(root / "model.py"), str(root / "train.py")}
    entries = {path: known.get(path, stat_cache.stat_of(path)) for path in paths}
    facts = {Path(path): entry.facts for path, entry in entries.items()}
    remembered = context_cache.contexts(
        cache,
        {path: entry.fingerprint for path, entry in entries.items()},
        lambda: pytest.fail("the pass of `check .` is remembered"),
        {path: entry.content for path, entry in entries.items()},
        lambda path: "",
        paths,
    )
    assert remembered[str(root / "model.py")].spreads
    fresh = analyse(facts, only={Path(path) for path in paths})
    assert remembered == {str(path): context for path, context in fresh.items()}


def test_a_change_in_the_text_the_pass_reads_is_seen(project):
    """GPT built from Head instead of MLP: model.py's facts (imports, classes) stay the same,
    only the text the pass follows a class through changes."""
    root, check = project
    check()
    (root / "model.py").write_text(
        MODEL.replace("self.mlp = MLP(config)", "self.head = Head(config)")
    )
    assert check() == ([("model.py", 17, "AMP201")], True)


def test_a_change_in_the_importer_is_seen(project):
    root, check = project
    check()
    (root / "train.py").write_text(TRAIN.replace("with ctx:", "if True:"))
    assert check() == ([], True)
    (root / "train.py").write_text(TRAIN)
    assert check() == (MLP_LAYER, False)  # as before: remembered


@pytest.mark.parametrize("damage", ["{truncated", '{"sources": 1}'])
def test_a_damaged_entry_means_a_new_pass(project, damage):
    root, check = project
    check()
    cache = Cache.beside(root)
    entries = [path for path in cache.folder.rglob("*.json") if '"contexts"' in path.read_text()]
    assert entries
    for path in entries:
        path.write_text(damage)
    assert check() == (MLP_LAYER, True)


def test_a_json_configuration_the_pass_reads_is_read_again(tmp_path, monkeypatch):
    """DeepSpeedExamples-style: train.py names ds_config.json; its digest is part of the
    context, so a changed configuration is not taken from the remembered pass."""
    (tmp_path / ".git").mkdir()
    (tmp_path / "train.py").write_text(
        "import deepspeed\nconfig = 'ds_config.json'\n"
        "engine, _, _, _ = deepspeed.initialize(model=net, config=config)\n"
    )
    (tmp_path / "ds_config.json").write_text('{"fp16": {"enabled": false}}')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(stat_cache, "RACY_SECONDS", -3600)
    seen = []
    real = context_cache.contexts

    def spy(*args, **kwargs):
        found = real(*args, **kwargs)
        seen.append(found)
        return found

    monkeypatch.setattr("amplint.runner.context_cache.contexts", spy)
    for text in ('{"fp16": {"enabled": true}}', '{"fp16": {"enabled": false}}'):
        run(Request(paths=("train.py",), jobs=1))
        before = seen[-1][str(tmp_path / "train.py")].files
        (tmp_path / "ds_config.json").write_text(text)
        run(Request(paths=("train.py",), jobs=1))
        after = seen[-1][str(tmp_path / "train.py")].files
        assert before != after
        assert os.path.basename(after[0][0]) == "ds_config.json"
