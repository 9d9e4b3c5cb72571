"""The on-disk cache: round trip, damage tolerance, its .gitignore, concurrent writers."""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from amplint import cache as cache_module
from amplint.cache import Cache, digest


def test_round_trip_and_gitignore(tmp_path):
    store = Cache.beside(tmp_path)
    key = digest(b"source", "settings")
    assert store.get(key) is None
    store.put(key, [{"code": "AMP201", "line": 3}])
    assert store.get(key) == [{"code": "AMP201", "line": 3}]
    top = tmp_path / ".amplint_cache"
    assert (top / ".gitignore").read_text().splitlines()[-1] == "*"
    assert (
        (top / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    )
    assert not list(top.rglob(".tmp-*"))


def test_versions_are_kept_apart(tmp_path):
    Cache(tmp_path, version="1").put("ab" * 32, 1)
    assert Cache(tmp_path, version="1").get("ab" * 32) == 1
    assert Cache(tmp_path, version="2").get("ab" * 32) is None


def test_code_version_changes_with_the_package_version(monkeypatch):
    before = cache_module.code_version()
    monkeypatch.setattr(cache_module.amplint, "__version__", "999.0")
    assert cache_module.code_version() != before


def test_damaged_entries_are_misses_and_unwritable_folders_turn_caching_off(tmp_path):
    store = Cache(tmp_path / "c", version="v")
    key = digest("k")
    store.put(key, {"a": 1})
    entry = next((tmp_path / "c" / "v").rglob("*.json"))
    entry.write_text('{"a": ', encoding="utf-8")
    assert store.get(key) is None
    blocker = tmp_path / "file"
    blocker.write_text("")
    broken = Cache(blocker / "cache", version="v")
    broken.put(key, 1)  # no exception
    assert broken.folder is None and broken.get(key) is None


def test_digest_is_independent_of_set_order_and_types():
    from amplint.settings import Settings

    assert digest(frozenset(["a", "b", "c"])) == digest(frozenset(["c", "b", "a"]))
    assert digest({"b": 1, "a": Path("p")}) == digest({"a": "p", "b": 1})
    assert digest(Settings(frozenset({"AMP201", "AMP301"}))) == digest(
        Settings(frozenset({"AMP301", "AMP201"}))
    )
    assert digest(Settings(alignment=8)) != digest(Settings(alignment=16))
    assert digest(b"ab", b"c") != digest(b"a", b"bc")


def _hammer(args):
    folder, worker = args
    store = Cache(Path(folder), version="v")
    seen = 0
    for round_ in range(150):
        key = digest("shared", round_ % 10)
        payload = {"worker": worker, "round": round_, "blob": "x" * 5000}
        store.put(key, payload)
        value = store.get(key)
        assert value is not None and len(value["blob"]) == 5000, value
        seen += 1
    return seen


def test_concurrent_processes_never_see_a_torn_entry(tmp_path):
    with ProcessPoolExecutor(max_workers=4) as pool:
        done = list(pool.map(_hammer, [(str(tmp_path), worker) for worker in range(4)]))
    assert done == [150] * 4
    entries = list((tmp_path / "v").rglob("*.json"))
    assert len(entries) == 10
    for entry in entries:
        assert len(json.loads(entry.read_text())["blob"]) == 5000
    assert not [name for name in os.listdir(tmp_path / "v") if name.startswith(".tmp-")]


def test_old_version_folders_are_pruned_and_nothing_else(tmp_path):
    top = tmp_path / ".amplint_cache"
    for age in range(6):
        old = top / f"0.0.{age}-{'a' * 12}"
        (old / "ab").mkdir(parents=True)
        os.utime(old, (1_000_000 + age, 1_000_000 + age))
    (top / "not-a-version").mkdir()
    Cache(top, version=f"0.1.0-{'b' * 12}").put(digest("k"), 1)
    kept = sorted(p.name for p in top.iterdir() if p.is_dir())
    assert kept == [
        f"0.0.3-{'a' * 12}",
        f"0.0.4-{'a' * 12}",
        f"0.0.5-{'a' * 12}",
        f"0.1.0-{'b' * 12}",
        "not-a-version",
    ]
    assert oct((top / ".gitignore").stat().st_mode & 0o777) == "0o644"
