"""The project pass: precision crosses files through imports within the linted tree."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from amplint.interface import condition_from
from amplint.project import HUB_IMPORTS, Outgoing, analyse, scan
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
            # the script builds the model with the default class count
            "train.py": (
                "from mxnet.contrib import amp\nfrom models.mlp import build\namp.init()\n"
                "net = build()\n"
            ),
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
    # The model run under autocast is built in nets/model.py from nets/blocks.py: both its
    # class and what that module imports run in bfloat16; a module beside it does not.
    write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/train.py": (
                "import torch\nfrom .nets.model import Net\nmodel = Net()\n"
                "with torch.autocast('cpu', dtype=torch.bfloat16):\n    model(x)\n"
            ),
            "pkg/nets/__init__.py": "",
            "pkg/nets/model.py": (
                "from . import blocks\nclass Net:\n    def __init__(self):\n"
                "        self.body = blocks.Block()\n"
            ),
            "pkg/nets/blocks.py": (
                "import torch.nn as nn\nclass Block(nn.Module):\n    def __init__(self):\n"
                "        self.fc = nn.Linear(100, 256)\n"
            ),
            "pkg/nets/other.py": "import torch.nn as nn\nlayer = nn.Linear(100, 256)\n",
        },
    )
    findings = check(tmp_path)
    assert [(Path(f.path).name, f.line) for f in findings] == [("blocks.py", 4)]
    assert "bfloat16" in findings[0].message


def test_precision_does_not_pass_through_a_model_registry(tmp_path):
    # GluonCV: a float16 estimator imports get_model from model_zoo/__init__.py, which imports
    # every model; which one the estimator builds is not known, so none of them is float16.
    # m0's build is called with its default class count; the others are written out
    literal = MODEL.replace("nn.Dense(classes)", "nn.Dense(10)")
    zoo = {f"zoo/m{i}.py": MODEL if i == 0 else literal for i in range(HUB_IMPORTS)}
    write(
        tmp_path,
        {
            "train.py": (
                "from mxnet.contrib import amp\nfrom zoo import get_model\n"
                "from zoo.m0 import build\namp.init()\nnet = build()\n"
            ),
            "zoo/__init__.py": "".join(f"from .m{i} import build\n" for i in range(HUB_IMPORTS)),
            **zoo,
        },
    )
    found = [(Path(f.path).relative_to(tmp_path).as_posix(), f.code) for f in check(tmp_path)]
    assert found == [("zoo/m0.py", "AMP201")]
    (tmp_path / "zoo/m9.py").unlink()  # nine imports: a package like any other
    assert len(check(tmp_path)) == HUB_IMPORTS - 1


def test_an_object_switch_covers_the_class_its_model_is_built_from(tmp_path):
    # nanoGPT: train.py builds GPT from model.py and runs it under autocast with a dtype its
    # configurator may set; only GPT's layers (and its parts) are reduced, with that setting.
    write(
        tmp_path,
        {
            "train.py": (
                "import torch\nfrom model import GPT\n"
                "dtype = 'bfloat16'\nexec(open('configurator.py').read())\n"
                "ptdtype = {'float32': torch.float32, 'bfloat16': torch.bfloat16,"
                " 'float16': torch.float16}[dtype]\n"
                "model = GPT()\nctx = torch.amp.autocast(device_type='cuda', dtype=ptdtype)\n"
                "with ctx:\n    logits = model(x)\n"
            ),
            "model.py": (
                "import torch.nn as nn\nclass MLP(nn.Module):\n    def __init__(self):\n"
                "        self.fc = nn.Linear(768, 3070)\n"
                "class GPT(nn.Module):\n    def __init__(self):\n        self.mlp = MLP()\n"
                "class Unused(nn.Module):\n    def __init__(self):\n"
                "        self.fc = nn.Linear(768, 3070)\n"
            ),
        },
    )
    findings = check(tmp_path)
    assert [(Path(f.path).name, f.line, f.code) for f in findings] == [("model.py", 4, "AMP201")]
    assert findings[0].configurations == ("train.py: dtype=bfloat16", "train.py: dtype=float16")
    assert "GPT run in bfloat16 by train.py" in findings[0].message


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


AMP = "from mxnet.contrib import amp\nimport models\n"


def test_scan_reads_switches_not_words():
    everything = (None, None, "float16", "autocast", "mxnet", ())
    always = "[[]]"  # the importer's configurations as its options: all of them
    assert scan(AMP + '"""Use float16 or amp.init() for speed."""\n# net.half()\n').outgoing == ()
    assert scan(AMP + "x = nd.zeros((2, 2), dtype='float16')\n").outgoing == ()
    switched = Outgoing(*everything, trains=False, condition=always)
    assert scan(AMP + "amp.init()\n").outgoing == (switched,)
    training = AMP + "amp.init()\ntrainer.step(1)\n"  # the importer trains what it switches
    assert scan(training).outgoing == (Outgoing(*everything, trains=True, condition=always),)
    bfloat16 = Outgoing(
        None, None, "bfloat16", "autocast", "mxnet", (), trains=False, condition=always
    )
    assert scan(AMP + "amp.init(target_dtype='bfloat16')\n").outgoing == (bfloat16,)
    assert (
        scan("import torch\nwith torch.autocast('cuda', enabled=False):\n    pass\n").outgoing == ()
    )
    facts = scan("import a.b as c, d\nfrom .x import (y,\n    z)\nfrom e import *\n")
    assert facts.imports == ("a.b", "d", ".x", ".x.y", ".x.z", "e", "e.*")


def test_spreads_name_the_importers_configurations():
    script = (
        "import argparse\nfrom mxnet.contrib import amp\nimport models\n"
        "parser = argparse.ArgumentParser()\nparser.add_argument('--amp', action='store_true')\n"
        "args = parser.parse_args()\nif args.amp:\n    amp.init()\n"
    )
    (found,) = scan(script).outgoing
    assert dataclasses.replace(found, condition="") == (
        Outgoing(None, None, "float16", "autocast", "mxnet", ("--amp",), trains=False)
    )
    assert condition_from(json.loads(found.condition)).describe() == ("--amp",)


def test_switches_in_string_literals_and_comments_do_not_count():
    assert scan(AMP + 'doc = "call amp.init() first"  # or net.half()\n').outgoing == ()
    assert scan(AMP + "print(f'net.cast(\"float16\") on {device}')\n").outgoing == ()
    assert scan(AMP + 'HELP = """\namp.init()\n"""\nx = 1\n').outgoing == ()


def test_a_string_mentioning_amp_init_gives_imported_modules_no_context(tmp_path):
    write(
        tmp_path,
        {
            "train.py": (
                "from mxnet.contrib import amp\nfrom models.mlp import build\n"
                'USAGE = "then call amp.init()"\n'
            ),
            "models/__init__.py": "",
            "models/mlp.py": MODEL,
        },
    )
    assert check(tmp_path) == []


def test_same_script_names_prefer_the_importers_folder(tmp_path):
    write(
        tmp_path,
        {
            "a/train.py": "from mxnet.contrib import amp\nimport model\namp.init()\n",
            "a/model.py": "",
            "b/model.py": "",
        },
    )
    facts = {p: scan(p.read_text()) for p in tmp_path.rglob("*.py")}
    contexts = analyse(facts)
    assert set(contexts) == {tmp_path / "a" / "model.py"}
