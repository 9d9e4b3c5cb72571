"""Every layer Gluon offers (``nn``, ``rnn``, ``contrib.nn``) and the model zoo, built small.

The float16 coverage tests run them; ``NOT_LAYERS`` says why a Block class of those modules is
not built on its own, and a test checks that every class is in one table or the other.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import NamedTuple

import mxnet as mx
import numpy as np
from mxnet import gluon
from mxnet.gluon import nn, rnn
from mxnet.gluon.contrib import nn as contrib_nn
from mxnet.gluon.model_zoo import vision

#: The Gluon modules whose layers are covered.
MODULES = (nn, rnn, contrib_nn)


class Unrolled(gluon.HybridBlock):
    """A recurrent cell unrolled over a sequence (NTC), returning the merged outputs."""

    def __init__(self, cell: rnn.RecurrentCell, length: int = 3) -> None:
        super().__init__()
        self.cell = cell
        self.length = length

    def hybrid_forward(self, F, x):
        outputs, _ = self.cell.unroll(self.length, x, layout="NTC", merge_outputs=True)
        return outputs


def _concurrent() -> gluon.HybridBlock:
    block = contrib_nn.HybridConcurrent(axis=1)
    block.add(nn.Dense(4), contrib_nn.Identity())
    return block


def _sequential_cells() -> rnn.HybridSequentialRNNCell:
    cells = rnn.HybridSequentialRNNCell()
    cells.add(rnn.LSTMCell(8))
    cells.add(rnn.GRUCell(8))
    return cells


#: Layer name -> (a factory, the input shape). Recurrent cells are unrolled over 3 steps.
LAYERS: dict[str, tuple[Callable[[], gluon.Block], tuple[int, ...]]] = {
    "Dense": (lambda: nn.Dense(8), (4, 6)),
    "Dropout": (lambda: nn.Dropout(0.5), (4, 6)),
    "Embedding": (lambda: nn.Embedding(10, 8), (4, 3)),
    "BatchNorm": (lambda: nn.BatchNorm(), (4, 3, 5, 5)),
    "BatchNormReLU": (lambda: nn.BatchNormReLU(), (4, 3, 5, 5)),
    "InstanceNorm": (lambda: nn.InstanceNorm(), (4, 3, 5, 5)),
    "LayerNorm": (lambda: nn.LayerNorm(), (4, 6)),
    "GroupNorm": (lambda: nn.GroupNorm(num_groups=3), (4, 6, 5, 5)),
    "Flatten": (lambda: nn.Flatten(), (4, 3, 2)),
    "ReflectionPad2D": (lambda: nn.ReflectionPad2D(1), (2, 3, 5, 5)),
    "Activation": (lambda: nn.Activation("tanh"), (4, 6)),
    "LeakyReLU": (lambda: nn.LeakyReLU(0.1), (4, 6)),
    "PReLU": (lambda: nn.PReLU(), (4, 6)),
    "ELU": (lambda: nn.ELU(), (4, 6)),
    "SELU": (lambda: nn.SELU(), (4, 6)),
    "Swish": (lambda: nn.Swish(), (4, 6)),
    "GELU": (lambda: nn.GELU(), (4, 6)),
    **{
        f"Conv{d}D": (lambda d=d: getattr(nn, f"Conv{d}D")(4, 3), (2, 3) + (6,) * d)
        for d in (1, 2, 3)
    },
    **{
        f"Conv{d}DTranspose": (
            lambda d=d: getattr(nn, f"Conv{d}DTranspose")(4, 3),
            (2, 3) + (5,) * d,
        )
        for d in (1, 2, 3)
    },
    **{
        f"{pool}{d}D": (lambda pool=pool, d=d: getattr(nn, f"{pool}{d}D")(), (2, 3) + (6,) * d)
        for pool in ("MaxPool", "AvgPool", "GlobalMaxPool", "GlobalAvgPool")
        for d in (1, 2, 3)
    },
    "RNN": (lambda: rnn.RNN(8, num_layers=2, layout="NTC", bidirectional=True), (4, 5, 6)),
    "LSTM": (lambda: rnn.LSTM(8, num_layers=2, layout="NTC"), (4, 5, 6)),
    "GRU": (lambda: rnn.GRU(8, layout="NTC", bidirectional=True), (4, 5, 6)),
    "RNNCell": (lambda: Unrolled(rnn.RNNCell(8)), (4, 3, 6)),
    "LSTMCell": (lambda: Unrolled(rnn.LSTMCell(8)), (4, 3, 6)),
    "GRUCell": (lambda: Unrolled(rnn.GRUCell(8)), (4, 3, 6)),
    "HybridSequentialRNNCell": (lambda: Unrolled(_sequential_cells()), (4, 3, 6)),
    "DropoutCell": (lambda: Unrolled(rnn.DropoutCell(0.5)), (4, 3, 6)),
    "ZoneoutCell": (lambda: Unrolled(rnn.ZoneoutCell(rnn.LSTMCell(8), 0.3, 0.3)), (4, 3, 6)),
    "ResidualCell": (lambda: Unrolled(rnn.ResidualCell(rnn.GRUCell(6))), (4, 3, 6)),
    "BidirectionalCell": (
        lambda: Unrolled(rnn.BidirectionalCell(rnn.LSTMCell(8), rnn.LSTMCell(8))),
        (4, 3, 6),
    ),
    "HybridConcurrent": (_concurrent, (4, 4)),
    "Identity": (lambda: contrib_nn.Identity(), (4, 6)),
    "SyncBatchNorm": (lambda: contrib_nn.SyncBatchNorm(num_devices=1), (2, 3, 4, 4)),
    "PixelShuffle1D": (lambda: contrib_nn.PixelShuffle1D(2), (2, 4, 3)),
    "PixelShuffle2D": (lambda: contrib_nn.PixelShuffle2D(2), (2, 4, 3, 3)),
    "PixelShuffle3D": (lambda: contrib_nn.PixelShuffle3D(2), (2, 8, 3, 3, 3)),
}

#: Block classes of those modules not built on their own, and why.
NOT_LAYERS = {
    "Block": "base class",
    "HybridBlock": "base class",
    "RecurrentCell": "base class",
    "HybridRecurrentCell": "base class",
    "ModifierCell": "base class of DropoutCell, ZoneoutCell, ResidualCell",
    "SymbolBlock": "runs a given graph (imported models have their own tests)",
    "Sequential": "container; every model zoo network is one",
    "HybridSequential": "container; every model zoo network is one",
    "SequentialRNNCell": "container; HybridSequentialRNNCell is covered",
    "Concurrent": "container; HybridConcurrent is covered",
    "Lambda": "runs a user function",
    "HybridLambda": "runs a user function",
    "SparseEmbedding": "Embedding of a float32 weight, never cast (and its row_sparse weight "
    "needs a Trainer)",
}

#: One network of each model zoo family (the smallest; deeper ones repeat the same operators),
#: by the pattern of the family's names.
MODEL_FAMILIES = {
    r"alexnet$": "alexnet",
    r"densenet\d+$": "densenet121",
    r"inceptionv3$": "inceptionv3",
    r"mobilenet[\d.]+$": "mobilenet0.25",
    r"mobilenetv2_[\d.]+$": "mobilenetv2_0.25",
    r"resnet\d+_v1$": "resnet18_v1",
    r"resnet\d+_v2$": "resnet18_v2",
    r"squeezenet1\.0$": "squeezenet1.0",
    r"squeezenet1\.1$": "squeezenet1.1",
    r"vgg\d+$": "vgg11",
    r"vgg\d+_bn$": "vgg11_bn",
}


def model_zoo_names() -> list[str]:
    """Every network ``vision.get_model`` offers (it lists them when asked for an unknown one)."""
    try:
        vision.get_model("?")
    except ValueError as error:
        return [line.strip() for line in str(error).splitlines()[1:] if line.strip()]
    raise AssertionError("vision.get_model('?') did not list the model zoo")


def family_of(model: str) -> str | None:
    """The representative network of ``model``'s family, or None."""
    matches = [name for pattern, name in MODEL_FAMILIES.items() if re.match(pattern, model)]
    return matches[0] if len(matches) == 1 else None


