# ruff: noqa: E501  (a finding is marked on the line it is reported at)
"""A process-wide switch a project helper runs from its parameter (``performance.
set_mixed_precision_policy(dtype)``), with the dtype an option mapped by a helper of another
module (``flags_core.get_tf_dtype(flags_obj)`` reading ``DTYPE_MAP[flags_obj.dtype]``): the
Keras policy covers the script and every module it imports."""

from __future__ import annotations

from realcase import check_project

PACKAGES = {
    "tfm/__init__.py": "",
    "tfm/modeling/__init__.py": "",
    "tfm/utils/__init__.py": "",
    "tfm/utils/flags/__init__.py": "",
    "tfm/resnet/__init__.py": "",
}
# official/modeling/performance.py (tf-models-official 2.20.0), shortened
PERFORMANCE = """
import tensorflow as tf, tf_keras

def configure_optimizer(optimizer, use_float16=False, loss_scale=None):
    if use_float16:
        optimizer = tf_keras.mixed_precision.LossScaleOptimizer(optimizer)
    return optimizer

def set_mixed_precision_policy(dtype, loss_scale=None):
    assert loss_scale is None
    if dtype == tf.float16:
        tf_keras.mixed_precision.set_global_policy('mixed_float16')
    elif dtype == tf.bfloat16:
        tf_keras.mixed_precision.set_global_policy('mixed_bfloat16')
    elif dtype == tf.float32:
        tf_keras.mixed_precision.set_global_policy('float32')
    else:
        raise ValueError('Unexpected dtype: %s' % dtype)
"""
# official/utils/flags/_performance.py and core.py (tf-models-official 2.20.0), shortened: the
# flag is defined by a helper, its values mapped to dtypes by a table; ``core`` re-exports the
# helpers by assignment
FLAGS_PERFORMANCE = """
import tensorflow as tf
from absl import flags

DTYPE_MAP = {"fp16": tf.float16, "bf16": tf.bfloat16, "fp32": tf.float32}

def get_tf_dtype(flags_obj):
    if getattr(flags_obj, "fp16_implementation", None) == "graph_rewrite":
        return tf.float32
    return DTYPE_MAP[flags_obj.dtype]

def get_loss_scale(flags_obj, default_for_fp16):
    dtype = get_tf_dtype(flags_obj)
    if dtype == tf.float32 or dtype == tf.bfloat16:
        return 1
    return default_for_fp16

def define_performance(dtype=False):
    if dtype:
        flags.DEFINE_enum(name="dtype", short_name="dt", default="fp32",
                          enum_values=DTYPE_MAP.keys(), help="The TensorFlow datatype.")
"""
FLAGS_CORE = """
from tfm.utils.flags import _performance

define_performance = _performance.define_performance
get_tf_dtype = _performance.get_tf_dtype
get_loss_scale = _performance.get_loss_scale
"""


# the package and the helpers tf-models' scripts switch the policy and map --dtype through
HELPERS = {
    **PACKAGES,
    "tfm/modeling/performance.py": PERFORMANCE,
    "tfm/utils/flags/_performance.py": FLAGS_PERFORMANCE,
    "tfm/utils/flags/core.py": FLAGS_CORE,
}


