"""AMP101 (float32 outputs), AMP302 (scale_loss inside record()), AMP305 (unscale before
clipping): before/after cases, layouts kept byte for byte outside the changed span."""

from __future__ import annotations

from fixcase import assert_fixed, fix

KERAS = """\
from tensorflow import keras
from tensorflow.keras import layers
keras.mixed_precision.set_global_policy('mixed_float16')
"""


def test_keras_dtype_follows_one_argument_per_line_and_trailing_comma():
    before = KERAS + (
        "model = keras.Sequential([\n"
        "    layers.Dense(64, activation='relu'),\n"
        "    layers.Dense(\n"
        "        10,\n"
        "        activation='softmax',   # probabilities\n"
        "    ),\n"
        "])\n"
    )
    after = before.replace(
        "# probabilities\n    ),", "# probabilities\n        dtype='float32',\n    ),"
    )
    assert_fixed(before, after, "AMP101")


def test_keras_dtype_without_trailing_comma_and_spaces_around_equals():
    before = KERAS + "model = keras.Sequential([layers.Dense( 10 , activation = 'softmax' )])\n"
    after = before.replace("'softmax' )", "'softmax' , dtype = 'float32' )")
    assert_fixed(before, after, "AMP101")


def test_keras_explicit_float16_dtype_becomes_float32():
    before = KERAS + (
        'a = keras.Sequential([layers.Softmax(dtype = "mixed_float16")])\n'
        "b = keras.Sequential([layers.Dense(10, activation='softmax', dtype=tf.float16)])\n"
    )
    after = before.replace('"mixed_float16"', '"float32"').replace("tf.float16", "tf.float32")
    assert_fixed(
        "import tensorflow as tf\n" + before, "import tensorflow as tf\n" + after, "AMP101"
    )


def test_keras_layer_with_kwargs_is_not_touched():
    before = KERAS + "model = keras.Sequential([layers.Dense(10, activation='softmax', **kw)])\n"
    result = fix(before, "AMP101")
    assert result.fixed == before and "**kwargs" in result.reasons[result.remaining[0]]


def test_mxnet_output_casts_keep_spacing_and_parentheses():
    before = (
        "import mxnet as mx\n"
        "from mxnet import gluon\n"
        "net.cast('float16')\n"
        "loss_fn = gluon.loss.L2Loss()\n"
        "out = net(x)\n"
        "metric = mx.metric.Accuracy()\n"
        "loss = loss_fn( out , y)  # l2\n"
        "metric.update([y], [out, (net(x))])\n"
        "loss.backward()\n"
    )
    after = before.replace("( out ,", "( out.astype('float32') ,").replace(
        "[out, (net(x))]", "[out.astype('float32'), (net(x)).astype('float32')]"
    )
    assert_fixed(before, after, "AMP101")


RECORD = """\
from mxnet import autograd
from mxnet.contrib import amp
def train_step(net, x, y, trainer):
    with autograd.record():
        loss = loss_fn(net(x), y)
"""


def test_amp302_scale_loss_block_moves_into_record_with_its_comments():
    before = RECORD + (
        "    # scale, then backward\n"
        "    with amp.scale_loss(loss, trainer) as scaled:  # scaled\n"
        "        autograd.backward(scaled)\n"
        "    trainer.step(x.shape[0])\n"
    )
    after = RECORD + (
        "        # scale, then backward\n"
        "        with amp.scale_loss(loss, trainer) as scaled:  # scaled\n"
        "            autograd.backward(scaled)\n"
        "    trainer.step(x.shape[0])\n"
    )
    assert_fixed(before, after, "AMP302")


def test_amp302_not_directly_after_record_stays():
    before = RECORD + (
        "    log(loss)\n"
        "    with amp.scale_loss(loss, trainer) as scaled:\n"
        "        autograd.backward(scaled)\n"
    )
    result = fix(before, "AMP302")
    assert result.fixed == before and "directly follow" in result.reasons[result.remaining[0]]


