"""Writing fixed files: atomic, in the file's own encoding and line endings, permissions and
symlinks kept, nothing written when the file changed meanwhile; rollback of fixes that do not
parse; overlapping fixes applied over several rounds."""

from __future__ import annotations

import os
import stat
from dataclasses import replace

import libcst as cst
import pytest
from fixcase import fix, lint

from amplint import fix as fix_registry
from amplint.engine import decode
from amplint.fix.api import Edit
from amplint.fix.apply import ROLLED_BACK
from amplint.fix.files import fix_files, unified_diff, write_atomic

SOURCE = "from mxnet import gluon\nfrom mxnet.contrib import amp\namp.init()\n"


def _relint(display: str, text: str):
    return [replace(f, path=display) for f in lint(text, "AMP201")]


def _fix_paths(tmp_path, name: str, data: bytes, write: bool = True):
    path = tmp_path / name
    path.write_bytes(data)
    found = _relint(str(path), decode(data))
    return path, fix_files(found, {str(path): path}, _relint, unsafe=True, write=write)


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        (
            "crlf_bom.py",
            b"\xef\xbb\xbf"
            + (SOURCE + "net = gluon.nn.Dense(100)  # caf\xc3\xa9\n")
            .encode()
            .replace(b"\n", b"\r\n"),
            b"\xef\xbb\xbf"
            + (SOURCE + "net = gluon.nn.Dense(104)  # caf\xc3\xa9\n")
            .encode()
            .replace(b"\n", b"\r\n"),
        ),
        (
            "latin.py",
            b"# -*- coding: latin-1 -*-\n" + SOURCE.encode() + b"n = gluon.nn.Dense(100)  # \xe9",
            b"# -*- coding: latin-1 -*-\n" + SOURCE.encode() + b"n = gluon.nn.Dense(104)  # \xe9",
        ),
    ],
)
def test_encoding_line_endings_and_permissions_are_kept(tmp_path, name, data, expected):
    (tmp_path / name).write_bytes(data)
    os.chmod(tmp_path / name, 0o751)
    path, run = _fix_paths(tmp_path, name, data)
    assert path.read_bytes() == expected
    assert stat.S_IMODE(path.stat().st_mode) == 0o751
    assert run.fixed == 1 and run.remaining == [] and not run.errors
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left


def test_diff_mode_writes_nothing(tmp_path):
    data = (SOURCE + "net = gluon.nn.Dense(100)\n").encode()
    path, run = _fix_paths(tmp_path, "a.py", data, write=False)
    assert path.read_bytes() == data
    assert "-net = gluon.nn.Dense(100)\n+net = gluon.nn.Dense(104)\n" in run.diffs[0]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
def test_owner_is_kept(tmp_path):
    path = tmp_path / "a.py"
    path.write_text("x = 1\n")
    os.chown(path, 1234, 5678)
    write_atomic(path, b"x = 2\n", b"x = 1\n")
    assert (path.stat().st_uid, path.stat().st_gid) == (1234, 5678)
    assert path.read_text() == "x = 2\n"


def test_symlink_stays_a_link(tmp_path):
    target = tmp_path / "real.py"
    target.write_text(SOURCE + "net = gluon.nn.Dense(100)\n")
    link = tmp_path / "link.py"
    link.symlink_to(target.name)
    write_atomic(link, b"x = 1\n", target.read_bytes())
    assert link.is_symlink() and target.read_text() == "x = 1\n"


def test_file_changed_meanwhile_is_not_written(tmp_path):
    path = tmp_path / "a.py"
    path.write_text("edited by the user\n")
    with pytest.raises(OSError, match="changed"):
        write_atomic(path, b"fixed\n", b"what amplint read\n")
    assert path.read_text() == "edited by the user\n"


def test_read_only_file_is_not_written(tmp_path):
    path = tmp_path / "a.py"
    path.write_text("x = 1\n")
    path.chmod(0o444)
    with pytest.raises(OSError, match="read-only"):
        write_atomic(path, b"x = 2\n", b"x = 1\n")
    assert path.read_text() == "x = 1\n"


