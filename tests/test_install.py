"""The base install is the linter alone: no MXNet, no numpy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Make `import mxnet` / `import numpy` fail in a child, as on a machine without them.
BLOCK_IMPORTS = """
import sys
class _Missing:
    def __init__(self, names): self.names = names
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, _Missing(NAMES))
"""


def run_without(names: set[str], code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", f"NAMES = {sorted(names)!r}\n" + BLOCK_IMPORTS + code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_amplint_runs_without_mxnet_or_numpy():
    proc = run_without(
        {"mxnet", "numpy"},
        "from amplint.cli import main\nmain(['check', 'examples/hazards'], prog_name='amplint')\n",
    )
    assert proc.returncode == 1, proc.stderr  # 1: findings, and no ImportError
    assert "AMP" in proc.stdout


def test_import_gluon_amp_without_mxnet_names_what_to_install():
    proc = run_without({"mxnet"}, "import gluon_amp\n")
    assert proc.returncode != 0
    last_line = proc.stderr.strip().splitlines()[-1]
    assert last_line.startswith("ImportError:")
    assert "gluon-amp[cpu]" in last_line


@pytest.mark.slow
def test_pip_install_without_extras_gives_a_working_amplint(tmp_path: Path):
    source = tmp_path / "src"  # build from a copy: nothing is written into the work tree
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            "build",
            "*.egg-info",
            "__pycache__",
            ".*_cache",
            ".hypothesis",
            "output",
        ),
    )
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    subprocess.run(
        [bin_dir / "python", "-m", "pip", "install", "--quiet", str(source)],
        check=True,
        timeout=600,
        cwd=tmp_path,
    )
    for module in ("mxnet", "numpy"):
        probe = subprocess.run([bin_dir / "python", "-c", f"import {module}"], capture_output=True)
        assert probe.returncode != 0, f"the base install pulled in {module}"
    proc = subprocess.run(
        [bin_dir / "amplint", "check", ROOT / "examples" / "hazards"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr
    assert "AMP201" in proc.stdout
