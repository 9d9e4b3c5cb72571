"""``init`` / ``reset``: autocasting MXNet operators by MXNet's own AMP op lists.

``init`` replaces operator functions in ``mx.nd``, ``mx.sym`` (and their ``op``, ``_internal``
and prefix submodules, as ``mxnet.contrib.amp`` does), the numpy front end's ``npx`` functions
(see ``np_ops.py``), ``Block.__call__`` (see ``outputs.py``) and ``SymbolBlock.imports``. Every
replacement is recorded so that ``reset`` puts the originals back.

Casting uses MXNet's ``amp_cast`` / ``amp_multicast`` operators, so it works imperatively and in
hybridized graphs alike, and gradients flow back through the casts.
"""

from __future__ import annotations

import itertools
import logging
import weakref
from typing import Any, Callable, NamedTuple

import mxnet as mx
import numpy as np
from mxnet import base, ndarray, symbol
from mxnet.contrib.amp import amp as contrib_amp
from mxnet.contrib.amp.amp import bfloat16
from mxnet.gluon import Block, HybridBlock, SymbolBlock
from mxnet.ndarray import NDArray
from mxnet.symbol import Symbol

from . import emulate as emulation
from . import outputs
from .accumulate import Tracker
from .device import cpu_bfloat16_problem, outlook
from .errors import BFloat16UnavailableError, Float16OnCPUError
from .imports import make_imports
from .np_ops import NP_NO_CPU_FLOAT16, npx_functions_for

__all__ = ["init", "reset", "target_dtype"]

logger = logging.getLogger("gluon_amp")

_FLOATS = (np.float16, np.float32, bfloat16)
_DTYPES = {"float16": np.dtype(np.float16), "bfloat16": bfloat16}


class _Config(NamedTuple):
    target_dtype: str
    target_precision_ops: tuple | None
    conditional_fp32_ops: tuple | None
    fp32_ops: tuple | None
    cast_outputs: bool
    emulate: bool


class _Active:
    """What one ``init`` changed, to be undone by ``reset``."""

    def __init__(self, config: _Config) -> None:
        self.config = config
        self.patches: list[tuple[Any, str, Any]] = []  # (owner, attribute, original value)
        self.graphs_built_under_amp: weakref.WeakSet = weakref.WeakSet()
        self.warned_blocks: weakref.WeakSet = weakref.WeakSet()
        self.tracker = Tracker()
        # Operators computed in float32 where float16 meets a CPU (empty without the opt-in).
        self.emulated = emulation.emulated_ops() if config.emulate else frozenset()

    def patch(self, owner: Any, name: str, value: Any) -> None:
        self.patches.append((owner, name, owner.__dict__[name]))
        setattr(owner, name, value)

    def undo(self) -> None:
        for owner, name, original in reversed(self.patches):
            setattr(owner, name, original)
        self.patches.clear()


_active: _Active | None = None

#: Told of every imperative operator call autocast wraps, as ``observer(op_name, args, kwargs,
#: cast_args, cast_kwargs, raw_out, out)``: the inputs as given and as cast, what the operator
#: returned and what the wrapper returns. Set by ``gluon_amp.reporting`` while it records one
#: call; None (the rest of the time) costs one global lookup per call.
observer: Callable | None = None


def target_dtype() -> str | None:
    """The low-precision dtype autocast is active for (``'float16'``/``'bfloat16'``), or None."""
    return _active.config.target_dtype if _active else None


def emulating() -> bool:
    """Whether float16 emulation is on: ``amp.init`` with it is active, or (amp off) it is asked
    for by ``GLUON_AMP_EMULATE_FLOAT16``."""
    if _active is not None:
        return _active.config.emulate
    return emulation.requested(None)[0]


def normalize_dtype(target_dtype: Any, emulate: bool = False) -> str:
    """``'float16'`` or ``'bfloat16'`` for any spelling of them; None picks float16 on a GPU
    machine or with float16 emulation, else bfloat16."""
    if target_dtype is None:
        return "float16" if emulate or mx.context.num_gpus() > 0 else "bfloat16"
    if target_dtype is bfloat16 or (isinstance(target_dtype, str) and target_dtype == "bfloat16"):
        return "bfloat16"
    try:
        if np.dtype(target_dtype) == np.float16:
            return "float16"
    except TypeError:
        pass
    raise ValueError(
        f"target_dtype must be 'float16', 'bfloat16' or None (float16 on a GPU machine, else "
        f"bfloat16), got {target_dtype!r}"
    )


