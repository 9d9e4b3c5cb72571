"""What invalidates a cached result: content, project context, configuration, amplint version."""

from __future__ import annotations

import pytest

import amplint
from amplint import runner
from amplint.runner import Request, run

TRAIN = "from mxnet.contrib import amp\nfrom src import model\namp.init()\nnet = model.build()\n"
MODEL = (
    "from mxnet.gluon import nn\n\n\ndef build():\n    net = nn.HybridSequential()\n"
    "    net.add(nn.Dense(10))\n    return net\n"
)


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / ".git").mkdir()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "__init__.py").write_text("")
    (tmp_path / "src" / "model.py").write_text(MODEL)
    (tmp_path / "train.py").write_text(TRAIN)
    monkeypatch.chdir(tmp_path)
    linted: list[str] = []
    real = runner.lint_bytes

    def spy(data, display, context, settings):
        linted.append(display)
        return real(data, display, context, settings)

    monkeypatch.setattr(runner, "lint_bytes", spy)

    def check():
        linted.clear()
        outcome = run(Request(paths=(".",), jobs=1))
        return sorted(linted), [(f.path, f.line, f.code) for f in outcome.findings]

    return tmp_path, check


ALL = ["src/__init__.py", "src/model.py", "train.py"]
FOUND = [("src/model.py", 6, "AMP201")]


def test_a_second_run_reads_everything_from_the_cache(project):
    _, check = project
    assert check() == (ALL, FOUND)
    assert check() == ([], FOUND)


def test_changed_content_relints_that_file_only(project):
    root, check = project
    check()
    (root / "src" / "model.py").write_text(MODEL.replace("Dense(10)", "Dense(12)"))
    linted, found = check()
    assert linted == ["src/model.py"] and found == FOUND


def test_removing_amp_init_invalidates_the_imported_model(project):
    root, check = project
    check()
    (root / "train.py").write_text(TRAIN.replace("amp.init()\n", ""))
    linted, found = check()
    assert "src/model.py" in linted  # its own text did not change, its context did
    assert found == []


def test_configuration_and_version_invalidate(project, monkeypatch):
    root, check = project
    check()
    (root / "pyproject.toml").write_text("[tool.amplint]\nalignment = 5\n")
    assert check() == (ALL, [])
    assert check() == ([], [])
    monkeypatch.setattr(amplint, "__version__", "0.0.0-test")
    assert check() == (ALL, [])


def test_no_cache_reads_and_writes_nothing(project):
    root, _ = project
    outcome = run(Request(paths=(".",), jobs=1, use_cache=False))
    assert [(f.path, f.code) for f in outcome.findings] == [("src/model.py", "AMP201")]
    assert not (root / ".amplint_cache").exists()


def test_the_cache_lives_beside_the_configuration_else_in_the_current_folder(tmp_path, monkeypatch):
    work, code = tmp_path / "work", tmp_path / "code"
    work.mkdir()
    code.mkdir()
    (code / "model.py").write_text(MODEL)
    monkeypatch.chdir(work)
    run(Request(paths=(str(code),), jobs=1))
    assert (work / ".amplint_cache").is_dir() and not (code / ".amplint_cache").exists()
    (code / "pyproject.toml").write_text("[tool.amplint]\nalignment = 8\n")
    run(Request(paths=(str(code),), jobs=1))
    assert (code / ".amplint_cache" / ".gitignore").is_file()
