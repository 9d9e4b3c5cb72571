"""The project pass: precision crosses files through imports within the linted tree."""

from __future__ import annotations

from pathlib import Path

from amplint.project import HUB_IMPORTS, analyse, scan
from amplint.runner import Request, run

MODEL = """\
from mxnet.gluon import nn

def build(classes=10):
    net = nn.HybridSequential()
    net.add(nn.Dense(512), nn.Dense(classes))
    return net
"""


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def check(root: Path):
    return run(Request(paths=(str(root),), use_cache=False, jobs=1)).findings


def test_model_module_imported_by_float16_script(tmp_path):
    write(
        tmp_path,
        {
            "train.py": "from mxnet.contrib import amp\nfrom models.mlp import build\namp.init()\n",
            "models/__init__.py": "",
            "models/mlp.py": MODEL,
            "models/unused.py": MODEL,  # same odd dims, never imported: float32
        },
    )
    findings = check(tmp_path)
    assert [(Path(f.path).name, f.line, f.code) for f in findings] == [("mlp.py", 5, "AMP201")]
    assert "default of classes, line 3" in findings[0].message
    assert "imported by train.py, which enables float16" in findings[0].message
    # Removing amp.init makes the model float32 again.
    (tmp_path / "train.py").write_text("from models.mlp import build\n")
    assert check(tmp_path) == []


def test_transitive_relative_imports_and_precision(tmp_path):
    write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/train.py": (
                "import torch\nfrom .nets import model\n"
                "with torch.autocast('cpu', dtype=torch.bfloat16):\n    pass\n"
            ),
            "pkg/nets/__init__.py": "from .model import Net\n",
            "pkg/nets/model.py": "from . import blocks\n",
            "pkg/nets/blocks.py": "import torch.nn as nn\nlayer = nn.Linear(100, 256)\n",
        },
    )
    findings = check(tmp_path)
    assert [(Path(f.path).name, f.line) for f in findings] == [("blocks.py", 2)]
    assert "bfloat16" in findings[0].message


def test_precision_does_not_pass_through_a_model_registry(tmp_path):
    # GluonCV: a float16 estimator imports get_model from model_zoo/__init__.py, which imports
    # every model; which one the estimator builds is not known, so none of them is float16.
    zoo = {f"zoo/m{i}.py": MODEL for i in range(HUB_IMPORTS)}
    write(
        tmp_path,
        {
            "train.py": "from zoo import get_model\nfrom zoo.m0 import build\nnet.half()\n",
            "zoo/__init__.py": "".join(f"from .m{i} import build\n" for i in range(HUB_IMPORTS)),
            **zoo,
        },
    )
    found = [(Path(f.path).relative_to(tmp_path).as_posix(), f.code) for f in check(tmp_path)]
    assert found == [("zoo/m0.py", "AMP201")]
    (tmp_path / "zoo/m9.py").unlink()  # nine imports: a package like any other
    assert len(check(tmp_path)) == HUB_IMPORTS - 1


def test_import_of_an_external_package_is_not_a_local_module(tmp_path):
    # d2l ships a module named mxnet.py: `import mxnet` in a float16 script must not reach it.
    write(
        tmp_path,
        {
            "d2l/__init__.py": "",
            "d2l/mxnet.py": MODEL,
            "train.py": "import mxnet\nnet.cast('float16')\n",
        },
    )
    assert check(tmp_path) == []


def test_scan_reads_switches_not_words():
    assert scan('"""Use float16 or amp.init() for speed."""\n# net.half()\n').precisions == ()
    assert scan("x = nd.zeros((2, 2), dtype='float16')\n").precisions == ()
    assert scan("amp.init()\n").precisions == ("float16",)
    assert scan("amp.init(target_dtype='bfloat16')\n").precisions == ("bfloat16",)
    assert scan("net.cast(np.float16)\n").precisions == ("float16",)
    assert scan("with torch.autocast('cuda', enabled=False):\n    pass\n").precisions == ()
    assert scan("parser.add_argument('--amp', action='store_true')\n").precisions == ("float16",)
    assert scan("m = model.half().float()\n").precisions == ()
    facts = scan("import a.b as c, d\nfrom .x import (y,\n    z)\nfrom e import *\n")
    assert facts.imports == ("a.b", "d", ".x", ".x.y", ".x.z", "e")


def test_switches_in_string_literals_and_comments_do_not_count():
    assert scan('doc = "call amp.init() first"  # or net.half()\n').precisions == ()
    assert scan("print(f'net.cast(\"float16\") on {device}')\n").precisions == ()
    assert scan('HELP = """\nnet.half()\n"""\nx = 1\n').precisions == ()
    assert scan('s = "x"\nnet.cast("float16")\n').precisions == ("float16",)
    assert scan("p.add_argument('--amp', help='amp.init() (float16)')\n").precisions == ("float16",)
    assert scan("amp.init()\nx = (\n").precisions == ("float16",)  # no tokens: the text counts


def test_a_string_mentioning_amp_init_gives_imported_modules_no_context(tmp_path):
    write(
        tmp_path,
        {
            "train.py": 'from models.mlp import build\nUSAGE = "then call amp.init()"\n',
            "models/__init__.py": "",
            "models/mlp.py": MODEL,
        },
    )
    assert check(tmp_path) == []


def test_same_script_names_prefer_the_importers_folder(tmp_path):
    write(
        tmp_path, {"a/train.py": "import model\namp.init()\n", "a/model.py": "", "b/model.py": ""}
    )
    facts = {p: scan(p.read_text()) for p in tmp_path.rglob("*.py")}
    contexts = analyse(facts)
    assert set(contexts) == {tmp_path / "a" / "model.py"}
