"""float16 on a CPU with a GPU's numerics: the opt-in, and float32 compute where no kernel exists.

MXNet's CPU build has no float16 GEMM: FullyConnected, Convolution, Deconvolution, RNN, ``dot``,
``batch_dot``, the attention ``interleaved_matmul`` ops and the numpy front end's ``matmul``,
``dot``, ``tensordot``... fail in float16 on a CPU context. With the opt-in
(``amp.init('float16', emulate=True)`` or ``GLUON_AMP_EMULATE_FLOAT16=1``) each of them runs as
MXNet's float16 GEMMs run on a GPU by default (``MXNET_FC_TRUE_FP16`` unset): float16 inputs,
products accumulated in float32, the result rounded to float16 — here ``amp_cast`` to float32,
the float32 CPU kernel, ``amp_cast`` back (round to nearest even, overflow to inf and underflow to
subnormals or zero exactly as numpy's float16 does). Every other operator runs its own float16
CPU kernel, as MXNet's float16 lists say. So the loss overflows, the loss scale backs off and the
skipped steps are those a GPU would see, give or take the order of float32 sums.

Which operators are emulated (the rule; ``tests/gluon_amp/test_emulate_coverage.py`` checks it
against MXNet itself, operator by operator, in subprocesses):

- every operator of MXNet's float16 target list (``list_lp16_ops('float16')``: Convolution,
  Deconvolution, FullyConnected, RNN): they are the GEMMs AMP sends to Tensor Cores, and none has
  a CPU float16 kernel;
- the GEMMs of MXNet's widest-type list (:data:`WIDEST_TYPE_GEMMS`) and their numpy-front-end
  counterparts (``np_ops.NP_NO_CPU_FLOAT16``, ``npx.batch_dot``);
- the few dtype-neutral operators measured without a CPU float16 kernel (:data:`NO_CPU_KERNEL`);
- BatchNorm, by choice (:data:`AS_ON_A_GPU`): cuDNN computes it in float32 with float16 in and
  out, and MXNet's CPU float16 BatchNorm makes a ResNet-18 step twice as slow again.

Two kernels need more: Deconvolution computes in float64 (oneDNN's float32 deconvolution cannot
differentiate a cast weight; the native float64 one can), and a 3-D one, oneDNN's only, takes its
float32 weight uncast (:func:`inputs_left_uncast`). In graphs that run on a CPU, casts whose
target depends on dtypes (``amp_multicast``, output rounding of dtype-neutral operators) are
decided from the graph's declared dtypes while it is built (:func:`static_dtypes`), because
MXNet's CPU ``amp_multicast`` fails on float16. Converted and imported models (MXNet's
``convert_symbol``) are rebuilt node by node the same way (:func:`graph_for_cpu`).
"""

from __future__ import annotations

import ast
import functools
import json
import os
from collections.abc import Collection, Sequence
from typing import Any, Callable

import mxnet as mx
import numpy as np
from mxnet import ndarray, symbol
from mxnet.contrib.amp import amp as contrib_amp
from mxnet.ndarray import NDArray
from mxnet.symbol import Symbol

from . import outputs
from .errors import EMULATE_ENV_VAR

__all__ = [
    "ENV_VAR",
    "WIDEST_TYPE_GEMMS",
    "NO_CPU_KERNEL",
    "AS_ON_A_GPU",
    "requested",
    "emulated_ops",
    "symbols_run_on_cpu",
    "static_dtypes",
    "to_widest",
    "wrap",
    "emulated",
    "inputs_left_uncast",
    "graph_for_cpu",
]

#: The environment variable read by ``amp.init`` when its ``emulate`` keyword is not given.
ENV_VAR = EMULATE_ENV_VAR
_YES = ("1", "true", "yes", "on")
_NO = ("", "0", "false", "no", "off")

#: The GEMMs among MXNet's widest-type operators (the rest of that list has float16 kernels).
WIDEST_TYPE_GEMMS = (
    "dot",
    "batch_dot",
    "_contrib_interleaved_matmul_selfatt_qk",
    "_contrib_interleaved_matmul_selfatt_valatt",
    "_contrib_interleaved_matmul_encdec_qk",
    "_contrib_interleaved_matmul_encdec_valatt",
)
#: Operators MXNet runs in their input's dtype that have no CPU float16 kernel (measured on
#: MXNet 1.9.1): ``sort``, bilinear ``UpSampling`` (a deconvolution), ``ROIPooling``, ``Crop`` and
#: oneDNN's fused ``BatchNormWithReLU`` fail in float16 on CPU; ``SequenceLast``'s float16
#: backward returns zeros and corrupts the heap.
NO_CPU_KERNEL = (
    "sort",
    "UpSampling",
    "ROIPooling",
    "Crop",
    "SequenceLast",
    "_contrib_BatchNormWithReLU",
)
#: Emulated to match the GPU: cuDNN's BatchNorm computes in float32 (float16 data in and out).
AS_ON_A_GPU = ("BatchNorm",)
#: Outputs to round to float16 where not all are (BatchNorm's mean and variance stay float32).
_LOW_OUTPUTS = {"BatchNorm": 1, "_contrib_BatchNormWithReLU": 1}

