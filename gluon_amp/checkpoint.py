"""``save_states`` / ``load_states``: optimizer and loss-scaler state in one atomic file whose
loading runs no code from it.

The file (format ``gluon_amp.states/2``; safetensors' layout with MXNet's own array format)::

    b"gluon_amp states\\n"   magic
    8 bytes                  header length, little-endian
    header                   UTF-8 JSON: the loss scaler's state, the optimizer's class name and
                             attributes (counters, hyper-parameters), its lr_scheduler's, and the
                             optimizer state per parameter index, arrays referred to by number
    the rest                 the arrays, as ``mx.nd.save`` writes them (read by
                             ``mx.nd.load_frombuffer``: nothing is written while loading)

Loading builds only numbers, strings, lists, tuples, dicts, numpy scalars and NDArrays. The file
names the optimizer's and the scheduler's classes but never creates them: the trainer being
loaded into must already hold the same ones (as torch's ``weights_only`` and safetensors carry
data, never objects), and gets their attributes from the file. Gluon's ``trainer.save_states``
and gluon_amp's own first format are pickles, which run code when loaded: the old format loads
only with ``allow_pickle=True``, as ``numpy.load`` asks.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import pickle
import pickletools
import secrets
import stat
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mxnet as mx
import numpy as np
from mxnet.gluon import Trainer

from .trainer import loss_scaler

__all__ = ["save_states", "load_states"]

_MAGIC = b"gluon_amp states\n"
_LENGTH = struct.Struct("<Q")
_FORMAT = "gluon_amp.states/2"
_PICKLED_FORMAT = "gluon_amp.states/1"  # a pickle: loaded only with allow_pickle=True
_ENTRIES = ("scaler", "optimizer", "lr_scheduler", "num_params", "states", "arrays_size")
# Optimizer attributes that are not its state: the trainer's parameters, the scheduler (saved
# on its own).
_NOT_ATTRIBUTES = ("param_dict", "lr_scheduler")
_NUMPY_SCALARS = frozenset(
    "bool int8 int16 int32 int64 uint8 uint16 uint32 uint64 float16 float32 float64".split()
)
_NON_FINITE = ("inf", "-inf", "nan")


# ---- Python values <-> JSON and a list of arrays -------------------------------------------


def _encode(value: Any, arrays: list[mx.nd.NDArray], where: str) -> Any:
    """``value`` as JSON, its arrays appended to ``arrays``; ``where`` names it in errors.

    JSON numbers, strings, booleans and null stand for themselves; anything else is an object
    with one key saying what it is: ``list``, ``tuple``, ``dict`` (string keys), ``pairs``
    (other keys), ``float`` (inf, -inf, nan), ``numpy`` ([dtype, value]), ``ndarray`` and
    ``np.ndarray`` (the number of an array).
    """
    if isinstance(value, np.generic) and value.dtype.name in _NUMPY_SCALARS:
        return {"numpy": [value.dtype.name, _encode(value.item(), arrays, where)]}
    if value is None or type(value) in (bool, int, str):
        return value
    if type(value) is float:
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, mx.nd.NDArray):
        numpy_front_end = isinstance(value, mx.np.ndarray)
        arrays.append(value.as_nd_ndarray() if numpy_front_end else value)
        return {"np.ndarray" if numpy_front_end else "ndarray": len(arrays) - 1}
    if type(value) in (list, tuple):
        return {type(value).__name__: [_encode(item, arrays, where) for item in value]}
    if type(value) is dict:
        if all(type(key) is str for key in value):
            return {"dict": {k: _encode(v, arrays, f"{where}.{k}") for k, v in value.items()}}
        pairs = [[_encode(k, arrays, where), _encode(v, arrays, where)] for k, v in value.items()]
        return {"pairs": pairs}
    raise ValueError(
        f"amp.save_states cannot store {where}, a {type(value).__qualname__}: the file holds "
        f"data only (numbers, strings, lists, tuples, dicts, NDArrays) so that loading it runs "
        f"no code; keep such objects out of the optimizer's and lr_scheduler's attributes (make "
        f"it a method, or rebuild it from plain values)"
    )


def _decode(value: Any, arrays: dict[str, mx.nd.NDArray]) -> Any:
    """What :func:`_encode` encoded; ValueError naming the first thing that is not."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    if type(value) is dict and len(value) == 1:
        ((tag, body),) = value.items()
        if tag in ("list", "tuple") and type(body) is list:
            items = [_decode(item, arrays) for item in body]
            return items if tag == "list" else tuple(items)
        if tag == "dict" and type(body) is dict:
            return {key: _decode(item, arrays) for key, item in body.items()}
        if tag == "pairs" and type(body) is list and all(_is_pair(pair) for pair in body):
            try:
                return {_decode(k, arrays): _decode(v, arrays) for k, v in body}
            except TypeError:  # an unhashable key
                pass
        if tag == "float" and body in _NON_FINITE:
            return float(body)
        if tag == "numpy" and _is_pair(body) and body[0] in _NUMPY_SCALARS:
            return np.dtype(body[0]).type(_decode(body[1], arrays))
        if tag in ("ndarray", "np.ndarray") and type(body) is int and str(body) in arrays:
            array = arrays[str(body)]
            return array.as_np_ndarray() if tag == "np.ndarray" else array
    raise ValueError(f"unexpected value {json.dumps(value)[:80]}")


