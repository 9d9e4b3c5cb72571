"""Loss scaling on a Gluon Trainer: ``init_trainer``, ``scale_loss``, ``unscale`` and the step hook.

The hook is the one Gluon's ``Trainer._update`` already calls, ``trainer._amp_loss_scaler
.has_overflow(params)``, right after ``allreduce_grads()`` (``step``) or as the first thing of
``update``. So on every engine the order is allreduce -> finite check -> update or skip, and with
``dist_sync`` or Horovod every worker checks identical reduced gradients and decides alike.
Unscaling rides on the optimizer's ``rescale_grad`` (``trainer._scale``): no extra pass.

Gluon calls the hook before its own checks (stale gradients), so ``_update`` is wrapped to put the
scaler back as it was when the step raises: a step that fails is not counted.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Callable, Iterator
from typing import Any, Union

import mxnet as mx
from mxnet import autograd
from mxnet.gluon import Trainer

from . import autocast
from .overflow import gradients, has_nonfinite
from .scaler import DynamicLossScaler, LossScaler, StaticLossScaler

__all__ = ["init_trainer", "loss_scaler", "scale_loss", "unscale"]

logger = logging.getLogger("gluon_amp")

Loss = Union[mx.nd.NDArray, list, tuple]


def _default_scaler() -> LossScaler:
    if autocast.target_dtype() == "bfloat16":
        return StaticLossScaler(1.0)
    return DynamicLossScaler()


def init_trainer(trainer: Trainer, loss_scaler: LossScaler | None = None) -> Trainer:
    """Attach a loss scaler to ``trainer`` and make its steps skip non-finite gradients.

    The default scaler is ``DynamicLossScaler()`` for float16 (also when ``amp.init`` was never
    called) and ``StaticLossScaler(1.0)`` (no scaling, still skipping inf/NaN steps) for
    bfloat16. Updates on the kvstore (``update_on_kvstore=True``) are switched off so that no
    gradient reaches the weights before the check. Returns ``trainer``.
    """
    if not isinstance(trainer, Trainer):
        raise TypeError(
            f"amp.init_trainer needs a gluon.Trainer, got {type(trainer).__name__} "
            f"(wrap the optimizer in gluon.Trainer(params, optimizer))"
        )
    current = getattr(trainer, "_amp_loss_scaler", None)
    if isinstance(current, LossScaler) and loss_scaler in (None, current):
        return trainer
    if loss_scaler is None:
        loss_scaler = _default_scaler()
    if not isinstance(loss_scaler, LossScaler):
        raise TypeError(
            f"loss_scaler must be an amp.DynamicLossScaler or amp.StaticLossScaler, "
            f"got {type(loss_scaler).__name__}"
        )
    owner = loss_scaler._trainer() if getattr(loss_scaler, "_trainer", None) else None
    if owner is not None and owner is not trainer:
        raise ValueError(
            "this loss scaler already belongs to another trainer: create one per trainer "
            "(copy.deepcopy(scaler) gives a copy that belongs to none)"
        )
    _keep_updates_off_kvstore(trainer)
    _wrap(trainer, "_init_params", _init_params_then_wait)
    _wrap(trainer, "_update", _update_or_leave_scaler)
    if isinstance(current, LossScaler):
        current._trainer = None
    loss_scaler._trainer = weakref.ref(trainer)
    trainer._amp_loss_scaler = loss_scaler
    if not hasattr(trainer, "_amp_original_scale"):
        trainer._amp_original_scale = trainer._scale
    trainer._amp_unscaled = False
    return trainer


def _kvstore_type(trainer: Trainer) -> str:
    kv = trainer._kvstore if trainer._kv_initialized else trainer._kvstore_params["kvstore"]
    if kv is None:
        return ""
    return kv if isinstance(kv, str) else str(getattr(kv, "type", ""))


def _keep_updates_off_kvstore(trainer: Trainer) -> None:
    """Make the trainer update on the workers, where the step hook can still skip."""
    kv_type = _kvstore_type(trainer)
    why = "would apply updates on the kvstore before gluon_amp can check gradients for inf/NaN"
    if trainer._contains_sparse_weight:
        raise ValueError(
            f"sparse weights force update_on_kvstore=True, which {why}; use dense weights"
        )
    if "async" in kv_type:
        raise ValueError(
            f"kvstore {kv_type!r} forces update_on_kvstore=True, which {why}; "
            f"use 'dist_sync' or 'dist_device_sync'"
        )
    if trainer._contains_sparse_grad and "dist" in kv_type:
        raise ValueError(
            f"sparse gradients on kvstore {kv_type!r} force update_on_kvstore=True, which {why}; "
            f"use dense gradients (sparse_grad=False)"
        )
    if trainer._kv_initialized and trainer._update_on_kvstore:
        if trainer._distributed or trainer._optimizer.num_update > 0:
            raise ValueError(
                f"this trainer already updates on the kvstore, which {why}; call "
                f"amp.init_trainer(trainer) before the first trainer.step()"
            )
        trainer._reset_kvstore()
    if trainer._kvstore_params["update_on_kvstore"]:
        logger.warning("gluon_amp: update_on_kvstore=True switched off (%s)", why)
    trainer._kvstore_params["update_on_kvstore"] = False


class _Wrapped:
    """One of a trainer's methods replaced, on the trainer, by ``wrapper(trainer, method, ...)``.

    It holds the trainer, not a bound method, so that ``copy.deepcopy(trainer)`` gives the copy a
    wrapper of its own instead of one that still calls the original trainer.
    """

    def __init__(self, trainer: Trainer, name: str, wrapper: Callable[..., Any]) -> None:
        self.trainer, self.name, self.wrapper = trainer, name, wrapper

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        method = getattr(type(self.trainer), self.name).__get__(self.trainer)
        return self.wrapper(self.trainer, method, *args, **kwargs)


def _wrap(trainer: Trainer, name: str, wrapper: Callable[..., Any]) -> None:
    if not isinstance(trainer.__dict__.get(name), _Wrapped):
        setattr(trainer, name, _Wrapped(trainer, name, wrapper))


def _init_params_then_wait(trainer: Trainer, init_params: Callable[[], None]) -> None:
    """On a distributed kvstore, finish receiving worker 0's weights before any gradient is pushed.

    Gluon broadcasts the initial weights inside the first ``step()``, under the same kvstore keys
    as the first gradients. With updates on the workers (which gluon_amp requires) nothing orders
    the weight pull before the gradient push, and a server may answer the pull with the summed
    gradients: a worker then starts from gradients instead of weights. Waiting for the broadcast
    closes that race; it runs only while parameters are being initialised on the kvstore.
    """
    init_params()
    if trainer._distributed:
        mx.nd.waitall()


def _update_or_leave_scaler(
    trainer: Trainer, update: Callable[..., None], *args: Any, **kwargs: Any
) -> None:
    """Gluon's ``_update``; when it raises (a stale gradient, say) after the step hook counted
    the step, the scaler and the unscale flag are put back as they were."""
    scaler = trainer._amp_loss_scaler
    before, unscaled = dict(scaler.__dict__), trainer._amp_unscaled
    try:
        update(*args, **kwargs)
    except BaseException:
        scaler.__dict__.update(before)
        trainer._amp_unscaled = unscaled
        raise


def loss_scaler(trainer: Trainer) -> LossScaler:
    """The loss scaler attached to ``trainer`` by :func:`init_trainer`."""
    scaler = getattr(trainer, "_amp_loss_scaler", None)
    if not isinstance(scaler, LossScaler):
        raise RuntimeError(
            "this trainer has no gluon_amp loss scaler: call amp.init_trainer(trainer) first"
        )
    return scaler


@contextlib.contextmanager
def scale_loss(loss: Loss, trainer: Trainer) -> Iterator[Loss]:
    """Yield ``loss * scale`` (a list for a list of losses) to call backward on.

    Works inside and outside ``autograd.record()``. The gradients stay scaled; the trainer's
    next step divides by the scale through ``rescale_grad``.
    """
    scale = loss_scaler(trainer).scale
    trainer._scale = trainer._amp_original_scale / scale
    trainer._amp_unscaled = False
    recording = contextlib.nullcontext() if autograd.is_recording() else autograd.record()
    with recording:
        if isinstance(loss, (list, tuple)):
            scaled = [item * scale if scale != 1.0 else item for item in loss]
        else:
            scaled = loss * scale if scale != 1.0 else loss
    yield scaled


def unscale(trainer: Trainer) -> None:
    """Divide the gradients by the loss scale in place (e.g. before ``clip_global_norm``).

    Idempotent within a step; the following ``step``/``update`` does not unscale again.
    """
    scale = loss_scaler(trainer).scale
    if trainer._amp_unscaled:
        return
    if scale != 1.0:
        with autograd.pause():
            for param in trainer._params:
                if param.grad_req != "null" and param._grad is not None:
                    for grad in param.list_grad():
                        grad *= 1.0 / scale
    trainer._scale = trainer._amp_original_scale
    trainer._amp_unscaled = True


def step_hook(scaler: LossScaler, params: list) -> bool:
    """Check every gradient once, let the scaler decide, and on skip leave everything untouched.

    Called by ``Trainer._update`` (through ``LossScaler.has_overflow``); True means skip.
    """
    found = scaler.checks_nonfinite and has_nonfinite(gradients(params))
    skip = scaler.update(found)
    trainer = scaler._trainer() if getattr(scaler, "_trainer", None) else None
    if trainer is not None:
        trainer._amp_unscaled = False
    if skip:
        with autograd.pause():
            for param in params:
                if param.grad_req == "null" or param._grad is None:
                    continue
                if param.grad_req == "add":  # drop the poisoned accumulation
                    for grad in param.list_grad():
                        grad[:] = 0
                for data in param._check_and_get(param._data, list):
                    data._fresh_grad = False
    return skip
