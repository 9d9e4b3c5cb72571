"""Keras (standalone and ``tf.keras``) mixed precision."""

from __future__ import annotations

from amplint.frameworks import Dim, layer_table

PREFIXES = ("keras.layers", "tensorflow.keras.layers", "tf_keras.layers")

_UNITS = (Dim(0, "units"),)
_FILTERS = (Dim(0, "filters"),)

LAYERS = layer_table(
    "keras",
    PREFIXES,
    {
        "Dense": _UNITS,
        **{f"Conv{d}D": _FILTERS for d in (1, 2, 3)},
        **{f"Conv{d}DTranspose": _FILTERS for d in (1, 2, 3)},
        "SeparableConv1D": _FILTERS,
        "SeparableConv2D": _FILTERS,
        **{name: _UNITS for name in ("LSTM", "GRU", "SimpleRNN", "LSTMCell", "GRUCell")},
        "Embedding": (Dim(0, "input_dim"), Dim(1, "output_dim")),
    },
)

MODELS = ("keras.Model", "keras.models.Model", "tensorflow.keras.Model", "tf_keras.Model")
MODELS += ("tensorflow.keras.models.Model",)
SEQUENTIAL = tuple(m.replace("Model", "Sequential") for m in MODELS)
SOFTMAX_LAYERS = tuple(f"{p}.{n}" for p in PREFIXES for n in ("Dense", "Activation", "Softmax"))

# Keras applications: their class count sizes the output layer (keyword only).
# Keras applications load ImageNet weights by default: their 1000 classes are fixed then.
PRETRAINED = tuple(
    (f"{p}.", "weights", "imagenet")
    for p in ("keras.applications", "tensorflow.keras.applications")
)

MODEL_FACTORIES = tuple(
    (f"{p}.", "classes") for p in ("keras.applications", "tensorflow.keras.applications")
) + tuple(  # Keras-CV / Keras-Hub classifiers: ImageClassifier(backbone, num_classes=N)
    (f"{p}.", "num_classes") for p in ("keras_cv.models", "keras_hub.models", "keras_nlp.models")
)