def _is_pair(value: Any) -> bool:
    return type(value) is list and len(value) == 2


def _copy_arrays(value: Any) -> Any:
    """``value`` with every NDArray in it copied (one optimizer state per context)."""
    if isinstance(value, mx.nd.NDArray):
        return value.copy()
    if isinstance(value, (list, tuple)):
        return type(value)(_copy_arrays(item) for item in value)
    if isinstance(value, dict):
        return {key: _copy_arrays(item) for key, item in value.items()}
    return value


def _class_name(obj: object) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


# ---- saving -----------------------------------------------------------------------------------


def save_states(trainer: Trainer, path: str | os.PathLike) -> None:
    """Save ``trainer``'s optimizer state (momentum, moments, update counts, hyper-parameters,
    learning-rate scheduler) and its loss scaler's state in one file.

    The file is written atomically: a failure leaves any previous file intact and no temporary
    file behind. A new file gets the usual mode (``0o666`` less the umask); an overwritten one
    keeps its mode. Raises ValueError, before writing anything, for an optimizer or scheduler
    attribute that is not plain data (the file holds no code).
    """
    path = Path(path)
    scaler = loss_scaler(trainer)
    optimizer = trainer._optimizer
    scheduler = optimizer.lr_scheduler
    attributes = {k: v for k, v in optimizer.__getstate__().items() if k not in _NOT_ATTRIBUTES}
    arrays: list[mx.nd.NDArray] = []
    header = {
        "format": _FORMAT,
        "scaler": _encode(scaler.state_dict(), arrays, "the loss scaler's state"),
        "optimizer": {
            "class": _class_name(optimizer),
            "attributes": _encode(attributes, arrays, type(optimizer).__name__),
        },
        "lr_scheduler": None
        if scheduler is None
        else {
            "class": _class_name(scheduler),
            "attributes": _encode(dict(vars(scheduler)), arrays, type(scheduler).__name__),
        },
        "num_params": len(trainer._params),
        "states": _encode(trainer._updaters[0].states, arrays, "the optimizer state"),
    }

    def write(tmp: str) -> None:
        mx.nd.save(tmp, {str(number): array for number, array in enumerate(arrays)})
        payload = Path(tmp).read_bytes()
        text = json.dumps({**header, "arrays_size": len(payload)}, allow_nan=False).encode()
        with open(tmp, "wb") as out:
            out.write(_MAGIC + _LENGTH.pack(len(text)) + text)
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())

    _atomic_write(path, write)


def _atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """``write`` a new file beside ``path``, then rename it over ``path``."""
    tmp = str(path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp"))
    # Created as any new file is (0o666 less the umask); O_EXCL: never someone else's file.
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        write(tmp)
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))  # an overwritten file keeps it
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# ---- loading ----------------------------------------------------------------------------------