_F16 = np.dtype(np.float16)
# Captured before autocast wraps anything (amp_cast and Cast are in MXNet's dtype-neutral list).
_nd_amp_cast, _nd_cast = ndarray.amp_cast, ndarray.Cast
_sym_amp_cast, _sym_cast = symbol.amp_cast, symbol.Cast


def requested(emulate: bool | None) -> tuple[bool, str]:
    """Whether float16 emulation is asked for, and by what (for error messages).

    The keyword wins; None reads :data:`ENV_VAR` (``1``/``true``/``yes``/``on`` or
    ``0``/``false``/``no``/``off``/empty, any case).
    """
    if emulate is not None:
        if not isinstance(emulate, bool):
            raise TypeError(f"emulate must be True, False or None, got {emulate!r}")
        return emulate, f"emulate={emulate}"
    value = os.environ.get(ENV_VAR, "")
    if value.strip().lower() in _YES:
        return True, f"{ENV_VAR}={value}"
    if value.strip().lower() in _NO:
        return False, ""
    raise ValueError(
        f"{ENV_VAR}={value!r} is neither on (1, true, yes, on) nor off (0, false, no, off, "
        f"empty): set it to 1 to emulate float16 on a CPU, or unset it"
    )


def emulated_ops() -> frozenset[str]:
    """The legacy operator names emulated in float32 on a CPU (see the module docstring)."""
    target = contrib_amp.list_lp16_ops(np.float16)
    return frozenset((*target, *WIDEST_TYPE_GEMMS, *NO_CPU_KERNEL, *AS_ON_A_GPU))


@functools.lru_cache(maxsize=1)
def _no_gpu() -> bool:
    return mx.context.num_gpus() == 0


def symbols_run_on_cpu() -> bool:
    """Whether a graph being built now will run on a CPU: the Block call in progress got CPU
    inputs, or (a graph built outside any Block call) this machine has no GPU."""
    return outputs.outermost_inputs_on_cpu() or _no_gpu()


# --- casts, for legacy and numpy arrays and symbols alike ------------------------------------


def _legacy(x: Any) -> tuple[Any, bool]:
    """``x`` as a legacy NDArray/Symbol, and whether it was a numpy-front-end one."""
    if type(x) not in (NDArray, Symbol) and hasattr(x, "as_nd_ndarray"):
        return x.as_nd_ndarray(), True
    return x, False


def _back(x: Any, numpy: bool) -> Any:
    return x.as_np_ndarray() if numpy else x


def _amp_cast(x: Any, dtype: Any) -> Any:
    legacy, numpy = _legacy(x)
    cast = _sym_amp_cast if isinstance(legacy, Symbol) else _nd_amp_cast
    return _back(cast(legacy, dtype=dtype), numpy)


def static_dtypes(symbols: Sequence[Symbol]) -> list[np.dtype | None]:
    """The dtype each symbol will have when its graph runs, inferred while the graph is built.

    Input variables declared without a dtype (the data of a Gluon graph) count as float32, the
    dtype AMP expects a network's inputs in; None where the graph still cannot tell.
    """
    group = symbol.Group([_legacy(s)[0] for s in symbols])
    attrs = group.attr_dict()
    undeclared = {
        name: np.float32
        for name in group.list_arguments()
        if "__dtype__" not in attrs.get(name, {})
    }
    _, types, _ = group.infer_type_partial(**undeclared)
    return [None if t is None else np.dtype(t) for t in types]


def to_widest(symbols: Sequence[Symbol]) -> list[Symbol]:
    """``amp_multicast`` for a graph that runs on a CPU: every float input cast to the widest
    float type among them, float16 only when every one is known to be float16.

    MXNet's CPU ``amp_multicast`` (its oneDNN kernel) fails on float16 inputs; ``amp_cast``
    does not.
    """
    low = all(t == _F16 for t in static_dtypes(symbols))
    return [_amp_cast(s, _F16 if low else np.float32) for s in symbols]


