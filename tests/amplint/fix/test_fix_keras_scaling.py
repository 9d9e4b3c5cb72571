"""AMP301 in Keras custom loops: LossScaleOptimizer around the optimizer, the loss scaled in the
tape, the TF-Keras 2 or the Keras 3 API by the optimizer's module; refused with a reason when the
optimizer or the tape cannot be identified."""

from __future__ import annotations

from fixcase import assert_fixed, fix

TF_KERAS = """\
import tensorflow as tf
from tensorflow import keras
keras.mixed_precision.set_global_policy('mixed_float16')
optimizer = keras.optimizers.Adam( learning_rate=1e-3 )  # the optimizer
for x, y in dataset:
    with tf.GradientTape() as tape:
        # forward
        loss = loss_fn(y, model(x))   # loss
    grads = tape.gradient(loss,
                          model.trainable_variables)  # grads
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
"""


def test_tf_keras_2_scaled_loss_and_unscaled_gradients():
    after = (
        TF_KERAS.replace(
            "optimizer = keras.optimizers.Adam( learning_rate=1e-3 )",
            "optimizer = keras.mixed_precision.LossScaleOptimizer(keras.optimizers.Adam( "
            "learning_rate=1e-3 ))",
        )
        .replace(
            "# loss\n    grads = tape.gradient(loss,\n",
            "# loss\n"
            "        scaled_loss = optimizer.get_scaled_loss(loss)\n"
            "    grads = optimizer.get_unscaled_gradients(tape.gradient(scaled_loss,\n",
        )
        .replace("model.trainable_variables)  # grads", "model.trainable_variables))  # grads")
    )
    assert_fixed(TF_KERAS, after, "AMP301")


def test_keras_3_scale_loss_and_apply_unscales():
    before = (
        "import keras\n"
        "import tensorflow as tf\n"
        "keras.config.set_dtype_policy('mixed_float16')\n"
        "opt = keras.optimizers.SGD(0.1)\n"
        "def train_step(x, y, scaled_loss):\n"
        "    with tf.GradientTape() as tape:\n"
        "        loss = loss_fn(y, model(x))\n"
        "    grads = tape.gradient(loss, model.trainable_variables)\n"
        "    opt.apply_gradients(zip(grads, model.trainable_variables))\n"
    )
    after = (
        before.replace(
            "keras.optimizers.SGD(0.1)",
            "keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1))",
        )
        .replace("model(x))\n", "model(x))\n        scaled_loss_2 = opt.scale_loss(loss)\n")
        .replace("tape.gradient(loss,", "tape.gradient(scaled_loss_2,")
    )
    assert_fixed(before, after, "AMP301")


def test_unknown_optimizer_or_optimizer_imported_by_name_is_refused():
    no_apply = TF_KERAS.replace(  # two optimizers apply these gradients
        "    optimizer.apply_gradients(zip(grads, model.trainable_variables))\n",
        "    optimizer.apply_gradients(zip(grads, model.trainable_variables))\n"
        "    other.apply_gradients(zip(grads, model.trainable_variables))\n",
    )
    result = fix(no_apply, "AMP301")
    assert result.fixed == no_apply
    assert result.reasons[result.remaining[0]] == (
        "Keras: cannot tell which optimizer applies these gradients"
    )
    by_name = TF_KERAS.replace(
        "from tensorflow import keras\n",
        "from tensorflow import keras\nfrom tensorflow.keras.optimizers import Adam\n",
    ).replace("keras.optimizers.Adam(", "Adam(")
    result = fix(by_name, "AMP301")
    assert result.fixed == by_name
    assert "imported by name" in result.reasons[result.remaining[0]]


def test_tape_not_opened_by_its_own_with_is_refused():
    before = TF_KERAS.replace(
        "    with tf.GradientTape() as tape:", "    tape = tf.GradientTape()\n    with tape:"
    )
    result = fix(before, "AMP301")
    assert result.fixed == before
    assert (
        result.reasons[result.remaining[0]] == "Keras: cannot find the GradientTape block of tape"
    )


def test_gradient_inside_the_tape_block_is_refused():
    before = TF_KERAS.replace(
        "    grads = tape.gradient(loss,\n", "        grads = tape.gradient(loss,\n"
    )
    result = fix(before, "AMP301")
    assert result.fixed == before
    assert result.reasons[result.remaining[0]] == (
        "Keras: tape.gradient is called inside the tape's block"
    )
