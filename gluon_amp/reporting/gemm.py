"""GEMM-family operators: their matrix sizes (M, N, K), FLOPs and the dimensions Tensor Cores see.

A GEMM multiplies an M×K matrix by a K×N one. M is the rows it sees (the batch, or batch ×
tokens); N and K are the layer's widths. A convolution is an implicit GEMM whose channels
(in-channels per group, out-channels) are what the hardware wants aligned; a depthwise one has
a single channel per group and is never reported. An embedding is a lookup, not a GEMM: its size
matters only where it is a GEMM's N (a decoder or tied output layer), reported on that GEMM.
"""

from __future__ import annotations

import ast
import functools
import math
from dataclasses import dataclass

from .graph import Graph, Node

__all__ = ["GEMM_OPS", "Dim", "Gemm", "measure"]

#: MXNet operators that are matrix multiplies (the numpy front end's twins run the same ops).
GEMM_OPS = frozenset(
    {
        "FullyConnected",
        "Convolution",
        "Deconvolution",
        "RNN",
        "dot",
        "batch_dot",
        "_npi_matmul",
        "_npi_dot",
    }
)
_GATES = {"lstm": 4, "gru": 3, "rnn_relu": 1, "rnn_tanh": 1}
_RNN_LAYERS = {"lstm": "LSTM", "gru": "GRU", "rnn_relu": "RNN", "rnn_tanh": "RNN"}
#: Input channels of an image, not a finding on a network's first convolution.
IMAGE_CHANNELS = (1, 3, 4)


@dataclass(frozen=True)
class Dim:
    """One dimension checked for alignment, by the layer argument that sets it."""

    name: str  # units, in_units, channels, in_channels, hidden_size, input_size, N, K
    size: int


@dataclass(frozen=True)
class Gemm:
    """The matrix multiply one operator performs (per call)."""

    kind: str  # the Gluon layer it comes from: Dense, Conv2D, LSTM, ... or the operator
    m: int
    n: int
    k: int
    flops: int
    dims: tuple[Dim, ...]  # N and K as the layer's arguments name them
    rows: int | None  # M where it is the batch (or batch × tokens): not for convolutions


def _attr(attrs: dict[str, str], key: str, default: str) -> str:
    value = attrs.get(key, default)
    return default if value == "None" else value


def _flag(attrs: dict[str, str], key: str, default: bool) -> bool:
    return _attr(attrs, key, str(default)).lower() in ("true", "1")


def _tuple(attrs: dict[str, str], key: str) -> tuple[int, ...]:
    value = ast.literal_eval(_attr(attrs, key, "()"))
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value),)


def _prod(values) -> int:
    return math.prod(int(v) for v in values)


def measure(graph: Graph, node: Node) -> Gemm | None:
    """The GEMM graph node ``node`` performs, or None (not a GEMM, or shapes unknown)."""
    if node.op not in GEMM_OPS or not node.inputs:
        return None
    shapes = [tensor.shape for tensor in graph.inputs(node)]
    out = node.outputs[0].shape if node.outputs else None
    return measure_call(node.op, node.attrs, shapes, out, graph.is_data(graph.origin(node, 0)))


def measure_call(
    op: str,
    attrs: dict[str, str],
    shapes: list[tuple[int, ...] | None],
    out: tuple[int, ...] | None,
    image_input: bool,
) -> Gemm | None:
    """The GEMM operator ``op`` performs with these attributes (as strings, as in a graph) on
    inputs of these shapes; ``image_input``: its data is the network's input."""
    if op not in GEMM_OPS or not shapes or shapes[0] is None or out is None:
        return None
    if op in ("dot", "batch_dot", "_npi_matmul", "_npi_dot") and (
        len(shapes) < 2 or shapes[1] is None
    ):
        return None
    return _MEASURES[op](op, attrs, shapes, out, image_input)


def _fully_connected(op, attrs, shapes, out, image_input) -> Gemm | None:
    data = shapes[0]
    n = int(_attr(attrs, "num_hidden", "0"))
    if _flag(attrs, "flatten", True):
        m, k = data[0], _prod(data[1:])
    else:
        m, k = _prod(data[:-1]), data[-1]
    return Gemm("Dense", m, n, k, 2 * m * n * k, (Dim("units", n), Dim("in_units", k)), m)


