"""MXNet Gluon and ``mxnet.contrib.amp`` / ``gluon_amp``."""

from __future__ import annotations

from amplint.frameworks import Dim, layer_table

_DENSE = (Dim(0, "units"), Dim(7, "in_units"))
_CONV = (Dim(0, "channels"), Dim(None, "in_channels", image_input=True))
_RNN = (Dim(0, "hidden_size"),)

LAYERS = layer_table(
    "mxnet",
    ("mxnet.gluon.nn", "mxnet.gluon.rnn", "mxnet.gluon.contrib.nn"),
    {
        "Dense": _DENSE,
        **{f"Conv{d}D": _CONV for d in (1, 2, 3)},
        **{f"Conv{d}DTranspose": _CONV for d in (1, 2, 3)},
        **{name: _RNN for name in ("LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell")},
        "Embedding": (Dim(0, "input_dim"), Dim(1, "output_dim")),
    },
)

AMP_MODULES = ("mxnet.contrib.amp", "mxnet.contrib.amp.amp", "mxnet.amp", "gluon_amp")
CONTRIB_AMP = ("mxnet.contrib.amp", "mxnet.contrib.amp.amp")


def amp_function(qualname: str | None, name: str, modules: tuple[str, ...] = AMP_MODULES) -> bool:
    """Whether ``qualname`` is ``<one of modules>.<name>`` (``name`` has no dot)."""
    if qualname is None:
        return False
    module, _, last = qualname.rpartition(".")
    return last == name and module in modules


RECORD = ("mxnet.autograd.record",)
DATALOADER = ("mxnet.gluon.data.DataLoader", "mxnet.gluon.data.dataloader.DataLoader")
TRAINER = ("mxnet.gluon.Trainer", "mxnet.gluon.trainer.Trainer")
CLIP = ("mxnet.gluon.utils.clip_global_norm", "gluonnlp.utils.clip_grad_global_norm")
LOSS_PREFIX = ("mxnet.gluon.loss.",)
METRIC_PREFIX = ("mxnet.metric.", "mxnet.gluon.metric.")
SOFTMAX = ("mxnet.nd.softmax", "mxnet.nd.log_softmax", "mxnet.ndarray.softmax")
SOFTMAX += ("mxnet.ndarray.log_softmax", "mxnet.np.softmax", "mxnet.npx.softmax")
SOFTMAX += ("mxnet.npx.log_softmax",)

# Model zoo constructors: their class count sizes the output layer (keyword only).
# Factories whose weights, when loaded pretrained, fix the class count: (prefix, keyword,
# default).
PRETRAINED = (
    ("mxnet.gluon.model_zoo.vision.", "pretrained", False),
    ("gluoncv.model_zoo.", "pretrained", False),
)

MODEL_FACTORIES = (
    ("mxnet.gluon.model_zoo.vision.", "classes"),
    ("gluoncv.model_zoo.", "classes"),  # get_model(name, classes=N) and the model functions
)