def test_a_helper_sets_the_policy_from_a_flag_another_helper_maps_to_a_dtype(tmp_path):
    """tf-models-official 2.20.0 (PyPI), official/legacy/image_classification/resnet/
    resnet_ctl_imagenet_main.py: ``performance.set_mixed_precision_policy(flags_core.
    get_tf_dtype(flags_obj))`` with ``run(flags.FLAGS)``; resnet_runnable.py builds
    ``resnet_model.resnet50(num_classes=imagenet_preprocessing.NUM_CLASSES)`` (1001, a constant
    of another module) and resnet_model.py (``layers = tf_keras.layers``) ends in
    ``layers.Dense(num_classes)`` then a float32 softmax (simplified). The policy is on with
    ``--dtype fp16`` or ``bf16``, in the modules the script imports."""
    check_project(
        tmp_path,
        {
            **HELPERS,
            "tfm/resnet/imagenet_preprocessing.py": """
                NUM_CLASSES = 1001
                DEFAULT_IMAGE_SIZE = 224
                """,
            "tfm/resnet/resnet_model.py": """
                import tensorflow as tf, tf_keras
                layers = tf_keras.layers

                def resnet50(num_classes, batch_size=None):
                    img_input = layers.Input(shape=(224, 224, 3), batch_size=batch_size)
                    x = layers.Conv2D(64, (7, 7), strides=(2, 2), name='conv1')(img_input)
                    x = layers.GlobalAveragePooling2D()(x)
                    x = layers.Dense(num_classes, name='fc1000')(x)  # AMP201 (resnet/resnet_ctl_imagenet_main.py: --dtype bf16; resnet/resnet_ctl_imagenet_main.py: --dtype fp16)
                    x = layers.Activation('softmax', dtype='float32')(x)
                    return tf_keras.Model(img_input, x, name='resnet50')
                """,
            "tfm/resnet/resnet_runnable.py": """
                import tensorflow as tf, tf_keras
                from tfm.resnet import imagenet_preprocessing, resnet_model
                from tfm.modeling import performance
                from tfm.utils.flags import core as flags_core

                class ResnetRunnable:
                    def __init__(self, flags_obj):
                        self.dtype = flags_core.get_tf_dtype(flags_obj)
                        self.model = resnet_model.resnet50(
                            num_classes=imagenet_preprocessing.NUM_CLASSES)
                        self.optimizer = performance.configure_optimizer(
                            tf_keras.optimizers.SGD(0.1),
                            use_float16=self.dtype == tf.float16,
                            loss_scale=flags_core.get_loss_scale(flags_obj, default_for_fp16=128))
                """,
            "tfm/resnet/resnet_ctl_imagenet_main.py": """
                from absl import app, flags
                from tfm.modeling import performance
                from tfm.resnet import resnet_runnable
                from tfm.utils.flags import core as flags_core

                def run(flags_obj):
                    performance.set_mixed_precision_policy(flags_core.get_tf_dtype(flags_obj))
                    runnable = resnet_runnable.ResnetRunnable(flags_obj)
                    return runnable

                def main(_):
                    run(flags.FLAGS)

                if __name__ == '__main__':
                    flags_core.define_performance(dtype=True)
                    app.run(main)
                """,
        },
    )


def test_a_helper_given_float32_or_a_value_not_known_switches_nothing(tmp_path):
    """The same helpers (tf-models-official 2.20.0, official/modeling/performance.py), run by
    an export script with ``tf.float32`` and by one whose dtype comes from a call amplint
    cannot follow: neither turns the policy on in the model module they import."""
    check_project(
        tmp_path,
        {
            **PACKAGES,
            "tfm/modeling/performance.py": PERFORMANCE,
            "tfm/resnet/resnet_model.py": """
                import tf_keras
                layers = tf_keras.layers

                def resnet50(num_classes=1001):
                    img_input = layers.Input(shape=(224, 224, 3))
                    x = layers.GlobalAveragePooling2D()(img_input)
                    x = layers.Dense(num_classes, name='fc1000')(x)
                    return tf_keras.Model(img_input, layers.Activation('softmax')(x))
                """,
            "tfm/resnet/export_saved_model.py": """
                import tensorflow as tf
                from tfm.modeling import performance
                from tfm.resnet import resnet_model

                def export(path):
                    performance.set_mixed_precision_policy(tf.float32)
                    resnet_model.resnet50().save(path)
                """,
            "tfm/resnet/serve.py": """
                from tfm.modeling import performance
                from tfm.resnet import resnet_model
                import serving_config

                def serve(path):
                    performance.set_mixed_precision_policy(serving_config.dtype_of(path))
                    return resnet_model.resnet50()
                """,
        },
    )