def require_bfloat16_kernels(dtype: str) -> None:
    """Raise :class:`BFloat16UnavailableError` for bfloat16 on a CPU without bfloat16 kernels."""
    if dtype == "bfloat16":
        problem = cpu_bfloat16_problem()
        if problem is not None:
            raise BFloat16UnavailableError(problem)


def _as_tuple(ops: list | None) -> tuple | None:
    if ops is None:
        return None
    return tuple(tuple(op) if isinstance(op, (list, tuple)) else op for op in ops)


def init(
    target_dtype: Any = None,
    target_precision_ops: list[str] | None = None,
    conditional_fp32_ops: list[tuple[str, str, list[str]]] | None = None,
    fp32_ops: list[str] | None = None,
    *,
    cast_outputs: bool = True,
    emulate: bool | None = None,
) -> None:
    """Turn on automatic mixed precision: autocast MXNet operators by MXNet's AMP op lists.

    Parameters
    ----------
    target_dtype : {'float16', 'bfloat16', None}
        The low precision. None picks float16 when a GPU is visible or float16 emulation is
        on, else bfloat16.
    target_precision_ops, conditional_fp32_ops, fp32_ops : list, optional
        Override MXNet's lists, as in ``mxnet.contrib.amp.init``. An operator one of them names
        leaves MXNet's other lists (``fp32_ops=['FullyConnected']`` runs it in float32 only);
        an operator named twice in them is a ValueError.
    cast_outputs : bool, default True
        Return the floating-point outputs of the outermost Block call as float32.
    emulate : bool, optional
        Run float16 on CPU contexts with a GPU's numerics: operators without a CPU float16
        kernel (GEMMs, convolutions, RNN, BatchNorm) compute in float32 between float16 inputs
        and outputs (see ``gluon_amp/emulate.py``). For checking float16 numerics and loss
        scaling on a machine without a GPU, not for speed. None (default) reads the
        ``GLUON_AMP_EMULATE_FLOAT16`` environment variable; the keyword wins over it.

    Call it before the first forward pass (before or after building the network). Calling it
    again with the same arguments does nothing; with other arguments it raises ValueError
    (call :func:`reset` first).
    """
    global _active
    emulating, source = emulation.requested(emulate)
    config = _Config(
        normalize_dtype(target_dtype, emulating),
        _as_tuple(target_precision_ops),
        _as_tuple(conditional_fp32_ops),
        _as_tuple(fp32_ops),
        bool(cast_outputs),
        emulating,
    )
    _check_user_lists(config)
    if emulating and config.target_dtype == "bfloat16":
        raise ValueError(
            f"{source} emulates float16, but amp.init got target_dtype='bfloat16': use "
            f"amp.init('float16', emulate=True) to check float16 numerics on a CPU, or "
            f"amp.init('bfloat16', emulate=False) for bfloat16"
        )
    if _active is not None:
        if _active.config == config:
            return
        raise ValueError(
            f"amp.init was already called with {_describe(_active.config)}; call amp.reset() "
            f"before amp.init with {_describe(config)}"
        )
    if contrib_amp._amp_initialized:
        raise ValueError(
            "mxnet.contrib.amp.init was already called in this process and cannot be undone; "
            "use gluon_amp only (import gluon_amp as amp)"
        )
    require_bfloat16_kernels(config.target_dtype)
    active = _Active(config)
    try:
        _install(active)
    except BaseException:
        active.undo()
        raise
    _active = active
    logger.info("gluon_amp: autocasting to %s", config.target_dtype)
    expected = outlook(config.target_dtype, emulate=config.emulate)
    logger.log(expected.level, "gluon_amp: %s", expected.line)


def reset() -> None:
    """Undo everything :func:`init` did (operators, Block calls, SymbolBlock.imports).

    Hybridized graphs built under autocast are dropped, so their next call rebuilds them in
    float32. Models that ``SymbolBlock.imports`` loaded under autocast stay converted.
    """
    global _active
    if _active is not None:
        _active.undo()
        for block in list(_active.graphs_built_under_amp):
            block._clear_cached_op()
        _active = None


