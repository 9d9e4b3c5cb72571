"""Drop-in replacement: a contrib-style script with only its import changed, and import errors."""

import subprocess
import sys
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
from machine import LOW_PRECISIONS, amp_init, needs_bfloat16
from mxnet.contrib.amp import lists
from mxnet.gluon import nn

import gluon_amp as amp

ROOT = Path(__file__).resolve().parents[2]

CONTRIB_SCRIPT = """\
from mxnet.contrib import amp
import mxnet as mx
from mxnet import autograd, gluon
from mxnet.gluon import nn

amp.init(target_dtype="bfloat16")
mx.random.seed(0)
net = nn.HybridSequential()
net.add(nn.Dense(16, activation="relu"), nn.Dense(3))
net.initialize()
net.hybridize()
trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.5})
amp.init_trainer(trainer)
loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
x = mx.nd.random.uniform(shape=(8, 10))
y = mx.nd.array([0, 1, 2, 0, 1, 2, 0, 1])
for epoch in range(10):
    with autograd.record():
        out = net(x)
        loss = loss_fn(out, y)
        with amp.scale_loss(loss, trainer) as scaled_loss:
            autograd.backward(scaled_loss)
    trainer.step(8)
    if epoch == 0:
        first = loss.mean().asscalar()
print("loss_scale", trainer._amp_loss_scaler.loss_scale)
print("learned", loss.mean().asscalar() < first)
print("out_dtype", out.dtype.__name__ if hasattr(out.dtype, "__name__") else out.dtype)
"""


def run(code, extra_path=(), **env):
    env_path = [str(p) for p in extra_path] + [str(ROOT)]
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": ":".join(env_path), "PATH": "/usr/bin:/bin", **env},
        timeout=120,
    )


@needs_bfloat16
def test_contrib_script_runs_unchanged_with_only_the_import_swapped():
    contrib = run(CONTRIB_SCRIPT)
    assert contrib.returncode == 0, contrib.stderr
    ours = run(CONTRIB_SCRIPT.replace("from mxnet.contrib import amp", "import gluon_amp as amp"))
    assert ours.returncode == 0, ours.stderr
    assert "learned True" in contrib.stdout and "learned True" in ours.stdout
    # contrib scales bfloat16 by 2**16 and returns raw bfloat16 outputs; gluon_amp does neither.
    assert "loss_scale 65536.0" in contrib.stdout
    assert "loss_scale 1.0" in ours.stdout and "out_dtype float32" in ours.stdout


def test_an_unmodified_float16_script_runs_on_a_cpu_with_the_variable_set():
    """``amp.init()`` means float16 to contrib (it fails on a CPU at the first sync); with
    GLUON_AMP_EMULATE_FLOAT16=1 the same script on gluon_amp trains in float16, with float16's
    dynamic loss scaler (bfloat16 would get a static 1.0)."""
    script = CONTRIB_SCRIPT.replace('amp.init(target_dtype="bfloat16")', "amp.init()")
    contrib = run(script)
    assert contrib.returncode != 0
    assert "only supported by CuDNN" in contrib.stderr
    ours = run(
        script.replace("from mxnet.contrib import amp", "import gluon_amp as amp"),
        GLUON_AMP_EMULATE_FLOAT16="1",
    )
    assert ours.returncode == 0, ours.stderr
    assert "learned True" in ours.stdout and "out_dtype float32" in ours.stdout
    assert "loss_scale 65536.0" in ours.stdout


@pytest.mark.parametrize(
    "broken_mxnet",
    [
        "raise AttributeError(\"module 'numpy' has no attribute 'bool'\")",  # numpy >= 1.24
        "raise ModuleNotFoundError(\"No module named 'mxnet'\", name='mxnet')",  # not installed
    ],
)
def test_unusable_mxnet_gives_one_clear_import_error(tmp_path, broken_mxnet):
    fake = tmp_path / "mxnet"
    fake.mkdir()
    (fake / "__init__.py").write_text(broken_mxnet + "\n")
    result = run("import gluon_amp", extra_path=[tmp_path])
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: gluon_amp needs a working MXNet 1.9.1")
    assert 'pip install "gluon-amp[cpu]"' in last and "numpy<1.24" in last
    assert result.stderr.count("Traceback") == 1
    assert "During handling" not in result.stderr


def test_init_after_contrib_init_in_the_same_process_is_refused():
    result = run(
        "from mxnet.contrib import amp as contrib\n"
        "import gluon_amp as amp\n"
        "contrib.init('bfloat16')\n"
        "try:\n"
        "    amp.init('bfloat16')\n"
        "except ValueError as error:\n"
        "    print(error)\n"
    )
    assert result.returncode == 0, result.stderr
    assert "mxnet.contrib.amp.init was already called" in result.stdout


@pytest.mark.parametrize("dtype", LOW_PRECISIONS)
def test_editing_mxnets_lists_through_amp_lists_before_init_is_honoured(dtype):
    """GluonCV appends to ``amp.lists.symbol_fp16.FP32_FUNCS`` before ``amp.init()``."""
    assert amp.lists.symbol_fp16 is lists.symbol_fp16
    edited = amp.lists.symbol_bf16 if dtype == "bfloat16" else amp.lists.symbol_fp16
    net = nn.HybridSequential()
    net.add(nn.Conv2D(2, 3), nn.MaxPool2D())
    net.initialize()
    seen = []
    net[1].register_forward_hook(lambda block, inputs, out: seen.append(out.dtype))
    edited.FP32_FUNCS.append("Pooling")
    try:
        amp_init(dtype)
        net(mx.nd.ones((1, 1, 6, 6)))
        amp.reset()
        edited.FP32_FUNCS.remove("Pooling")
        amp_init(dtype)
        net(mx.nd.ones((1, 1, 6, 6)))
    finally:
        if "Pooling" in edited.FP32_FUNCS:
            edited.FP32_FUNCS.remove("Pooling")
    low = amp.autocast.bfloat16 if dtype == "bfloat16" else np.float16
    assert seen[0] == np.float32 and seen[1] == low