def _narrow_to(x: Symbol, reference: Symbol) -> Symbol:
    """Symbol ``x`` (float32) cast to float16 when ``reference`` is known to be float16."""
    return _amp_cast(x, _F16) if static_dtypes([reference])[0] == _F16 else x


def _dtype(x: Any) -> Any:
    """An array's dtype; None for a symbol (unknown until its graph runs)."""
    return x.dtype if isinstance(x, NDArray) else None


def _is_array(x: Any) -> bool:
    return isinstance(x, (NDArray, Symbol))


def _needs_emulation(arrays: Sequence[Any]) -> bool:
    """True when these inputs would meet a missing float16 kernel: float16 on a CPU context, or
    symbols of a graph that will run on a CPU."""
    if any(isinstance(a, Symbol) for a in arrays):
        return symbols_run_on_cpu()
    return any(a.dtype == _F16 and a.context.device_type == "cpu" for a in arrays)


def _round_outputs(out: Any, reference: Any, low: Any, count: int | None) -> Any:
    """The first ``count`` outputs of ``out`` (all when None) rounded back to low precision:
    to ``low`` when known, else to ``reference``'s dtype where that is float16."""

    def one(x: Any) -> Any:
        if isinstance(x, NDArray):
            wanted = low if low is not None else reference.dtype
            return _nd_cast_float(x, wanted)
        if low is not None:
            return _amp_cast(x, low)
        return _narrow_to(x, reference)

    if isinstance(out, (list, tuple)):
        n = len(out) if count is None else count
        return type(out)(one(x) if i < n else x for i, x in enumerate(out))
    if isinstance(out, Symbol) and len(out.list_outputs()) > 1:
        n = len(out.list_outputs()) if count is None else count
        legacy, numpy = _legacy(out)
        parts = [one(legacy[i]) if i < n else legacy[i] for i in range(len(legacy.list_outputs()))]
        return _back(symbol.Group(parts), numpy)
    return one(out)


def _nd_cast_float(x: NDArray, dtype: Any) -> NDArray:
    if np.dtype(dtype) != _F16 or x.dtype != np.float32:
        return x
    return _amp_cast(x, _F16)


def _kernel_dims(attrs: dict) -> int:
    kernel = attrs.get("kernel", ())
    return len(ast.literal_eval(kernel) if isinstance(kernel, str) else kernel)


def _wide_dtype(op_name: str, attrs: dict) -> Any:
    """float32, but float64 for a 1-D/2-D Deconvolution: MXNet's CPU float32 deconvolution
    (oneDNN) fails to differentiate a computed (cast) weight; its native float64 kernel does
    not, and a float64 sum rounded to float16 is as close to a GPU's as a float32 one."""
    if op_name == "Deconvolution" and _kernel_dims(attrs) <= 2:
        return np.float64
    return np.float32


def inputs_left_uncast(op_name: str, attrs: dict) -> tuple[bool, ...]:
    """Inputs autocast leaves float32 for the emulation: a 3-D Deconvolution's weight and bias.

    MXNet's CPU 3-D deconvolution (oneDNN only, no float64 kernel) cannot differentiate a
    computed weight, so there the float32 parameters go in unrounded (the data is float16).
    """
    if op_name == "Deconvolution" and _kernel_dims(attrs) == 3:
        return (False, True, True)
    return ()


def _widen(x: Any, dtype: Any) -> Any:
    if dtype == np.float32:
        return _amp_cast(x, np.float32)
    legacy, numpy = _legacy(x)
    cast = _sym_cast if isinstance(legacy, Symbol) else _nd_cast
    return _back(cast(legacy, dtype=dtype), numpy)


def _float64_to_float32(x: Any) -> Any:
    """The output of a float64 computation as float32, where amp_cast takes over."""
    legacy, numpy = _legacy(x)
    cast = _sym_cast if isinstance(legacy, Symbol) else _nd_cast
    return _back(cast(legacy, dtype=np.float32), numpy)