def test_unified_diff_marks_a_missing_final_newline():
    diff = unified_diff("a.py", "x = 1", "x = 2")
    assert diff.startswith("--- a/a.py\n+++ b/a.py\n")
    assert diff.endswith("+x = 2\n\\ No newline at end of file\n")


def _broken(finding, ctx):
    """A fixer whose output is not Python: it replaces the number by a keyword."""
    node = ctx.node_at(finding, cst.BaseExpression)
    return [Edit(node, lambda updated: cst.Name("def"), "broken")]


def _invalid_tree(finding, ctx):
    """A fixer that builds a node libcst refuses (a parenthesis never closed)."""
    node = ctx.node_at(finding, cst.BaseExpression)
    return [Edit(node, lambda updated: updated.with_changes(lpar=[cst.LeftParen()]), "invalid")]


@pytest.mark.parametrize("fixer", [_broken, _invalid_tree])
def test_a_fix_that_does_not_parse_is_rolled_back(monkeypatch, fixer):
    registry = dict(fix_registry.FIXERS)
    registry["AMP201"] = fix_registry.Fixer("AMP201", fixer, safe=True)
    monkeypatch.setattr(fix_registry, "FIXERS", registry)
    before = SOURCE + "net = gluon.nn.Dense(100)\n"
    result = fix(before, "AMP201")
    assert result.fixed == before and result.applied == 0
    assert result.reasons[result.remaining[0]] == ROLLED_BACK


def test_a_failing_fixer_leaves_the_file_and_says_why(monkeypatch):
    def crash(finding, ctx):
        raise KeyError("boom")

    registry = dict(fix_registry.FIXERS)
    registry["AMP201"] = fix_registry.Fixer("AMP201", crash, safe=True)
    monkeypatch.setattr(fix_registry, "FIXERS", registry)
    before = SOURCE + "net = gluon.nn.Dense(100)\n"
    result = fix(before, "AMP201")
    assert result.fixed == before
    assert "internal error in the fixer (KeyError" in result.reasons[result.remaining[0]]


def test_overlapping_fixes_are_applied_in_later_rounds():
    # AMP302 moves scale_loss into the record() block that AMP101 also changes: two rounds.
    before = (
        "from mxnet import autograd, gluon\n"
        "from mxnet.contrib import amp\n"
        "net.cast('float16')\n"
        "trainer = gluon.Trainer(params, 'sgd')\n"
        "amp.init_trainer(trainer)\n"
        "loss_fn = gluon.loss.L2Loss()\n"
        "with autograd.record():\n"
        "    loss = loss_fn(net(x), y)\n"
        "with amp.scale_loss(loss, trainer) as scaled_loss:\n"
        "    scaled_loss.backward()\n"
    )
    result = fix(before, "AMP101", "AMP302")
    assert result.applied == 2 and result.remaining == []
    assert result.fixed.endswith(
        "with autograd.record():\n"
        "    loss = loss_fn(net(x).astype('float32'), y)\n"
        "    with amp.scale_loss(loss, trainer) as scaled_loss:\n"
        "        scaled_loss.backward()\n"
    )


def test_findings_without_a_file_to_write_say_so(tmp_path):
    found = _relint("notebook.ipynb", SOURCE + "net = gluon.nn.Dense(100)\n")
    run = fix_files(found, {}, _relint, unsafe=True)
    assert run.remaining == found and run.fixed == 0
    assert run.reasons[found[0]] == "notebooks are not fixed automatically"


def test_a_file_that_cannot_be_written_keeps_its_findings(tmp_path):
    data = (SOURCE + "net = gluon.nn.Dense(100)\n").encode()
    path = tmp_path / "a.py"
    path.write_bytes(data)
    path.chmod(0o444)
    found = _relint(str(path), data.decode())
    run = fix_files(found, {str(path): path}, _relint, unsafe=True)
    assert path.read_bytes() == data
    assert run.fixed == 0 and run.remaining == found
    assert run.errors == [f"cannot write {path}: the file is read-only; nothing was written"]
