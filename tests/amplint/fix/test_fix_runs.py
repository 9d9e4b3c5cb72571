"""End to end: a real MXNet script misusing mxnet.contrib.amp fails or trains wrongly; after
``amplint check --fix`` (a real subprocess) it trains for real steps, with its gradients scaled,
unscaled before clipping, and its trainer initialised."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """\
# A tiny network trained with mxnet.contrib.amp, with the loss-scaling API misused.

import json
import sys

import mxnet as mx
from mxnet import autograd, gluon
from mxnet.contrib import amp


class Scale(gluon.HybridBlock):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.w = self.params.get("w", shape=(4,), init=mx.init.Constant(2.0))

    def hybrid_forward(self, F, x, w):
        return F.broadcast_mul(x, w)


amp.init()
x = mx.nd.ones((8, 4))
y = mx.nd.zeros((8, 4))
loss_fn = gluon.loss.L2Loss()


def unscaled(steps):
    net = Scale()
    net.initialize()
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
    losses = []
    for _ in range(steps):
        with autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(8)
        losses.append(float(loss.mean().asscalar()))
    return losses


def clipped(steps):
    net = Scale()
    net.initialize()
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
    losses = []
    for _ in range(steps):
        with autograd.record():
            loss = loss_fn(net(x), y)
        with amp.scale_loss(loss, trainer) as scaled:
            autograd.backward(scaled)
        grads = [p.grad() for p in net.collect_params().values()]
        gluon.utils.clip_global_norm(grads, 1.0)
        trainer.step(8)
        losses.append(float(loss.mean().asscalar()))
    return losses


json.dump({"unscaled": unscaled(5), "clipped": clipped(5)}, sys.stdout)
"""


def _train(path):
    return subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=300, cwd=path.parent
    )


def test_fixed_contrib_amp_script_trains(tmp_path, amplint):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    broken = _train(script)
    assert broken.returncode != 0 and "_amp_loss_scaler" in broken.stderr

    fixed = amplint("check", "train.py", "--fix", "--no-cache", cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert fixed.stdout.splitlines()[-1] == "4 fixed, 0 remaining."

    run = _train(script)
    assert run.returncode == 0, run.stderr
    losses = json.loads(run.stdout)
    unscaled, clipped = losses["unscaled"], losses["clipped"]
    assert all(later < earlier for earlier, later in zip(unscaled, unscaled[1:])), unscaled
    # Clipped to a norm of 1.0 after unscaling: a visible step each time (clipping the still
    # scaled gradients would shrink every step by the loss scale, 2**16).
    assert all(earlier - later > 0.005 for earlier, later in zip(clipped, clipped[1:])), clipped


LATE_INIT = """\
import mxnet as mx
from mxnet.contrib import amp
from mxnet.gluon import nn

net = nn.Dense(8, in_units=8)
net.initialize()
net.hybridize()
net(mx.nd.ones((2, 8)))  # warm-up: the float32 graph is cached
amp.init(target_dtype="bfloat16")  # too late
print(net(mx.nd.ones((2, 8))).dtype)
"""


def test_amp_init_moved_by_the_fix_makes_the_hybridized_net_run_in_bfloat16(tmp_path, amplint):
    script = tmp_path / "late.py"
    script.write_text(LATE_INIT)
    before = _train(script)
    assert before.returncode == 0 and "float32" in before.stdout, before.stderr

    fixed = amplint("check", "late.py", "--fix", "--no-cache", cwd=tmp_path)
    assert fixed.stdout.splitlines()[-1] == "1 fixed, 0 remaining.", fixed.stdout
    assert script.read_text().index("amp.init(") < script.read_text().index("net = nn.Dense")

    after = _train(script)
    assert after.returncode == 0 and "bfloat16" in after.stdout, after.stderr
