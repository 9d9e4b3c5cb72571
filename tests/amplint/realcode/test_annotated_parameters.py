# ruff: noqa: E501  (a finding is marked on the line it is reported at)
"""A parameter annotated with a project class (``dataset_builder: dataset_factory.DatasetBuilder``):
reading a property of it is what that class's property returns, over the object's own
configuration, also when what the callers pass cannot be followed."""

from __future__ import annotations

import re

from realcase import check_project

PERFORMANCE = """
                import tensorflow as tf, tf_keras


                def set_mixed_precision_policy(dtype):
                  # Sets the global `tf_keras.mixed_precision.Policy`.
                  if dtype == tf.float16:
                    tf_keras.mixed_precision.set_global_policy('mixed_float16')
                  elif dtype == tf.bfloat16:
                    tf_keras.mixed_precision.set_global_policy('mixed_bfloat16')
                  elif dtype == tf.float32:
                    tf_keras.mixed_precision.set_global_policy('float32')
                  else:
                    raise ValueError('Unexpected dtype: %s' % dtype)
"""
FACTORY = """
                import dataclasses

                import tensorflow as tf


                @dataclasses.dataclass
                class DatasetConfig:
                  split: str = 'train'
                  dtype: str = 'float32'


                class DatasetBuilder:
                  def __init__(self, config: DatasetConfig, **overrides):
                    self.config = config.replace(**overrides)

                  @property
                  def dtype(self) -> tf.dtypes.DType:
                    dtype_map = {
                        'float32': tf.float32,
                        'bfloat16': tf.bfloat16,
                        'float16': tf.float16,
                    }
                    try:
                      return dtype_map[self.config.dtype]
                    except:
                      raise ValueError('Invalid DType provided.')
"""
MODEL = """
                import tensorflow as tf, tf_keras

                layers = tf_keras.layers


                def resnet50(num_classes=1001):
                  img_input = layers.Input(shape=(224, 224, 3))
                  x = layers.GlobalAveragePooling2D()(img_input)
                  x = layers.Dense(num_classes, name='fc1000')(x)  # AMP201 (classification/classifier_trainer.py: self.config.dtype=bfloat16; classification/classifier_trainer.py: self.config.dtype=float16)
                  x = layers.Activation('softmax', dtype='float32')(x)
                  return tf_keras.Model(img_input, x, name='resnet50')
"""
TRAINER = """
                import tensorflow as tf, tf_keras

                from offx.classification import dataset_factory
                from offx.classification import resnet_model
                from offx.modeling import performance


                def _get_dataset_builders(params):
                  builders = []
                  for config in [params.train_dataset, params.validation_dataset]:
                    if config is not None and config.has_data:
                      builder = dataset_factory.DatasetBuilder(config, one_hot=params.one_hot)
                    else:
                      builder = None
                    builders.append(builder)
                  return builders


                def initialize(params, dataset_builder: dataset_factory.DatasetBuilder):
                  # Initializes backend related initializations.
                  performance.set_mixed_precision_policy(dataset_builder.dtype)


                def train_and_eval(params):
                  builders = _get_dataset_builders(params)
                  datasets = [builder.build() if builder else None for builder in builders]
                  train_builder, validation_builder = builders
                  train_dataset, validation_dataset = datasets
                  initialize(params, train_builder)
                  model = resnet_model.resnet50(num_classes=params.model.num_classes)
                  model.compile(optimizer='sgd', loss='sparse_categorical_crossentropy')
                  model.fit(train_builder.build(), epochs=params.train.epochs)
"""


def project(factory: str, model: str) -> dict[str, str]:
    return {
        "offx/__init__.py": "",
        "offx/modeling/__init__.py": "",
        "offx/classification/__init__.py": "",
        "offx/modeling/performance.py": PERFORMANCE,
        "offx/classification/dataset_factory.py": factory,
        "offx/classification/resnet_model.py": model,
        "offx/classification/classifier_trainer.py": TRAINER,
    }


def test_a_property_of_an_annotated_parameter_sets_the_policy(tmp_path):
    """tf-models-official 2.20.0 (PyPI), official/legacy/image_classification/
    classifier_trainer.py (``initialize(params, dataset_builder: dataset_factory.
    DatasetBuilder)`` runs ``performance.set_mixed_precision_policy(dataset_builder.dtype)``;
    the builders come from a list filled in a loop, l.101-129), dataset_factory.py (the
    ``dtype`` property mapping ``self.config.dtype``, l.209-231), official/modeling/
    performance.py and resnet/resnet_model.py (the 1001-class head), shortened: the model
    the trainer builds runs under the policy the config's dtype picks."""
    check_project(tmp_path, project(FACTORY, MODEL))


def test_a_property_whose_value_cannot_be_told_sets_nothing(tmp_path):
    """The same project with a ``dtype`` property returning ``tf.as_dtype(self.config.dtype)``
    (not a mapping the folding can read): which policy it sets is not known, so nothing is
    reported."""
    factory = FACTORY.replace(
        "return dtype_map[self.config.dtype]", "return tf.as_dtype(self.config.dtype)"
    )
    assert factory != FACTORY
    check_project(tmp_path, project(factory, re.sub(r"  # AMP201.*", "", MODEL)))