TRANSFORMER_MAIN = """
import tensorflow as tf, tf_keras
from absl import app, flags
from tfm.modeling import performance
from tfm.utils.flags import core as flags_core

class TransformerTask(object):
    def __init__(self, flags_obj):
        self.flags_obj = flags_obj
        self.params = params = {"use_ctl": flags_obj.use_ctl}
        params["dtype"] = flags_core.get_tf_dtype(flags_obj)
        performance.set_mixed_precision_policy(params["dtype"])

    def train(self):
        params = self.params
        model = tf_keras.Sequential([tf_keras.layers.Dense(512)])
        opt = self._create_optimizer()
        train_loss_metric = tf_keras.metrics.Mean("training_loss", dtype=tf.float32)

        @tf.function
        def train_steps(iterator, steps):
            def _step_fn(inputs):
                inputs, targets = inputs
                with tf.GradientTape() as tape:
                    logits = model(inputs, training=True)
                    loss = tf.reduce_mean(tf.square(logits - targets))
                    scaled_loss = loss / 8
                tvars = model.trainable_variables
                grads = tape.gradient(scaled_loss, tvars){mark}
                opt.apply_gradients(zip(grads, tvars))
                train_loss_metric.update_state(loss)
            for _ in tf.range(steps):
                _step_fn(next(iterator))

        uncased_score = self.eval()
        return train_steps, uncased_score

    def eval(self):
        return 0.0

    def _create_optimizer(self):
        opt = tf_keras.optimizers.Adam(0.001)
        {scaling}
        return opt

def main(_):
    flags_obj = flags.FLAGS
    task = TransformerTask(flags_obj)
    task.train()

if __name__ == "__main__":
    flags_core.define_performance(dtype=True)
    app.run(main)
"""


def test_a_dtype_stored_in_a_params_dict_switches_the_custom_loop_it_trains(tmp_path):
    """tf-models-official 2.20.0 (PyPI), official/legacy/transformer/transformer_main.py:
    ``params["dtype"] = flags_core.get_tf_dtype(flags_obj)`` then
    ``performance.set_mixed_precision_policy(params["dtype"])`` in ``__init__``; ``train``'s
    custom step takes ``tape.gradient(scaled_loss, tvars)`` of a loss only divided by the
    replicas (simplified: the LossScaleOptimizer ``configure_optimizer`` adds is left out here;
    the class's own ``self.eval()`` puts no model in evaluation mode)."""
    mark = "  # AMP301 (--dtype fp16)"
    check_project(
        tmp_path,
        {
            **HELPERS,
            "tfm/transformer_main.py": TRANSFORMER_MAIN.replace("{mark}", mark).replace(
                "{scaling}", "pass"
            ),
        },
    )


def test_a_dtype_stored_in_a_params_dict_with_a_loss_scale_optimizer_is_scaled(tmp_path):
    """The same custom loop (tf-models-official 2.20.0, official/legacy/transformer/
    transformer_main.py, simplified) with the optimizer wrapped in a ``LossScaleOptimizer``
    in this module: loss scaling is in play, and bfloat16 needs none."""
    scaling = "opt = tf_keras.mixed_precision.LossScaleOptimizer(opt)"
    check_project(
        tmp_path,
        {
            **HELPERS,
            "tfm/transformer_main.py": TRANSFORMER_MAIN.replace("{mark}", "").replace(
                "{scaling}", scaling
            ),
        },
    )