def test_amp305_mxnet_unscale_after_the_comment_above_the_clip():
    before = (
        "from mxnet import autograd, gluon\n"
        "import gluon_amp as gamp\n"
        "def step(net, trainer, x, y):\n"
        "    with autograd.record():\n"
        "        loss = loss_fn(net(x), y)\n"
        "        with gamp.scale_loss(loss, trainer) as scaled:\n"
        "            autograd.backward(scaled)\n"
        "\n"
        "    # clip\n"
        "    gluon.utils.clip_global_norm(grads, 1.0)\n"
        "    trainer.step(1)\n"
    )
    after = before.replace("# clip\n", "# clip\n    gamp.unscale(trainer)\n")
    assert_fixed(before, after, "AMP305")


def test_amp305_torch_needs_the_stepped_optimizer():
    before = (
        "import torch\n"
        "with torch.autocast('cuda'):\n"
        "    loss = criterion(model(x), y)\n"
        "grad_scaler.scale(loss).backward()\n"
        "norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n"
        "grad_scaler.step(opt)\n"
        "grad_scaler.update()\n"
    )
    after = before.replace("norm =", "grad_scaler.unscale_(opt)\nnorm =")
    assert_fixed(before, after, "AMP305")
    unknown = before.replace("grad_scaler.step(opt)\n", "")
    result = fix(unknown, "AMP305")
    assert result.fixed == unknown and "optimizer" in result.reasons[result.remaining[0]]


def test_keras_dtype_after_a_commented_last_argument_without_trailing_comma():
    before = KERAS + (
        "model = keras.Sequential([layers.Dense(10,\n"
        "                                       activation='softmax'  # probs\n"
        "                                       )])\n"
    )
    after = KERAS + (
        "model = keras.Sequential([layers.Dense(10,\n"
        "                                       activation='softmax',  # probs\n"
        "                                       dtype='float32'\n"
        "                                       )])\n"
    )
    assert_fixed(before, after, "AMP101")


TORCH_HELPERS = (
    "import torch\n"
    "class Trainer:\n"
    "    def __init__(self):\n"
    "        self.scaler = torch.cuda.amp.GradScaler()\n"
    "    def backward(self, loss):\n"
    "        self.scaler.scale(loss).backward()\n"
    "    def clip(self):\n"
    "        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)\n"
    "    def step(self, x, y):\n"
    "        with torch.autocast('cuda'):\n"
    "            loss = self.criterion(self.model(x), y)\n"
    "        self.backward(loss)\n"
    "        self.clip( )  # clip in a helper\n"
    "        self.scaler.step(self.optimizer)\n"
)


def test_amp305_torch_helper_call_gets_the_unscale_before_it():
    after = TORCH_HELPERS.replace(
        "        self.clip( )", "        self.scaler.unscale_(self.optimizer)\n        self.clip( )"
    )
    assert_fixed(TORCH_HELPERS, after, "AMP305")


def test_amp305_two_clippings_are_unscaled_once():
    before = TORCH_HELPERS.replace(
        "        self.clip( )",
        "        torch.nn.utils.clip_grad_value_(self.model.parameters(), 0.5)\n"
        "        self.clip( )",
    )
    after = before.replace(
        "        torch.nn.utils.clip_grad_value_",
        "        self.scaler.unscale_(self.optimizer)\n        torch.nn.utils.clip_grad_value_",
    )
    assert fix(before, "AMP305").applied == 1
    assert_fixed(before, after, "AMP305")


def test_amp305_torch_helper_with_unknown_optimizer_gives_a_pytorch_reason():
    before = TORCH_HELPERS.replace("self.scaler.step(self.optimizer)", "self.scaler.update()")
    result = fix(before, "AMP305")
    assert result.fixed == before
    assert result.reasons[result.remaining[0]] == "cannot tell which optimizer self.scaler steps"


def test_amp305_scaler_local_to_a_helper_is_not_guessed():
    before = (
        "import torch\n"
        "def backward(loss, scaler):\n"
        "    scaler.scale(loss).backward()\n"
        "def step(model, grad_scaler, opt, x):\n"
        "    with torch.autocast('cuda'):\n"
        "        loss = model(x)\n"
        "    backward(loss, grad_scaler)\n"
        "    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n"
        "    grad_scaler.step(opt)\n"
    )
    result = fix(before, "AMP305")
    assert result.fixed == before
    assert (
        result.reasons[result.remaining[0]] == "scaler is local to the helper that scales the loss"
    )