def _describe(config: _Config) -> str:
    custom = [
        name
        for name in ("target_precision_ops", "conditional_fp32_ops", "fp32_ops")
        if getattr(config, name) is not None
    ]
    extra = f", custom {', '.join(custom)}" if custom else ""
    emulated = ", emulate=True" if config.emulate else ""
    return (
        f"target_dtype={config.target_dtype!r}{extra}, cast_outputs={config.cast_outputs}{emulated}"
    )


# --- casting helpers -------------------------------------------------------------------------


def _guard(x: Any, dtype: Any) -> Any:
    return _active.tracker.guard(x, dtype) if _active is not None else x


def _cast(x: Any, dtype: Any) -> Any:
    """``x`` cast to ``dtype`` with ``amp_cast`` if it is a float array or a symbol."""
    if isinstance(x, NDArray):
        if x.dtype == dtype or x.dtype not in _FLOATS:
            return x
        x = _guard(x, dtype)
        if isinstance(x, mx.np.ndarray):
            return ndarray.amp_cast(x.as_nd_ndarray(), dtype=dtype).as_np_ndarray()
        return ndarray.amp_cast(x, dtype=dtype)
    if isinstance(x, Symbol):
        if isinstance(x, mx.sym.np._Symbol):
            return symbol.amp_cast(x.as_nd_ndarray(), dtype=dtype).as_np_ndarray()
        return symbol.amp_cast(x, dtype=dtype)
    return x


def _cast_args(args: tuple, kwargs: dict, dtype: Any, keep: list | None) -> tuple:
    """Cast the inputs, leaving ``out=`` and those ``keep`` marks (fp32 params) alone."""
    keep = keep or []
    new_args = tuple(
        a if i < len(keep) and keep[i] else _cast(a, dtype) for i, a in enumerate(args)
    )
    new_kwargs = {k: v if k in keep or k == "out" else _cast(v, dtype) for k, v in kwargs.items()}
    return new_args, new_kwargs


def _condition_met(kwargs: dict, cond: tuple | None) -> bool:
    return cond is None or (cond[0] in kwargs and kwargs[cond[0]] in cond[1])


def _finish(wrapper: Callable, f: Callable) -> Callable:
    wrapper.__name__ = f.__name__
    wrapper.__module__ = f.__module__
    wrapper.__doc__ = f.__doc__
    wrapper.__wrapped__ = f
    return wrapper


def _check_float16_on_cpu(op_name: str, dtype: Any, args: tuple, kwargs: dict) -> None:
    if dtype != np.float16:
        return
    for value in (*args, *kwargs.values()):
        if isinstance(value, NDArray) and value.context.device_type == "cpu":
            raise Float16OnCPUError(op_name)
        if isinstance(value, Symbol) and outputs.outermost_inputs_on_cpu():
            raise Float16OnCPUError(op_name)


# --- wrappers ----------------------------------------------------------------------------------


def _kept(keep: list | None, op_name: str, kwargs: dict, emulate: bool) -> list | None:
    """The inputs to leave uncast: ``keep`` (float32 parameters), and with float16 emulation
    those the emulation needs float32 (``emulate.inputs_left_uncast``)."""
    extra = emulation.inputs_left_uncast(op_name, kwargs) if emulate else ()
    if not extra:
        return keep
    keep = list(keep or [])
    return [a or b for a, b in itertools.zip_longest(keep, extra, fillvalue=False)]


def _ndarray_wrapper(f, op_name, dtype, keep=None, cond=None, low_precision=False, emulate=False):
    def wrapper(*args, **kwargs):
        cast_args, cast_kwargs = args, kwargs
        if _condition_met(kwargs, cond):
            if low_precision:
                _check_float16_on_cpu(op_name, dtype, args, kwargs)
            kept = _kept(keep, op_name, kwargs, emulate)
            cast_args, cast_kwargs = _cast_args(args, kwargs, dtype, kept)
        out = f(*cast_args, **cast_kwargs)
        if observer is not None:
            observer(op_name, args, kwargs, cast_args, cast_kwargs, out, out)
        return out

    return _finish(wrapper, f)


