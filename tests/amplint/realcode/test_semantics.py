"""The semantics the issue asks to keep straight, through the real CLI: one finding per site
listing its configurations (text, JSON, SARIF), fixes of a finding of some configurations,
master weights alone, ``amplint explain configurations``."""

from __future__ import annotations

import json

from realcase import check

SCRIPT = """\
import argparse
import torch
import torch.nn.functional as F
parser = argparse.ArgumentParser()
parser.add_argument('--dtype', default='float32', choices=['float32', 'float16', 'bfloat16'])
parser.add_argument('--half', action='store_true')
args = parser.parse_args()
model = torch.nn.Linear(512, 16).to(getattr(torch, args.dtype))
if args.half:
    model = model.half()
for x, y in loader:
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
"""


def test_one_finding_per_site_with_its_configurations_in_every_format(tmp_path, amplint):
    (tmp_path / "train.py").write_text(SCRIPT)
    text = amplint("check", "train.py", "--no-cache", cwd=tmp_path)
    lines = [line for line in text.stdout.splitlines() if ": AMP" in line]
    assert lines == [
        "train.py:12:28: AMP101 float16 model output fed to a softmax or loss without a cast: "
        "cast it to float32 first (.astype('float32') / .float()) "
        "(with --dtype float16; or with --half)",
        "train.py:13:5: AMP301 float16 backward without loss scaling: small gradients underflow "
        "to zero; use torch.cuda.amp.GradScaler: scaler.scale(loss).backward() "
        "(with --dtype float16; or with --half)",
    ]
    found = json.loads(amplint("check", "train.py", "--format", "json", cwd=tmp_path).stdout)
    assert [f["configurations"] for f in found] == [["--dtype float16", "--half"]] * 2
    sarif = json.loads(amplint("check", "train.py", "--format", "sarif", cwd=tmp_path).stdout)
    results = sarif["runs"][0]["results"]
    assert [r["properties"]["configurations"] for r in results] == [
        ["--dtype float16", "--half"]
    ] * 2


def test_a_fix_of_some_configurations_is_applied_only_when_it_changes_nothing_else(
    tmp_path, amplint
):
    (tmp_path / "train.py").write_text(SCRIPT)
    result = amplint("check", "train.py", "--fix", "--no-cache", cwd=tmp_path)
    fixed = (tmp_path / "train.py").read_text()
    assert "F.cross_entropy(model(x).float(), y)" in fixed  # a float32 cast: neutral
    assert "loss.backward()\n" in fixed  # adding loss scaling would change float32 runs
    assert (
        "[not fixed: it holds only with --dtype float16; or with --half, and this fix would "
        "change the other configurations too: apply it under the same condition by hand]"
    ) in result.stdout


def test_a_float32_only_script_and_master_weights_alone_are_silent():
    """dmlc/gluon-cv@567775619f3b97d47e7c360748912a4fd883ff52,
    scripts/pose/simple_pose/train_simple_pose.py: ``multi_precision`` with ``--dtype`` float16
    and no loss scaling is AMP306's case, which is off by default."""
    check(
        """
        import argparse
        import torch
        from mxnet import autograd, gluon
        parser = argparse.ArgumentParser()
        parser.add_argument('--dtype', type=str, default='float32')
        opt = parser.parse_args()
        net.cast(opt.dtype)
        params = {'learning_rate': 0.1}
        if opt.dtype != 'float32':
            params['multi_precision'] = True
        trainer = gluon.Trainer(net.collect_params(), 'adam', params)
        with autograd.record():
            loss = loss_fn(net(x).astype('float32'), y)
        loss.backward()
        trainer.step(1)
        model = torch.nn.Sequential(torch.nn.Linear(100, 30), torch.nn.Linear(30, 10))
        out = torch.nn.functional.cross_entropy(model(x), y)
        out.backward()
        """
    )
    check(
        """
        import argparse
        from mxnet import autograd, gluon
        parser = argparse.ArgumentParser()
        parser.add_argument('--dtype', type=str, default='float32')
        opt = parser.parse_args()
        net.cast(opt.dtype)
        trainer = gluon.Trainer(net.collect_params(), 'adam', {'multi_precision': True})
        with autograd.record():
            loss = loss_fn(net(x).astype('float32'), y)
        loss.backward()  # AMP306 (--dtype float16)
        trainer.step(1)
        """,
        select={"AMP301", "AMP306"},
    )


def test_explain_says_how_a_configuration_is_chosen(amplint):
    result = amplint("explain", "configurations")
    assert result.returncode == 0
    assert "any value its type" in " ".join(result.stdout.split())
    assert "amplint explain configurations" in amplint("explain", "AMP101").stdout
