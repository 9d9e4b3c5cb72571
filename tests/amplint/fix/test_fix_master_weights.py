"""AMP306: multi_precision master weights get loss scaling added (and keep the master weights)
when the file can use amp; without amp the finding stays and says what to do."""

from __future__ import annotations

from fixcase import assert_fixed, fix

RECIPE = """\
from mxnet import autograd, gluon
net.cast('float16')
trainer = gluon.Trainer(params,  'nag', {'multi_precision': True})   # master weights
for x, y in loader:
    with autograd.record():
        loss = loss_fn(net(x).astype('float32'), y)
    # float16 gradients
    autograd.backward( loss )
    trainer.step(64)
"""


def test_gluon_amp_scaling_is_added_and_master_weights_kept():
    before = RECIPE.replace("gluon\n", "gluon\nimport gluon_amp\n", 1)
    after = before.replace(
        "# master weights\n", "# master weights\ngluon_amp.init_trainer(trainer)\n"
    ).replace(
        "    autograd.backward( loss )\n",
        "    with gluon_amp.scale_loss(loss, trainer) as scaled_loss:\n"
        "        autograd.backward( scaled_loss )\n",
    )
    assert_fixed(before, after, "AMP306", "AMP301")


def test_contrib_amp_scaling_moves_into_record():
    before = RECIPE.replace(
        "gluon\n", "gluon\nfrom mxnet.contrib import amp\namp.init()\n", 1
    ).replace("    trainer.step(64)\n", "    trainer.step(64)  # update\n")
    after = before.replace("# master weights\n", "# master weights\namp.init_trainer(trainer)\n")
    after = after.replace(
        "        loss = loss_fn(net(x).astype('float32'), y)\n"
        "    # float16 gradients\n"
        "    autograd.backward( loss )\n",
        "        loss = loss_fn(net(x).astype('float32'), y)\n"
        "        # float16 gradients\n"
        "        with amp.scale_loss(loss, trainer) as scaled_loss:\n"
        "            autograd.backward( scaled_loss )\n",
    )
    assert_fixed(before, after, "AMP306", "AMP301")


def test_without_amp_the_finding_stays_with_its_reason():
    result = fix(RECIPE, "AMP306")
    assert result.fixed == RECIPE and [f.code for f in result.remaining] == ["AMP306"]
    assert "import gluon_amp as amp" in result.reasons[result.remaining[0]]
