"""Tiny real Gluon networks and data for the gluon_amp tests (legacy and numpy front ends)."""

import functools

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon
from mxnet.gluon import nn, rnn

import gluon_amp as amp

BATCH = 16
CLASSES = 3


def build(kind: str, hybridize: bool) -> nn.HybridSequential:
    """A small classifier: 'mlp' (Dense+BatchNorm), 'conv' (Conv2D+BatchNorm), 'lstm', 'gru'."""
    net = nn.HybridSequential()
    if kind == "mlp":
        net.add(nn.Dense(16, activation="relu"), nn.BatchNorm(), nn.Dense(CLASSES))
    elif kind == "conv":
        net.add(nn.Conv2D(4, 3, activation="relu"), nn.BatchNorm(), nn.Flatten())
        net.add(nn.Dense(CLASSES))
    elif kind in ("lstm", "gru"):
        layer = rnn.LSTM if kind == "lstm" else rnn.GRU
        net.add(layer(8, layout="NTC"), nn.Dense(CLASSES))
    else:
        raise ValueError(kind)
    net.initialize(mx.init.Xavier())
    if hybridize:
        net.hybridize()
    return net


def batch(kind: str, seed: int = 0):
    """Inputs for ``kind`` and labels a fixed linear teacher assigns (learnable in a few steps)."""
    shape = {"mlp": (BATCH, 8), "conv": (BATCH, 2, 6, 6)}.get(kind, (BATCH, 4, 3))
    mx.random.seed(seed)
    x = mx.nd.random.uniform(-1, 1, shape=shape)
    teacher = mx.nd.arange(x[0].size).reshape((1, -1)) % CLASSES - 1.0
    y = mx.nd.argmax(
        mx.nd.dot(
            x.reshape((BATCH, -1)),
            teacher.reshape((-1, 1)).tile((1, 3)) * mx.nd.array([[1.0, -1.0, 0.3]]),
        ),
        axis=1,
    )
    if mx.util.is_np_array():
        return x.as_np_ndarray(), y.as_np_ndarray()
    return x, y


def train_step(net, trainer, x, y, loss_fn=None):
    """One forward/backward/step through gluon_amp; returns the mean loss."""
    loss_fn = loss_fn or gluon.loss.SoftmaxCrossEntropyLoss()
    with autograd.record():
        loss = loss_fn(net(x), y)
    with amp.scale_loss(loss, trainer) as scaled:
        scaled.backward()
    trainer.step(x.shape[0])
    return float(loss.mean().item() if hasattr(loss, "item") else loss.mean().asscalar())


@functools.lru_cache(maxsize=1)
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits (nothing downloaded): x_train, y_train, x_test, y_test,
    the images as (N, 1, 8, 8) float32 in [0, 1], the last 360 images held out."""
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    images = (images / 16.0).reshape(-1, 1, 8, 8).astype(np.float32)
    labels = labels.astype(np.float32)
    return images[:-360], labels[:-360], images[-360:], labels[-360:]


def digits_cnn() -> nn.HybridSequential:
    """A small CNN for the digits; its per-sample losses overflow float16 at a 2**16 scale."""
    net = nn.HybridSequential()
    net.add(
        nn.Conv2D(16, 3, padding=1),
        nn.BatchNorm(),
        nn.Activation("relu"),
        nn.Conv2D(32, 3, padding=1, activation="relu"),
        nn.MaxPool2D(2),
        nn.Dense(64, activation="relu"),
        nn.Dense(10),
    )
    return net
