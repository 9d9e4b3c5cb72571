"""AMP301 (and AMP303): loss scaling added to MXNet and PyTorch training code."""

from __future__ import annotations

from fixcase import assert_fixed, fix

CONTRIB = """\
from mxnet import autograd, gluon
from mxnet.contrib import amp
amp.init()
trainer = gluon.Trainer(net.collect_params(), "sgd")  # the optimizer
"""


def test_contrib_backward_after_record_moves_inside_and_trainer_is_initialised():
    before = CONTRIB + (
        "for x, y in loader:\n"
        "    with autograd.record():\n"
        "        loss = loss_fn(net(x), y)\n"
        "\n"
        "    # gradients\n"
        "    loss.backward()   # keep\n"
        "    trainer.step(x.shape[0])\n"
    )
    after = CONTRIB + (
        "amp.init_trainer(trainer)\n"
        "for x, y in loader:\n"
        "    with autograd.record():\n"
        "        loss = loss_fn(net(x), y)\n"
        "        # gradients\n"
        "        with amp.scale_loss(loss, trainer) as scaled_loss:\n"
        "            scaled_loss.backward()   # keep\n"
        "    trainer.step(x.shape[0])\n"
    )
    assert_fixed(before, after, "AMP301", "AMP302", "AMP303")


def test_backward_inside_record_is_wrapped_in_place_with_odd_formatting():
    before = CONTRIB + "amp.init_trainer( trainer )\n"
    body = (
        "def step(x, y):\n"
        "  with autograd.record():\n"
        "    out = net(x)\n"
        "    # the loss\n"
        "    loss = loss_fn(out, y)\n"
        "    autograd.backward( [loss] ,retain_graph = False)  # odd\n"
        "  trainer.step(1)\n"
    )
    after = (
        "def step(x, y):\n"
        "  with autograd.record():\n"
        "    out = net(x)\n"
        "    # the loss\n"
        "    loss = loss_fn(out, y)\n"
        "    with amp.scale_loss([loss], trainer) as scaled_loss:\n"
        "      autograd.backward( scaled_loss ,retain_graph = False)  # odd\n"
        "  trainer.step(1)\n"
    )
    assert_fixed(before + body, before + after, "AMP301", "AMP302", "AMP303")


def test_gluon_amp_scales_in_place_outside_record():
    before = (
        "import gluon_amp as amp\n"
        "from mxnet import autograd, gluon\n"
        "amp.init()\n"
        "trainer = amp.init_trainer(gluon.Trainer(params, 'adam'))\n"
        "with autograd.record():\n"
        "    loss = loss_fn(net(x), y)\n"
        "loss.backward()\n"
        "trainer.step(8)\n"
    )
    after = before.replace(
        "loss.backward()\n",
        "with amp.scale_loss(loss, trainer) as scaled_loss:\n    scaled_loss.backward()\n",
    )
    assert_fixed(before, after, "AMP301", "AMP302", "AMP303")


def test_name_clash_gives_a_fresh_name():
    before = CONTRIB + (
        "amp.init_trainer(trainer)\n"
        "scaled_loss = 1\n"
        "with autograd.record():\n"
        "    loss = loss_fn(net(x), y)\n"
        "    loss.backward()\n"
        "trainer.step(1)\n"
    )
    result = fix(before, "AMP301")
    assert "as scaled_loss_2:\n        scaled_loss_2.backward()" in result.fixed


def test_unidentifiable_trainer_stays_with_reason():
    before = CONTRIB + (
        "other = gluon.Trainer(head.collect_params(), 'sgd')\n"
        "with autograd.record():\n"
        "    loss = loss_fn(net(x), y)\n"
        "    loss.backward()\n"
        "trainer.step(1)\n"
        "other.step(1)\n"
    )
    result = fix(before, "AMP301")
    assert result.fixed == before
    assert "which trainer" in result.reasons[result.remaining[0]]