def emulated(
    build: Callable[..., Any],
    inputs: Sequence[Any],
    op_name: str,
    attrs: dict,
    skip: Collection[int] = (),
    low: Any = None,
    reference: Any = None,
) -> Any:
    """``build(*inputs)`` (operator ``op_name`` with ``attrs``) computed in float32 (float64 for
    a Deconvolution) and rounded back to float16.

    The inputs (but those at the positions in ``skip``, e.g. auxiliary states) are widened;
    the outputs are cast to ``low``, or, when ``low`` is None, to the dtype of ``reference``
    (default ``inputs[0]``) where that is float16. Arrays or symbols, legacy or numpy front end.
    """
    wide = _wide_dtype(op_name, attrs)
    cast = [
        _widen(x, wide) if _is_array(x) and i not in skip and _dtype(x) != wide else x
        for i, x in enumerate(inputs)
    ]
    out = build(*cast)
    if wide != np.float32:
        out = _float64_to_float32(out)  # Deconvolution: one output
    reference = inputs[0] if reference is None else reference
    return _round_outputs(out, reference, low, _LOW_OUTPUTS.get(op_name))


def wrap(f: Callable, op_name: str) -> Callable:
    """``f`` (the function of operator ``op_name``) emulated in float32 wherever its inputs meet
    a CPU without float16 kernels; elsewhere (GPU, float32 inputs) it runs unchanged.

    Outputs take the dtype of the first array argument (float16 in, float16 out). Symbol inputs
    that are graph variables are left uncast: a variable may be an auxiliary state (BatchNorm's
    running statistics), which must stay a variable; autocast's own casts feed the others.
    """

    def wrapper(*args, **kwargs):
        arrays = [a for a in (*args, *kwargs.values()) if _is_array(a)]
        if not arrays or not _needs_emulation(arrays):
            return f(*args, **kwargs)
        out = kwargs.pop("out", None)
        names = list(kwargs)
        slots = [*args, *(kwargs[k] for k in names)]
        skip = {i for i, a in enumerate(slots) if isinstance(a, Symbol) and _is_variable(a)}
        reference = next(a for a in slots if _is_array(a))

        def build(*values):
            return f(*values[: len(args)], **dict(zip(names, values[len(args) :])))

        result = emulated(build, slots, op_name, kwargs, skip, reference=reference)
        if out is not None:
            _nd_amp_cast(_legacy(result)[0], dtype=out.dtype, out=_legacy(out)[0])
            return out
        return result

    wrapper.__name__ = getattr(f, "__name__", op_name)
    wrapper.__doc__ = f.__doc__
    wrapper.__wrapped__ = f
    return wrapper


def _is_variable(x: Symbol) -> bool:
    legacy, _ = _legacy(x)
    return legacy.get_children() is None


def graph_for_cpu(graph: Symbol, emulated_ops: Collection[str]) -> Symbol:
    """``graph``, a float16 graph cast by MXNet's ``convert_symbol`` (imported or converted
    models), rebuilt to run on a CPU: ``emulated_ops`` compute in float32 between float16 inputs
    and outputs, and ``amp_multicast`` becomes static casts (:func:`to_widest`).

    Every node is rebuilt with its own operator and attributes (``_gen_atomic_symbol``), in the
    order MXNet saved them; variables (parameters, auxiliary states, data) are kept as they are.
    """
    legacy, numpy = _legacy(graph)
    saved = json.loads(legacy.tojson(remove_amp_cast=False))
    internals = legacy.get_internals()
    by_name: dict[str, Symbol] = {}
    for index in range(len(internals.list_outputs())):
        by_name.setdefault(internals[index].name, internals[index])
    aux = set(legacy.list_auxiliary_states())
    built: list[Symbol] = []
    for node in saved["nodes"]:
        original = by_name[node["name"]]
        if node["op"] == "null":
            built.append(original)
            continue
        inputs = [_output(built[i], j) for i, j, *_ in node["inputs"]]
        if node["op"] == "amp_multicast":
            built.append(symbol.Group(to_widest(inputs)))
            continue
        atomic = original._gen_atomic_symbol()

        def build(*values, atomic=atomic, name=node["name"]):
            rebuilt = atomic(*values)
            rebuilt._set_attr(name=name)
            return rebuilt

        if node["op"] in emulated_ops:
            kept = {
                k for k, (i, *_) in enumerate(node["inputs"]) if saved["nodes"][i]["name"] in aux
            }
            built.append(emulated(build, inputs, node["op"], node.get("attrs", {}), kept))
        else:
            built.append(build(*inputs))
    heads = [_output(built[i], j) for i, j, *_ in saved["heads"]]
    return _back(heads[0] if len(heads) == 1 else symbol.Group(heads), numpy)


def _output(node: Symbol, index: int) -> Symbol:
    """Output ``index`` of a (possibly multi-output) rebuilt node."""
    return node[index] if len(node.list_outputs()) > 1 else node