def _symbol_wrapper(f, op_name, dtype, keep=None, cond=None, low_precision=False, emulate=False):
    """Build the symbol, then rebuild it on cast inputs (covers implicitly created weights).

    ``dtype=None`` casts nothing. With ``emulate``, a graph that will run on a CPU computes the
    rebuilt operator in float32 between float16 inputs and outputs (``emulate.py``): what is
    rebuilt is the one atomic operator, with the casts around it.
    """

    def wrapper(*args, **kwargs):
        cast_to = dtype if _condition_met(kwargs, cond) else None
        if cast_to is None and not emulate:
            return f(*args, **kwargs)
        if low_precision and cast_to is not None:
            _check_float16_on_cpu(op_name, cast_to, args, kwargs)
        sym = f(*args, **kwargs)
        children = sym.get_children()
        if children is None:  # no inputs (e.g. _zeros): nothing to cast
            return sym
        aux = sym.list_auxiliary_states()
        keep_now = _kept(keep, op_name, kwargs, emulate) or []
        kept = {
            i
            for i, x in enumerate(children)
            if x.name in aux
            or (i < len(keep_now) and keep_now[i])
            or (cast_to is None and _float32_variable(x))  # parameters: float32 already
        }
        inputs = [
            x if i in kept or cast_to is None else _cast(x, cast_to) for i, x in enumerate(children)
        ]
        atomic = sym._gen_atomic_symbol()

        def build(*values):
            wrapped = atomic(*values)
            wrapped._set_attr(name=sym.name)
            return wrapped

        if emulate and cast_to != np.float32 and emulation.symbols_run_on_cpu():
            low = cast_to if cast_to == np.float16 else None
            return emulation.emulated(build, inputs, op_name, kwargs, kept, low)
        return build(*inputs)

    return _finish(wrapper, f)


def _float32_variable(x: Symbol) -> bool:
    """Whether ``x`` is a graph variable not declared float16 (a parameter, or float32 data)."""
    return x.get_children() is None and emulation.static_dtypes([x])[0] != np.float16


def _widest_wrapper(f, target, emulate=False):
    """Run ``f`` in the widest float type among its inputs (``amp_multicast`` for symbols; with
    ``emulate``, static casts in graphs that run on a CPU, see ``emulate.to_widest``)."""

    def wrapper(*args, **kwargs):
        given, given_kwargs = args, dict(kwargs)
        args = list(args)
        slots = [(args, i) for i, a in enumerate(args) if isinstance(a, (Symbol, NDArray))]
        slots += [(kwargs, k) for k, v in kwargs.items() if isinstance(v, (Symbol, NDArray))]
        values = [holder[key] for holder, key in slots]
        if any(isinstance(v, Symbol) for v in values):
            if emulate and emulation.symbols_run_on_cpu():
                cast = emulation.to_widest(values)
            else:
                cast = symbol.amp_multicast(*values, num_outputs=len(values))
            for (holder, key), value in zip(slots, cast):
                holder[key] = value
        elif any(v.dtype == np.float32 for v in values):
            for holder, key in slots:
                if holder[key].dtype == target:
                    holder[key] = ndarray.amp_cast(holder[key], dtype=np.float32)
        out = f(*args, **kwargs)
        if observer is not None and not any(isinstance(v, Symbol) for v in values):
            observer(f.__name__, given, given_kwargs, tuple(args), kwargs, out, out)
        return out

    return _finish(wrapper, f)


def _npx_wrapper(f, op_name, dtype, keep=None, emulate=False):
    """Numpy front end: inputs to low precision, outputs back to float32 (safe for ``_npi_*``).

    With ``emulate`` (float16 emulation on), ``f`` is emulated and nothing is refused on CPU.
    """

    def wrapper(*args, **kwargs):
        if not emulate:
            _check_float16_on_cpu(op_name, dtype, args, kwargs)
        kept = _kept(keep, op_name, kwargs, emulate)
        cast_args, cast_kwargs = _cast_args(args, kwargs, dtype, kept)
        raw = f(*cast_args, **cast_kwargs)
        if isinstance(raw, (list, tuple)):
            out = type(raw)(_cast(o, np.float32) for o in raw)
        else:
            out = _cast(raw, np.float32)
        if observer is not None and isinstance(raw, (NDArray, list, tuple)):
            observer(op_name, args, kwargs, cast_args, cast_kwargs, raw, out)
        return out

    return _finish(wrapper, f)


