"""Numpy-front-end operators (``mx.npx.*``, used by Gluon under ``npx.set_np()``) and their twins.

MXNet's AMP lists name legacy operators only (``FullyConnected``), while numpy-mode Gluon calls
``F.npx.fully_connected`` (operator ``_npx_fully_connected``). This table is the project's own:
an ``npx`` function is autocast like its legacy twin is listed. Functions absent from the table
(every ``mx.np`` function and ``_npi_*`` operator) are never cast: many have no bfloat16 kernel.
"""

from __future__ import annotations

__all__ = ["NPX_TWINS", "NP_NO_CPU_FLOAT16", "npx_functions_for"]

#: ``mx.npx`` function name -> legacy operator name in MXNet's AMP lists.
NPX_TWINS: dict[str, str] = {
    "activation": "Activation",
    "batch_dot": "batch_dot",
    "batch_flatten": "Flatten",
    "batch_norm": "BatchNorm",
    "convolution": "Convolution",
    "deconvolution": "Deconvolution",
    "dropout": "Dropout",
    "embedding": "Embedding",
    "fully_connected": "FullyConnected",
    "layer_norm": "LayerNorm",
    "leaky_relu": "LeakyReLU",
    "log_softmax": "log_softmax",
    "pick": "pick",
    "pooling": "Pooling",
    "relu": "relu",
    "rnn": "RNN",
    "roi_pooling": "ROIPooling",
    "sequence_mask": "SequenceMask",
    "sigmoid": "sigmoid",
    "softmax": "softmax",
}


#: ``mx.np`` functions with no CPU float16 kernel (measured on MXNet 1.9.1): the GEMMs, and
#: ``sort``. In no AMP list, so never autocast; with float16 emulation on (``emulate.py``), float16
#: inputs on a CPU compute in float32.
NP_NO_CPU_FLOAT16: tuple[str, ...] = (
    "dot",
    "matmul",
    "tensordot",
    "inner",
    "outer",
    "vdot",
    "sort",
)


def npx_functions_for(legacy_ops: list[str]) -> dict[str, str]:
    """The ``npx`` functions whose legacy twin is in ``legacy_ops`` (name -> twin)."""
    wanted = set(legacy_ops)
    return {name: twin for name, twin in NPX_TWINS.items() if twin in wanted}