def model(name: str) -> tuple[gluon.HybridBlock, tuple[int, ...]]:
    size = 299 if name == "inceptionv3" else 224
    return vision.get_model(name, classes=16), (1, 3, size, size)


class OpInstance(NamedTuple):
    """One operator node of a float16 autocast graph, as it would run on a GPU."""

    source: str  # the layer or network it comes from
    op: str
    attrs: dict
    shapes: tuple  # of its inputs
    dtypes: tuple  # of its inputs, as its kernel gets them ('float16', 'float32', ...)
    given: tuple  # of its inputs, as the operator's function gets them (before autocast)
    aux: tuple  # whether each input is an auxiliary state


def symbol_of(block: gluon.Block, shape: tuple[int, ...]) -> mx.sym.Symbol:
    """The graph ``block`` builds for one input of ``shape`` (legacy front end)."""
    out = block(mx.sym.var("data"))
    return mx.sym.Group(list(out)) if isinstance(out, (list, tuple)) else out


def op_instances(source: str, graph: mx.sym.Symbol, shape: tuple[int, ...]) -> list[OpInstance]:
    """The operators of ``graph`` (autocast's own casts aside), their input shapes and dtypes
    when ``data`` of ``shape`` comes in as float32."""
    internals = graph.get_internals()
    names = internals.list_outputs()
    arg_shapes, out_shapes, aux_shapes = internals.infer_shape(data=shape)
    arg_types, out_types, aux_types = internals.infer_type(data=np.float32)
    args, aux = internals.list_arguments(), internals.list_auxiliary_states()
    shapes = {**dict(zip(names, out_shapes)), **dict(zip(args, arg_shapes))}
    shapes.update(zip(aux, aux_shapes))
    dtypes = {**dict(zip(names, out_types)), **dict(zip(args, arg_types))}
    dtypes.update(zip(aux, aux_types))
    nodes = {
        node["name"]: node for node in json.loads(graph.tojson(remove_amp_cast=False))["nodes"]
    }
    found, seen = [], set()
    for index in range(len(names)):
        output = internals[index]
        children = output.get_children()
        node = nodes.get(output.name)
        if children is None or node is None or output.name in seen:
            continue
        seen.add(output.name)
        if node["op"] in ("amp_cast", "amp_multicast"):
            continue
        inputs = children.list_outputs()
        given = [_before_casts(children[k], nodes) for k in range(len(inputs))]
        found.append(
            OpInstance(
                source,
                node["op"],
                node.get("attrs", {}),
                tuple(tuple(shapes[i]) for i in inputs),
                tuple(np.dtype(dtypes[i]).name for i in inputs),
                tuple(np.dtype(dtypes[i]).name for i in given),
                tuple(i in aux for i in inputs),
            )
        )
    return found


def _before_casts(entry: mx.sym.Symbol, nodes: dict) -> str:
    """The name of what ``entry`` is, seen through autocast's ``amp_cast``/``amp_multicast``."""
    name = entry.list_outputs()[0]
    node = nodes.get(entry.name)
    if node is None or node["op"] not in ("amp_cast", "amp_multicast"):
        return name
    index = int(name.rsplit("output", 1)[1] or 0) if node["op"] == "amp_multicast" else 0
    return _before_casts(entry.get_children()[index], nodes)