# --- installing --------------------------------------------------------------------------------


def _op_locations(name: str, root) -> list[tuple[Any, str]]:
    """Where the function for operator ``name`` lives under ``root`` (``mx.nd`` or ``mx.sym``)."""
    submodules = {prefix: getattr(root, prefix[1:-1]) for prefix in base._OP_NAME_PREFIX_LIST}
    func_name, module = contrib_amp._get_fun_to_wrap(name, root, submodules)
    if func_name not in module.__dict__:
        raise ValueError(
            f"amp.init: MXNet has no operator {name!r}: remove it from the op lists passed to init"
        )
    places = [(module, func_name)]
    if module is root and func_name in root.op.__dict__:
        places.append((root.op, func_name))
    return places


def _install_emulation(active: _Active, root, lists: dict) -> None:
    """Innermost layer: float32 compute of the operators without a CPU float16 kernel.

    NDArray functions compose, so each emulated function is wrapped before autocast wraps it.
    A symbol function that autocast rebuilds (listed ops) emulates inside its rebuild; the
    widest-type wrapper calls its function on cast symbols, which composes too.
    """
    rebuilt = {*lists["target"], *lists["fp32"], *(op for op, _, _ in lists["conditional"])}
    for name in sorted(active.emulated):
        if root is symbol and name in rebuilt:
            continue
        for owner, attr in _op_locations(name, root):
            f = owner.__dict__[attr]
            if root is symbol and name not in lists["widest"]:
                active.patch(owner, attr, _symbol_wrapper(f, name, None, emulate=True))
            else:
                active.patch(owner, attr, emulation.wrap(f, name))


def _install_legacy(active: _Active, root, dtype: Any, lists: dict) -> None:
    wrap = _symbol_wrapper if root is symbol else _ndarray_wrapper
    fp32_params = lists["fp32_params"] or {}
    check = not active.config.emulate  # with the opt-in, no listed op is refused on CPU
    emulated = active.emulated
    _install_emulation(active, root, lists)
    plan: list[tuple[str, Callable]] = []
    for name in lists["target"]:
        plan.append(
            (
                name,
                lambda f, n: wrap(
                    f, n, dtype, fp32_params.get(n), low_precision=check, emulate=n in emulated
                ),
            )
        )
    for name in lists["fp32"]:
        plan.append((name, lambda f, n: wrap(f, n, np.float32, emulate=n in emulated)))
    for name, arg, values in lists["conditional"]:
        cond = (arg, list(values))
        plan.append(
            (name, lambda f, n, c=cond: wrap(f, n, np.float32, cond=c, emulate=n in emulated))
        )
    for name in lists["widest"]:
        plan.append((name, lambda f, n: _widest_wrapper(f, dtype, active.config.emulate)))
    for name, make in plan:
        for owner, attr in _op_locations(name, root):
            active.patch(owner, attr, make(owner.__dict__[attr], name))


def _install_npx(active: _Active, dtype: Any, lists: dict) -> None:
    import mxnet.ndarray.numpy_extension as nd_npx
    import mxnet.numpy_extension as npx
    import mxnet.symbol.numpy_extension as sym_npx

    fp32_params = lists["fp32_params"] or {}
    target = set(lists["target"])
    for name, twin in npx_functions_for([*target, *active.emulated]).items():
        for package in (nd_npx, sym_npx, npx):
            for owner in (package, package._op):
                if name not in owner.__dict__:
                    continue
                f = owner.__dict__[name]
                if twin in active.emulated:
                    f = emulation.wrap(f, twin)
                if twin in target:
                    keep = fp32_params.get(twin)
                    f = _npx_wrapper(f, twin, dtype, keep, active.config.emulate)
                active.patch(owner, name, f)


def _install_np_emulation(active: _Active) -> None:
    """The numpy front end's functions without a CPU float16 kernel (never autocast)."""
    import mxnet.ndarray.numpy as nd_np
    import mxnet.numpy as np_
    import mxnet.symbol.numpy as sym_np

    owners = (np_, np_.multiarray, np_._op, nd_np, nd_np._op, sym_np, sym_np._symbol, sym_np._op)
    for name in NP_NO_CPU_FLOAT16:
        for owner in owners:
            if name in owner.__dict__:
                active.patch(owner, name, emulation.wrap(owner.__dict__[name], name))


