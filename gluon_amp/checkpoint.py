"""``save_states`` / ``load_states``: optimizer state and loss-scaler state in one atomic file."""

from __future__ import annotations

import copy
import os
import pickle
import tempfile
from pathlib import Path

from mxnet.gluon import Trainer

from .trainer import loss_scaler

__all__ = ["save_states", "load_states"]

_FORMAT = "gluon_amp.states/1"


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _via_temporary_file(path: Path, action) -> bytes | None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".opt")
    os.close(fd)
    try:
        return action(tmp)
    finally:
        os.unlink(tmp)


def save_states(trainer: Trainer, path: str | os.PathLike) -> None:
    """Save ``trainer``'s optimizer state (momentum, moments, update counts) and its loss scaler.

    The file is written atomically: a failure leaves any previous file intact and no temporary
    file behind.
    """
    path = Path(path)
    scaler = loss_scaler(trainer)

    def dump(tmp: str) -> bytes:
        trainer.save_states(tmp)
        return Path(tmp).read_bytes()

    optimizer = _via_temporary_file(path, dump)
    payload = {"format": _FORMAT, "optimizer": optimizer, "scaler": scaler.state_dict()}
    _atomic_write(path, pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))


def load_states(trainer: Trainer, path: str | os.PathLike) -> None:
    """Restore what :func:`save_states` wrote into ``trainer`` and its loss scaler."""
    path = Path(path)
    scaler = loss_scaler(trainer)
    with open(path, "rb") as src:
        try:
            payload = pickle.load(src)
        except Exception as error:
            raise ValueError(f"{path} is not a gluon_amp states file ({error})") from None
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ValueError(
            f"{path} is not a gluon_amp states file (write it with amp.save_states; plain "
            f"trainer.save_states files load with trainer.load_states)"
        )
    copy.copy(scaler).load_state_dict(payload["scaler"])  # raises on a bad state, changes nothing

    def restore(tmp: str) -> None:
        Path(tmp).write_bytes(payload["optimizer"])
        trainer.load_states(tmp)

    _via_temporary_file(path, restore)
    scaler.load_state_dict(payload["scaler"])