@dataclass
class _Saved:
    """What a states file holds, decoded and checked, ready to apply."""

    scaler: dict[str, Any]
    optimizer_class: str
    optimizer: dict[str, Any]  # attributes
    scheduler_class: str | None
    scheduler: dict[str, Any] | None  # attributes
    num_params: int | None  # None: not recorded (the pickled format)
    states: dict[Any, Any]  # the updater's states, per parameter index


def load_states(trainer: Trainer, path: str | os.PathLike, *, allow_pickle: bool = False) -> None:
    """Restore what :func:`save_states` wrote into ``trainer`` and its loss scaler.

    ``trainer`` must be built as the saved one was: same optimizer class, same number of
    parameters, and the same lr_scheduler class if one was saved (the file stores the
    scheduler's attributes, never the object). All or nothing: a file that does not fit raises
    ValueError and changes nothing; loading writes nothing. ``allow_pickle=True`` also loads the
    pickle format gluon_amp wrote before; unpickling runs any code the file holds, so use it only
    for files you trust (then save them again to get the safe format).
    """
    path = Path(path)
    scaler = loss_scaler(trainer)
    data = path.read_bytes()
    if data.startswith(_MAGIC):
        saved = _parse(path, data)
    elif data[:1] == b"\x80" and _is_pickled_states(data):  # a pickle (protocol 2 or later)
        if not allow_pickle:
            raise ValueError(
                f"{path} is in the pickle format of older gluon_amp versions, and unpickling can "
                f"run any code a file holds: if you trust where it comes from, load it with "
                f"amp.load_states(trainer, path, allow_pickle=True), then amp.save_states it "
                f"again to get the safe format"
            )
        saved = _unpickle(path, data)
    else:
        raise ValueError(
            f"{path} is not a gluon_amp states file (write it with amp.save_states; plain "
            f"trainer.save_states files load with trainer.load_states)"
        )
    try:
        copy.copy(scaler).load_state_dict(saved.scaler)  # raises on a bad state, changes nothing
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    scheduler = _check_fits(path, trainer, saved)
    optimizer = trainer._optimizer
    optimizer.__dict__.update(saved.optimizer)
    if scheduler is not None:
        scheduler.__dict__.update(saved.scheduler)
    optimizer.lr_scheduler = scheduler
    for number, updater in enumerate(trainer._updaters):
        updater.states = saved.states if number == 0 else _copy_arrays(saved.states)
        updater.states_synced = dict.fromkeys(updater.states, False)  # moved to its context
        updater.optimizer = optimizer
    scaler.load_state_dict(saved.scaler)


def _damaged(path: Path, detail: str) -> ValueError:
    return ValueError(f"{path} is a damaged gluon_amp states file ({detail}): load an intact copy")