def _channels_axis(attrs: dict[str, str]) -> int:
    layout = _attr(attrs, "layout", "None")
    return -1 if layout not in ("None", "") and layout.endswith("C") else 1


def _convolution(op, attrs, shapes, out, image_input, transposed=False) -> Gemm | None:
    """A convolution as a GEMM: M output positions (input positions when transposed), N output
    channels, K input channels per group times the kernel; depthwise ones have no dimension to
    pad, and an image's channels fed straight to the first convolution are not a choice."""
    data, kernel = shapes[0], _tuple(attrs, "kernel")
    axis = _channels_axis(attrs)
    groups = int(_attr(attrs, "num_group", "1"))
    c_in, c_out = data[axis], int(_attr(attrs, "num_filter", "0"))
    rows = data if transposed else out
    spatial = [d for i, d in enumerate(rows) if i not in (0, axis % len(rows))]
    m, n, k = rows[0] * _prod(spatial), c_out, c_in // groups * _prod(kernel)
    depthwise = groups > 1 and groups == c_in
    per_group = "in_channels/groups" if groups > 1 else "in_channels"
    dims = () if depthwise else (Dim("channels", c_out), Dim(per_group, c_in // groups))
    if not (transposed or depthwise) and c_in in IMAGE_CHANNELS and image_input:
        dims = dims[:1]
    name = f"Conv{len(kernel)}D{'Transpose' if transposed else ''}"
    return Gemm(name, m, n, k, 2 * m * n * k, dims, None)


def _rnn(op, attrs, shapes, out, image_input) -> Gemm | None:
    steps, batch, size = shapes[0]
    mode = _attr(attrs, "mode", "lstm")
    gates, hidden = _GATES.get(mode, 1), int(_attr(attrs, "state_size", "0"))
    projection = _attr(attrs, "projection_size", "None")
    projected = int(projection) if projection not in ("None", "") else None
    width = projected or hidden
    layers = int(_attr(attrs, "num_layers", "1"))
    directions = 2 if _flag(attrs, "bidirectional", False) else 1
    flops = 0
    for layer in range(layers):
        inputs = size if layer == 0 else directions * width
        per_step = gates * hidden * (inputs + width) + (hidden * projected if projected else 0)
        flops += 2 * steps * batch * per_step * directions
    dims = [Dim("hidden_size", hidden), Dim("input_size", size)]
    if projected:
        dims.append(Dim("projection_size", projected))
    n, k = gates * hidden, size + width
    return Gemm(_RNN_LAYERS.get(mode, "RNN"), batch, n, k, flops, tuple(dims), batch)


def _dot(op, attrs, shapes, out, image_input) -> Gemm | None:
    a, b = shapes[0], shapes[1]
    if _flag(attrs, "transpose_a", False):
        k, m = a[0], _prod(a[1:])
    else:
        m, k = _prod(a[:-1]), a[-1]
    n = _prod(b[:-1]) if _flag(attrs, "transpose_b", False) else _prod(b[1:])
    return Gemm(op, m, n, k, 2 * m * n * k, (Dim("N", n), Dim("K", k)), m)


def _batch_dot(op, attrs, shapes, out, image_input) -> Gemm | None:
    a, b = shapes[0], shapes[1]
    batch = _prod(a[:-2])
    m, k = (a[-1], a[-2]) if _flag(attrs, "transpose_a", False) else (a[-2], a[-1])
    n = b[-2] if _flag(attrs, "transpose_b", False) else b[-1]
    return Gemm(op, m, n, k, 2 * batch * m * n * k, (Dim("N", n), Dim("K", k)), m)


def _numpy_product(op, attrs, shapes, out, image_input) -> Gemm | None:
    """``np.matmul`` / ``np.dot``: K is the last axis of ``a``; every output element costs 2K."""
    a, b = shapes[0], shapes[1]
    if not a or not b:
        return None
    k = a[-1]
    n = b[-1] if len(b) > 1 else 1
    m = _prod(out) // n if n else 0
    return Gemm(op, m, n, k, 2 * _prod(out) * k, (Dim("N", n), Dim("K", k)), m)


_MEASURES = {
    "FullyConnected": _fully_connected,
    "Convolution": _convolution,
    "Deconvolution": functools.partial(_convolution, transposed=True),
    "RNN": _rnn,
    "dot": _dot,
    "batch_dot": _batch_dot,
    "_npi_matmul": _numpy_product,
    "_npi_dot": _numpy_product,
}