def test_a_helpers_own_switch_over_its_parameter_reaches_its_imports_only_through_its_calls(
    tmp_path,
):
    """tf-models-official 2.20.0 (PyPI), official/modeling/performance.py's
    ``set_mixed_precision_policy(dtype)``, here in a helper module that also builds the model
    (an import of the model module added): its policy depends on what its callers pass. An
    export script passing ``tf.float32`` leaves the model float32; a training script passing
    ``tf.float16`` turns it on (before, the helper's own switch spread under an opaque
    ``dtype=float16`` whatever its callers passed)."""
    helper = (
        PERFORMANCE
        + """
from tfm.resnet import resnet_model

def build_model():
    return resnet_model.resnet50()
"""
    )
    model = """
        import tf_keras
        from tf_keras import layers

        def resnet50(num_classes=1001):
            img_input = layers.Input(shape=(224, 224, 3))
            x = layers.GlobalAveragePooling2D()(img_input)
            x = layers.Dense(num_classes, name='fc1000')(x){mark}
            return tf_keras.Model(img_input, layers.Activation('softmax', dtype='float32')(x))
        """
    export = """
        import tensorflow as tf
        from tfm.modeling import performance

        def export(path):
            performance.set_mixed_precision_policy(tf.{dtype})
            performance.build_model().save(path)
        """
    files = {**PACKAGES, "tfm/modeling/performance.py": helper}
    only_float32 = {
        "tfm/resnet/resnet_model.py": model.replace("{mark}", ""),
        "tfm/resnet/export_saved_model.py": export.replace("{dtype}", "float32"),
    }
    check_project(tmp_path / "export", {**files, **only_float32})
    mark = "  # AMP201"
    with_float16 = {
        "tfm/resnet/resnet_model.py": model.replace("{mark}", mark),
        "tfm/resnet/train.py": export.replace("{dtype}", "float16"),
    }
    check_project(tmp_path / "train", {**files, **with_float16})


def test_a_value_stored_on_one_branch_or_a_constant_changed_elsewhere_is_not_known(tmp_path):
    """The helpers of tf-models-official 2.20.0 (official/modeling/performance.py,
    official/utils/flags/_performance.py, simplified) with what amplint cannot be sure of:
    ``params["dtype"]`` stored only when a flag is set (transformer_main.py's pattern, on one
    branch here): the policy switch is not read; a class count of another module that a
    function may change (imagenet_preprocessing.py's ``NUM_CLASSES``, reassigned here) passed
    to resnet_model.py's ``resnet50``: the Dense width is not a known value. Never a
    finding."""
    check_project(
        tmp_path,
        {
            **HELPERS,
            "tfm/resnet/imagenet_preprocessing.py": """
                NUM_CLASSES = 1001

                def drop_background_class():
                    global NUM_CLASSES
                    NUM_CLASSES = 1000
                """,
            "tfm/resnet/resnet_model.py": """
                import tf_keras
                layers = tf_keras.layers

                def resnet50(num_classes):
                    img_input = layers.Input(shape=(224, 224, 3))
                    x = layers.GlobalAveragePooling2D()(img_input)
                    return layers.Dense(num_classes, name='fc1000')(x)
                """,
            "tfm/resnet/resnet_main.py": """
                from absl import app, flags
                from tfm.modeling import performance
                from tfm.resnet import imagenet_preprocessing, resnet_model
                from tfm.utils.flags import core as flags_core

                def run(flags_obj):
                    performance.set_mixed_precision_policy(flags_core.get_tf_dtype(flags_obj))
                    return resnet_model.resnet50(num_classes=imagenet_preprocessing.NUM_CLASSES)

                def main(_):
                    run(flags.FLAGS)

                if __name__ == '__main__':
                    app.run(main)
                """,
            "tfm/transformer_main.py": """
                import tf_keras
                from absl import app, flags
                from tfm.modeling import performance
                from tfm.utils.flags import core as flags_core

                def run(flags_obj):
                    params = {}
                    if flags_obj.use_policy:
                        params["dtype"] = flags_core.get_tf_dtype(flags_obj)
                    performance.set_mixed_precision_policy(params["dtype"])
                    return tf_keras.layers.Dense(33708)

                def main(_):
                    run(flags.FLAGS)

                if __name__ == '__main__':
                    app.run(main)
                """,
        },
    )
