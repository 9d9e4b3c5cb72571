"""[tool.amplint] discovery, validation and pattern semantics (amplint.config)."""

from __future__ import annotations

import pytest

from amplint import config
from amplint.config import ConfigError


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_discovery_walks_up_to_the_first_pyproject_with_the_table(tmp_path):
    outer = write(tmp_path / "pyproject.toml", "[tool.amplint]\nalignment = 16\n")
    # A nearer pyproject.toml without [tool.amplint] is passed over, as ruff does.
    write(tmp_path / "pkg" / "pyproject.toml", "[project]\nname = 'pkg'\n")
    script = write(tmp_path / "pkg" / "src" / "train.py", "x = 1\n")
    assert config.discover([script]) == outer
    loaded = config.resolve([script])
    assert loaded.path == outer
    assert loaded.root == tmp_path
    assert loaded.alignment == 16


def test_explicit_config_file_wins_over_discovery(tmp_path):
    write(tmp_path / "pyproject.toml", "[tool.amplint]\nalignment = 16\n")
    other = write(tmp_path / "ci" / "amplint.toml", "[tool.amplint]\nmin-dimension = 64\n")
    loaded = config.resolve([tmp_path], config_file=other)
    assert loaded.path == other
    assert (loaded.alignment, loaded.min_dimension) == (None, 64)


def test_all_keys_parse(tmp_path):
    path = write(
        tmp_path / "pyproject.toml",
        """
[tool.amplint]
select = ["AMP2", "missing-loss-scaling"]
extend-select = ["AMP306"]
ignore = ["AMP202"]
exclude = ["legacy"]
extend-exclude = ["notebooks/*"]
alignment = 8
min-dimension = 32
assume-amp = "bfloat16"
cache-dir = ".cache/amplint"

[tool.amplint.per-file-ignores]
"tests/*" = ["AMP201"]
""",
    )
    loaded = config.load(path)
    assert loaded.select == ("AMP2", "missing-loss-scaling")
    assert loaded.extend_select == ("AMP306",)
    assert loaded.ignore == ("AMP202",)
    assert loaded.exclude == ("legacy",)
    assert loaded.extend_exclude == ("notebooks/*",)
    assert loaded.per_file_ignores == (("tests/*", ("AMP201",)),)
    assert loaded.assume_amp == "bfloat16"
    assert loaded.cache_dir == tmp_path / ".cache" / "amplint"


@pytest.mark.parametrize(
    "body, words",
    [
        ("selekt = ['AMP201']", ["unknown key 'selekt'", "did you mean 'select'"]),
        ("alignment = '8'", ["alignment", "positive integer"]),
        ("alignment = 0", ["alignment", "positive integer"]),
        ("min-dimension = true", ["min-dimension", "an integer >= 0"]),
        ("min-dimension = -1", ["min-dimension", "an integer >= 0"]),
        ("select = 'AMP201'", ["select", "a list of rule codes"]),
        ("assume-amp = 'float32'", ["assume-amp", '"float16" or "bfloat16"']),
        ("per-file-ignores = {'a.py' = 'AMP201'}", ["per-file-ignores", "table"]),
    ],
)
def test_bad_keys_and_values_name_the_file_and_the_key(tmp_path, body, words):
    path = write(tmp_path / "pyproject.toml", f"[tool.amplint]\n{body}\n")
    with pytest.raises(ConfigError) as error:
        config.load(path)
    message = str(error.value)
    assert str(path) in message
    for word in words:
        assert word in message
    assert "\n" not in message


def test_invalid_toml_and_missing_file_are_one_clear_error(tmp_path):
    broken = write(tmp_path / "pyproject.toml", "[tool.amplint\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(broken)
    with pytest.raises(ConfigError, match="not found"):
        config.load(tmp_path / "nowhere.toml")


def test_without_a_configuration_the_root_is_the_git_root(tmp_path):
    (tmp_path / ".git").mkdir()
    script = write(tmp_path / "src" / "deep" / "a.py", "")
    loaded = config.resolve([script])
    assert loaded.path is None
    assert loaded.root == tmp_path


@pytest.mark.parametrize(
    "pattern, path, expected",
    [
        ("build", "build/lib/a.py", True),
        ("build", "src/build/a.py", True),
        ("build", "src/builder.py", False),
        ("*_pb2.py", "proto/x_pb2.py", True),
        ("tests/*", "tests/unit/test_a.py", True),
        ("tests/*", "src/tests/test_a.py", False),
        ("src/legacy", "src/legacy/old.py", True),
        ("./src/legacy/", "src/legacy/old.py", True),
        ("src/*.py", "src/a.py", True),
        ("examples/*.ipynb", "examples/a.py", False),
    ],
)
def test_glob_semantics_follow_ruff(pattern, path, expected):
    assert config.glob_matches(pattern, path) is expected


def test_per_file_ignores_apply_by_root_relative_path(tmp_path):
    path = write(
        tmp_path / "pyproject.toml",
        '[tool.amplint.per-file-ignores]\n"tests/*" = ["AMP201"]\n"__init__.py" = ["AMP3"]\n',
    )
    loaded = config.load(path)
    assert loaded.ignored_for(tmp_path / "tests" / "a" / "test_x.py") == ("AMP201",)
    assert loaded.ignored_for(tmp_path / "pkg" / "__init__.py") == ("AMP3",)
    assert loaded.ignored_for(tmp_path / "pkg" / "model.py") == ()
    assert loaded.ignored_for(tmp_path.parent / "elsewhere.py") == ()
