"""File discovery: default excludes, virtual environments, .gitignore, explicit files."""

from __future__ import annotations

from pathlib import Path

from amplint.files import discover
from amplint.gitignore import GitIgnore

HAZARD = "from mxnet.contrib import amp\namp.init()\n"


def tree(root: Path, names: list[str]) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(HAZARD)


def shown(root: Path, *paths: str) -> list[str]:
    return sorted(name for _, name in discover([str(root / p) for p in paths or ["."]]).files)


def test_default_excludes_and_virtual_environments(tmp_path):
    tree(
        tmp_path,
        [
            "train.py",
            "pkg/model.py",
            ".git/hooks/x.py",
            ".venv/lib/python3.11/site-packages/mxnet/amp.py",
            "venv/lib/a.py",
            "myenv/lib/b.py",  # a virtual environment under any name
            "build/lib/c.py",
            "dist/d.py",
            "pkg/__pycache__/e.py",
            ".amplint_cache/f.py",
            "lib/site-packages/g.py",
            "gluon_amp.egg-info/h.py",
        ],
    )
    (tmp_path / "myenv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    assert shown(tmp_path) == [str(tmp_path / "pkg/model.py"), str(tmp_path / "train.py")]


def test_gitignore_is_respected(tmp_path):
    tree(tmp_path, ["keep.py", "out/gen.py", "data/raw.py", "data/keep_me.py", "sub/deep/x.py"])
    (tmp_path / ".git").mkdir()
    (tmp_path / ".gitignore").write_text("out/\ndata/*\n!data/keep_me.py\n# comment\n")
    (tmp_path / "sub" / ".gitignore").write_text("deep\n")
    names = [Path(n).relative_to(tmp_path).as_posix() for n in shown(tmp_path)]
    assert names == ["data/keep_me.py", "keep.py"]


def test_nested_gitignore_is_respected_for_relative_paths(tmp_path, monkeypatch):
    tree(tmp_path, ["sub/x.py", "sub/y.py"])
    (tmp_path / ".git").mkdir()
    (tmp_path / "sub" / ".gitignore").write_text("x.py\n")
    monkeypatch.chdir(tmp_path)
    for given in (".", "sub"):
        assert [name for _, name in discover([given]).files] == ["sub/y.py"]


def test_gitignore_above_the_repository_is_not_applied(tmp_path):
    tree(tmp_path, ["repo/x.py"])
    (tmp_path / "repo" / ".git").mkdir()
    (tmp_path / ".gitignore").write_text("x.py\n")
    assert shown(tmp_path / "repo") == [str(tmp_path / "repo" / "x.py")]


def test_gitignore_patterns():
    patterns = ["*.tmp.py", "/top.py", "a/**/z.py", "build/", "gen/*", "!gen/keep.py"]
    ignore = GitIgnore("/r", patterns)
    assert ignore.ignored("/r/x/y.tmp.py", False) is True
    assert ignore.ignored("/r/top.py", False) is True
    assert ignore.ignored("/r/sub/top.py", False) is None
    assert ignore.ignored("/r/a/b/c/z.py", False) is True
    assert ignore.ignored("/r/build", True) is True
    assert ignore.ignored("/r/build", False) is None  # "build/" names folders only
    assert ignore.ignored("/r/build/x.py", False) is True
    assert ignore.ignored("/r/gen/x.py", False) is True
    assert ignore.ignored("/r/gen/keep.py", False) is False
    assert ignore.ignored("/elsewhere/top.py", False) is None


def test_lines_git_cannot_use_are_skipped_not_fatal(tmp_path):
    tree(tmp_path, ["keep.py", "drop.py"])
    (tmp_path / ".git").mkdir()
    (tmp_path / ".gitignore").write_text("!\n\\\ndrop.py\n")
    assert [Path(n).name for n in shown(tmp_path)] == ["keep.py"]


def test_a_folder_is_not_matched_by_its_own_double_star(tmp_path):
    """As in git, "gen/**" matches what is inside gen, so "!gen/keep.py" re-includes a file."""
    tree(tmp_path, ["main.py", "gen/keep.py", "gen/drop.py", "gen/sub/x.py", "b/c/y.py"])
    (tmp_path / ".git").mkdir()
    (tmp_path / ".gitignore").write_text("gen/**\n!gen/keep.py\n**/c/**\n")
    names = [Path(n).relative_to(tmp_path).as_posix() for n in shown(tmp_path)]
    assert names == ["gen/keep.py", "main.py"]
    ignore = GitIgnore("/r", ["gen/**"])
    assert ignore.ignored("/r/gen", True) is None
    assert ignore.ignored("/r/gen/sub", True) is True
    assert ignore.ignored("/r/gen/a.py", False) is True


def test_explicit_files_and_display_names(tmp_path, monkeypatch):
    tree(tmp_path, ["build/gen.py", "src/a.py"])
    monkeypatch.chdir(tmp_path)
    found = discover(["build/gen.py", "src", "src/a.py", "missing.py"])
    assert [name for _, name in found.files] == ["src/a.py"]
    assert found.problems == ["missing.py: no such file or folder"]
    assert found.excluded == [("build/gen.py", "the built-in exclude 'build'")]


def test_named_files_and_folders_get_the_excludes_a_walk_applies(tmp_path, monkeypatch):
    """pre-commit names every changed file: a file under build/, a virtual environment, an
    egg-info folder or a .gitignore'd path is excluded as `check .` excludes it, and the
    exclude that removed it is named."""
    tree(
        tmp_path,
        [
            "build/gen.py",
            "pkg/dist/x.py",
            "gluon_amp.egg-info/h.py",
            "myenv/lib/b.py",
            "out/gen.py",
            "data/raw.py",
            "data/keep_me.py",
            "sub/deep/x.py",
            "src/a.py",
        ],
    )
    (tmp_path / ".git").mkdir()
    (tmp_path / "myenv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (tmp_path / ".gitignore").write_text("out/\ndata/*\n!data/keep_me.py\n")
    (tmp_path / "sub" / ".gitignore").write_text("# generated\ndeep\n")
    monkeypatch.chdir(tmp_path)
    expected = {
        "build/gen.py": "the built-in exclude 'build'",
        "build": "the built-in exclude 'build'",
        "pkg/dist/x.py": "the built-in exclude 'dist'",
        "gluon_amp.egg-info/h.py": "the built-in exclude '*.egg-info'",
        "myenv/lib/b.py": "the built-in exclude of virtual environments ('myenv' is one)",
        "myenv": "the built-in exclude of virtual environments ('myenv' is one)",
        "out/gen.py": "'out/' in .gitignore",
        "out": "'out/' in .gitignore",
        "data/raw.py": "'data/*' in .gitignore",
        "sub/deep/x.py": "'deep' in sub/.gitignore",
    }
    found = discover([*expected, "data/keep_me.py", "src", "sub"])
    assert found.excluded == list(expected.items())
    names = [name for _, name in found.files]
    assert names == ["data/keep_me.py", "src/a.py"]
    assert names == sorted(name for _, name in discover(["."]).files)  # what a walk keeps


def test_only_folders_below_the_project_root_count(tmp_path, monkeypatch):
    """A project that lives in a folder named build, or whose root holds a virtual
    environment (`python -m venv .`), is checked."""
    root = tmp_path / "build" / "proj"
    tree(root, ["train.py", "src/model.py"])
    (root / ".git").mkdir()
    (root / "pyvenv.cfg").write_text("home = /usr/bin\n")
    monkeypatch.chdir(root / "src")
    found = discover(["model.py", str(root / "train.py"), "."], root=str(root))
    assert (found.excluded, [name for _, name in found.files]) == (
        [],
        ["model.py", str(root / "train.py")],
    )


def test_a_configured_exclude_prunes_the_walk(tmp_path):
    tree(tmp_path, ["keep.py", "legacy/old.py", "legacy/deeper/older.py"])
    asked = []

    def exclude(path: str):
        asked.append(path)
        return "exclude 'legacy'" if path.endswith("legacy") else None

    found = discover([str(tmp_path)], root=str(tmp_path), exclude=exclude)
    assert [Path(name).name for _, name in found.files] == ["keep.py"]
    assert not any("deeper" in path for path in asked)  # the folder was not entered