#: gluon_amp's one correction to MXNet's lists: PReLU's slope is a float32 parameter that must have
#: its data's dtype, so ``LeakyReLU(act_type='prelu')`` fails type inference inside any
#: low-precision network; it runs in float32, as MXNet's lists run elu and selu.
_PRELU = ("LeakyReLU", "act_type", "prelu")


def _conditional_fp32_ops(dtype: Any) -> list:
    """MXNet's conditional float32 list, with PReLU added to LeakyReLU's float32 cases."""
    ops = []
    for name, arg, values in contrib_amp.list_conditional_fp32_ops(dtype):
        if (name, arg) == _PRELU[:2] and _PRELU[2] not in values:
            values = [*values, _PRELU[2]]
        ops.append((name, arg, list(values)))
    return ops


def _user_ops(config: _Config) -> dict[str, list[str]]:
    """Each operator the user's lists name, and the lists naming it (a conditional
    operator once, however many conditions it has)."""
    named: dict[str, list[str]] = {}
    for list_name in ("target_precision_ops", "fp32_ops"):
        for op in getattr(config, list_name) or ():
            named.setdefault(op, []).append(list_name)
    for op in dict.fromkeys(op for op, _, _ in config.conditional_fp32_ops or ()):
        named.setdefault(op, []).append("conditional_fp32_ops")
    return named


def _check_user_lists(config: _Config) -> None:
    """Refuse an operator named twice in the lists given to ``init`` (it would be cast twice)."""
    for op, lists in _user_ops(config).items():
        if len(lists) > 1:
            where = " and ".join(dict.fromkeys(lists))
            twice = " twice" if len(set(lists)) == 1 else ""
            raise ValueError(
                f"amp.init: {op!r} is named{twice} in {where}: name each operator in one list "
                f"only (the precision it should run in)"
            )


def _op_lists(config: _Config, dtype: Any) -> dict:
    """The lists to install: the user's where given, else MXNet's without the operators the
    user's lists name (an operator moved to ``fp32_ops`` leaves the float16 list)."""
    named = _user_ops(config)

    def pick(custom, default, op=lambda entry: entry):
        if custom is not None:
            return list(custom)
        return [entry for entry in default(dtype) if op(entry) not in named]

    return {
        "target": pick(config.target_precision_ops, contrib_amp.list_lp16_ops),
        "fp32": pick(config.fp32_ops, contrib_amp.list_fp32_ops),
        "conditional": pick(
            config.conditional_fp32_ops, _conditional_fp32_ops, lambda entry: entry[0]
        ),
        "widest": pick(None, contrib_amp.list_widest_type_cast),
        "fp32_params": contrib_amp.list_lp16_use_fp32_params(dtype),
    }


def _install(active: _Active) -> None:
    config = active.config
    dtype = _DTYPES[config.target_dtype]
    lists = _op_lists(config, dtype)
    _install_legacy(active, symbol, dtype, lists)
    _install_legacy(active, ndarray, dtype, lists)
    _install_npx(active, dtype, lists)
    if active.emulated:
        _install_np_emulation(active)

    def on_call(block: Block, outermost: bool) -> None:
        _warn_if_graph_predates_init(active, block)
        active.tracker.on_call(block, outermost)

    active.tracker.install(active.patch)
    active.patch(
        Block,
        "__call__",
        outputs.make_block_call(Block.__dict__["__call__"], config.cast_outputs, on_call),
    )
    active.patch(SymbolBlock, "imports", staticmethod(make_imports(config, lists)))


def _warn_if_graph_predates_init(active: _Active, block: Block) -> None:
    if not isinstance(block, HybridBlock) or not block._active:
        return
    if block._cached_op is None:
        active.graphs_built_under_amp.add(block)  # about to be built, with autocast on
    elif block not in active.graphs_built_under_amp and block not in active.warned_blocks:
        active.warned_blocks.add(block)
        logger.warning(
            "%s was hybridized and run before amp.init(): its cached float32 graph is not "
            "autocast; call net.hybridize() again after amp.init() to rebuild it",
            block.name,
        )