def _parse(path: Path, data: bytes) -> _Saved:
    """The ``gluon_amp.states/2`` file in ``data``, decoded."""
    start = len(_MAGIC) + _LENGTH.size
    if len(data) < start:
        raise _damaged(path, "cut short")
    (size,) = _LENGTH.unpack_from(data, len(_MAGIC))
    try:
        header = json.loads(data[start : start + size].decode(), parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError, JSONDecodeError
        raise _damaged(path, f"header: {error}") from None
    if not isinstance(header, dict):
        raise _damaged(path, "header: not a JSON object")
    if header.get("format") != _FORMAT:
        raise ValueError(
            f"{path} is a gluon_amp states file of format {header.get('format')!r}, which this "
            f"gluon_amp does not read (it reads {_FORMAT!r}): use the gluon_amp that wrote it"
        )
    missing = [entry for entry in _ENTRIES if entry not in header]
    if missing:
        raise _damaged(path, f"no {', '.join(missing)} entry")
    payload = data[start + size :]
    if len(payload) != header["arrays_size"]:
        raise _damaged(path, f"{len(payload)} bytes of arrays, {header['arrays_size']} written")
    try:
        loaded = mx.nd.load_frombuffer(payload)
    except mx.base.MXNetError as error:
        raise _damaged(path, f"arrays: {str(error).strip().splitlines()[-1]}") from None
    arrays = loaded if isinstance(loaded, dict) else {}  # nothing saved loads as []
    try:
        optimizer, scheduler = header["optimizer"], header["lr_scheduler"]
        saved = _Saved(
            scaler=_decode(header["scaler"], arrays),
            optimizer_class=optimizer["class"],
            optimizer=_decode(optimizer["attributes"], arrays),
            scheduler_class=None if scheduler is None else scheduler["class"],
            scheduler=None if scheduler is None else _decode(scheduler["attributes"], arrays),
            num_params=header["num_params"],
            states=_decode(header["states"], arrays),
        )
    except (ValueError, KeyError, TypeError, RecursionError) as error:
        raise _damaged(path, f"header: {error}") from None
    expected = {
        "scaler": (saved.scaler, dict),
        "optimizer class": (saved.optimizer_class, str),
        "optimizer attributes": (saved.optimizer, dict),
        "num_params": (saved.num_params, int),
        "states": (saved.states, dict),
    }
    if scheduler is not None:
        expected["lr_scheduler class"] = (saved.scheduler_class, str)
        expected["lr_scheduler attributes"] = (saved.scheduler, dict)
    for name, (value, kind) in expected.items():
        if type(value) is not kind:
            raise _damaged(path, f"{name} is a {type(value).__name__}, expected {kind.__name__}")
    return saved


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _is_pickled_states(data: bytes) -> bool:
    """Whether the pickle in ``data`` is gluon_amp's first format; read, never run."""
    with contextlib.suppress(Exception):  # a broken pickle is not ours either
        for _, argument, _ in pickletools.genops(data):
            if argument == _PICKLED_FORMAT:
                return True
    return False


def _unpickle(path: Path, data: bytes) -> _Saved:
    """The ``gluon_amp.states/1`` pickle in ``data`` (runs whatever code it holds)."""
    payload = pickle.loads(data)  # the caller opted in with allow_pickle=True
    if not isinstance(payload, dict) or payload.get("format") != _PICKLED_FORMAT:
        raise ValueError(f"{path} is not a gluon_amp states file")
    missing = [entry for entry in ("optimizer", "scaler") if entry not in payload]
    if missing:
        raise _damaged(path, f"no {', '.join(missing)} entry")
    try:
        states, optimizer = pickle.loads(payload["optimizer"])  # Gluon's get_states()
    except Exception as error:
        raise _damaged(path, f"optimizer: {error}") from None
    scheduler = optimizer.lr_scheduler
    attributes = optimizer.__getstate__()
    return _Saved(
        scaler=payload["scaler"],
        optimizer_class=_class_name(optimizer),
        optimizer={k: v for k, v in attributes.items() if k not in _NOT_ATTRIBUTES},
        scheduler_class=None if scheduler is None else _class_name(scheduler),
        scheduler=None if scheduler is None else dict(vars(scheduler)),
        num_params=None,
        states=states,
    )


def _check_fits(path: Path, trainer: Trainer, saved: _Saved) -> Any:
    """Raise ValueError unless ``saved`` fits ``trainer``; return the lr_scheduler to keep."""
    optimizer = trainer._optimizer
    if _class_name(optimizer) != saved.optimizer_class:
        raise ValueError(
            f"{path} holds the state of a {saved.optimizer_class} optimizer and this trainer's "
            f"is a {_class_name(optimizer)}: create the trainer with the optimizer it was saved "
            f"with"
        )
    if saved.num_params is not None and saved.num_params != len(trainer._params):
        raise ValueError(
            f"{path} was saved from a trainer of {saved.num_params} parameters and this one "
            f"has {len(trainer._params)}: create the trainer with the same parameters"
        )
    scheduler = optimizer.lr_scheduler
    if saved.scheduler_class is None:
        return None
    if scheduler is None or _class_name(scheduler) != saved.scheduler_class:
        have = "none" if scheduler is None else f"a {_class_name(scheduler)}"
        raise ValueError(
            f"{path} was saved with a {saved.scheduler_class} lr_scheduler and this trainer's "
            f"optimizer has {have}: the file holds the scheduler's attributes, never the object "
            f"(restoring an object means running code from the file), so create the optimizer "
            f"with the same kind of lr_scheduler, then load"
        )
    return scheduler
