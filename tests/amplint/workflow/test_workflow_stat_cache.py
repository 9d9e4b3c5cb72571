"""Files whose stat is unchanged are not read again; any real change is still seen."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from amplint import runner, stat_cache
from amplint.cache import Cache
from amplint.runner import Request, run
from amplint.stat_cache import StatCache, stat_of

TRAIN = "from mxnet.contrib import amp\nfrom src import model\namp.init()\nnet = model.build()\n"
MODEL = (
    "from mxnet.gluon import nn\n\n\ndef build():\n    net = nn.HybridSequential()\n"
    "    net.add(nn.Dense(10))\n    return net\n"
)
AN_HOUR_AGO = 3600


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A git project whose files were last written an hour ago (so their stat is trusted)."""
    (tmp_path / ".git").mkdir()
    (tmp_path / "src").mkdir()
    files = {"src/__init__.py": "", "src/model.py": MODEL, "train.py": TRAIN}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    # Changes made a moment ago are "racy" (see amplint.stat_cache); pretend the run happens
    # long after every write of this test, so that the stat of an untouched file is trusted.
    monkeypatch.setattr(stat_cache, "RACY_SECONDS", -AN_HOUR_AGO)
    read: list[str] = []
    real = runner._cached_facts  # called for every file read (its facts may come from the cache)

    def spy(cache, data, content, name):
        read.append(name)
        return real(cache, data, content, name)

    monkeypatch.setattr(runner, "_cached_facts", spy)

    def check(*paths):
        read.clear()
        outcome = run(Request(paths=paths or (".",), jobs=1))
        return sorted(read), [(f.path, f.line, f.code) for f in outcome.findings]

    return tmp_path, check


FOUND = [("src/model.py", 6, "AMP201")]


def test_unchanged_files_are_not_read_again(project):
    _, check = project
    assert check() == (["src/__init__.py", "src/model.py", "train.py"], FOUND)
    assert check() == ([], FOUND)
    assert check("train.py") == ([], [])  # pre-commit's call: the project is known, not read


@pytest.mark.skipif(os.name == "nt", reason="Windows' st_ctime is the creation time")
def test_an_edit_that_keeps_mtime_and_size_is_still_seen(project):
    root, check = project
    check()
    model = root / "src" / "model.py"
    before = os.stat(model)
    edited = MODEL.replace("Dense(10)", "Dense(16)")  # same size: 10 is not aligned, 16 is
    assert len(edited) == len(MODEL)
    for _ in range(10**6):  # until the ctime ticks over (a clock tick, not a sleep)
        model.write_text(edited)
        os.utime(model, ns=(before.st_atime_ns, before.st_mtime_ns))
        if os.stat(model).st_ctime_ns != before.st_ctime_ns:
            break
    after = os.stat(model)
    assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size)
    assert check() == (["src/model.py"], [])


def test_a_changed_importer_changes_the_context_without_reading_the_model(project):
    root, check = project
    check()
    (root / "train.py").write_text(TRAIN.replace("amp.init()\n", ""))
    assert check() == (["train.py"], [])  # the model's findings follow its new context


def test_files_that_leave_the_project_are_forgotten(project):
    root, check = project
    check()
    (root / "train.py").unlink()
    assert check() == ([], [])
    cache = Cache.beside(root)
    stored = cache.get(StatCache(cache, str(root))._key)
    assert sorted(os.path.relpath(p, root) for p in stored) == ["src/__init__.py", "src/model.py"]


def test_a_damaged_stat_cache_means_reading_again(project):
    root, check = project
    check()
    cache = Cache.beside(root)
    entry = cache._entry(StatCache(cache, str(root))._key)
    stored = json.loads(entry.read_text())
    stored[str(root / "src" / "model.py")] = ["not", "a stat"]
    entry.write_text(json.dumps(stored))
    assert check() == (["src/model.py"], FOUND)
    entry.write_text("{truncated")
    assert check() == (["src/__init__.py", "src/model.py", "train.py"], FOUND)


def test_a_file_changed_just_now_is_remembered_without_its_stat(tmp_path):
    path = tmp_path / "fresh.py"
    path.write_text("x = 1\n")
    known = StatCache(Cache(None), str(tmp_path))
    stat = stat_of(str(path))
    assert known.put(str(path), stat, "digest", None).stat is None
    assert known.get(str(path), stat) is None  # so the next run reads it again


def test_only_trusted_entries_are_worth_a_write(tmp_path, monkeypatch):
    """A file changed just now is read again next time anyway: remembering it writes nothing."""
    path = tmp_path / "fresh.py"
    path.write_text("x = 1\n")
    cache = Cache(tmp_path / ".amplint_cache")
    fresh = StatCache(cache, str(tmp_path))
    fresh.put(str(path), stat_of(str(path)), "digest", None)
    fresh.save()
    assert cache.get(fresh._key) is None
    monkeypatch.setattr(stat_cache, "RACY_SECONDS", -AN_HOUR_AGO)  # as if written long ago
    settled = StatCache(cache, str(tmp_path))
    settled.put(str(path), stat_of(str(path)), "digest", None)
    settled.save()
    assert list(cache.get(settled._key)) == [str(path)]


def test_runs_at_the_same_time_share_the_stat_cache(project):
    """Several runs load and save the one stat cache entry at once (pre-commit may start more
    than one amplint): every run sees the current files, whatever the others wrote."""
    root, _ = project
    model = root / "src" / "model.py"

    def findings(use_cache: bool = True):
        outcome = run(Request(paths=(".",), jobs=1, use_cache=use_cache))
        return [(f.path, f.line, f.message) for f in outcome.findings]

    for units in (10, 12, 20):
        model.write_text(MODEL.replace("Dense(10)", f"Dense({units})"))
        expected = findings(use_cache=False)
        assert expected and f"units={units}" in expected[0][2]
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda _: findings(), range(8)))
        assert results == [expected] * 8
    assert findings() == expected


def test_facts_lost_from_the_cache_are_read_again(project):
    """The facts are stored apart from the stats (read only when the project pass runs); runs
    writing the cache at once may leave stats naming facts the other entry lacks."""
    root, check = project
    check()
    cache = Cache.beside(root)
    cache._entry(StatCache(cache, str(root))._facts_key).write_text("{}")
    (root / "train.py").write_text("import os\n" + TRAIN)  # new facts: the pass runs again
    assert check() == (["train.py"], [("src/model.py", 6, "AMP201")])