def test_net_cast_without_amp_is_not_fixed():
    before = (
        "from mxnet import autograd, gluon\n"
        "net.cast('float16')\n"
        "trainer = gluon.Trainer(params, 'sgd')\n"
        "with autograd.record():\n"
        "    loss = loss_fn(net(x), y)\n"
        "loss.backward()\n"
        "trainer.step(1)\n"
    )
    result = fix(before, "AMP301")
    assert result.fixed == before
    assert result.reasons[result.remaining[0]].startswith("no amp.init() and no gluon_amp: ")
    # gluon_amp scales without init(): the same script with it imported is fixed
    with_amp = before.replace("gluon\n", "gluon\nimport gluon_amp as gamp\n", 1)
    after = with_amp.replace("'sgd')\n", "'sgd')\ngamp.init_trainer(trainer)\n").replace(
        "loss.backward()\n",
        "with gamp.scale_loss(loss, trainer) as scaled_loss:\n    scaled_loss.backward()\n",
    )
    assert_fixed(with_amp, after, "AMP301")


TORCH = """\
import torch

model = Net().cuda()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 10)
"""


def test_torch_gradscaler_pattern():
    before = TORCH + (
        "for epoch in range(3):\n"
        "    # one epoch\n"
        "    for x, y in loader:\n"
        "        optimizer.zero_grad()\n"
        "        with torch.autocast('cuda'):\n"
        "            loss = criterion(model(x), y)\n"
        "        loss.backward(retain_graph=False)   # grads\n"
        "        optimizer.step()  # update\n"
        "    scheduler.step()\n"
    )
    after = TORCH + (
        "scaler = torch.cuda.amp.GradScaler()\n"
        "for epoch in range(3):\n"
        "    # one epoch\n"
        "    for x, y in loader:\n"
        "        optimizer.zero_grad()\n"
        "        with torch.autocast('cuda'):\n"
        "            loss = criterion(model(x), y)\n"
        "        scaler.scale(loss).backward(retain_graph=False)   # grads\n"
        "        scaler.step(optimizer)  # update\n"
        "        scaler.update()\n"
        "    scheduler.step()\n"
    )
    assert_fixed(before, after, "AMP301", "AMP305")


def test_torch_half_model_and_missing_loop_are_not_fixed():
    half = (
        "import torch\nmodel = Net().half()\nloss = criterion(model(x), y)\nloss.backward()\n"
        "optimizer.step()\n"
    )
    result = fix(half, "AMP301")
    assert result.fixed == half and "autocast" in result.reasons[result.remaining[0]]
    no_loop = (
        "import torch\n"
        "def train_step(x, y):\n"
        "    with torch.autocast('cuda'):\n"
        "        loss = criterion(model(x), y)\n"
        "    loss.backward()\n"
        "    optimizer.step()\n"
    )
    result = fix(no_loop, "AMP301")
    assert result.fixed == no_loop and "loop" in result.reasons[result.remaining[0]]


def test_amp303_init_trainer_after_creation():
    before = CONTRIB + (
        "with autograd.record():\n"
        "    loss = loss_fn(net(x), y)\n"
        "    with amp.scale_loss(loss, trainer) as scaled:\n"
        "        autograd.backward(scaled)\n"
    )
    after = before.replace("# the optimizer\n", "# the optimizer\namp.init_trainer(trainer)\n")
    assert_fixed(before, after, "AMP303")


def test_amp303_trainer_created_after_use_is_not_fixed():
    before = (
        "from mxnet import autograd, gluon\n"
        "from mxnet.contrib import amp\n"
        "amp.init()\n"
        "with amp.scale_loss(loss, trainer) as scaled:\n"
        "    autograd.backward(scaled)\n"
        "trainer = gluon.Trainer(params, 'sgd')\n"
    )
    result = fix(before, "AMP303")
    assert result.fixed == before and "after it is used" in result.reasons[result.remaining[0]]
