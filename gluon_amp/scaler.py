"""Loss scalers: pure state machines deciding, step by step, whether to skip and what scale to use.

They never touch MXNet: the trainer hook (``trainer.py``) measures whether the gradients are
finite and reports it with :meth:`LossScaler.update`.
"""

from __future__ import annotations

import copy
import logging
import math
import numbers
import weakref
from typing import Any

__all__ = ["LossScaler", "DynamicLossScaler", "StaticLossScaler", "MAX_SCALE"]

logger = logging.getLogger("gluon_amp")

#: The largest scale: the largest power of two a float32 holds. The loss is scaled in float32, so
#: any larger scale would make every scaled loss infinite.
MAX_SCALE = 2.0**127


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


# What each saved value must be, by type: a check and its description for the error message.
_KINDS = {
    float: (lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool), "a number"),
    int: (_is_integer, "an integer"),
    bool: (lambda v: isinstance(v, bool), "True or False"),
}


class LossScaler:
    """Common state of every loss scaler.

    Attributes
    ----------
    scale : float
        The factor the loss is multiplied by before backward (also readable as ``loss_scale``,
        the name ``mxnet.contrib.amp`` uses).
    last_skipped : bool
        Whether the most recent step was skipped because a gradient was inf or NaN (use it to
        hold back a learning-rate scheduler).
    num_skipped : int
        Steps skipped so far.
    num_steps : int
        Steps attempted so far, skipped ones included.
    """

    #: Whether the trainer must check the gradients for inf/NaN before each update.
    checks_nonfinite: bool = True

    def __init__(self, scale: float) -> None:
        self.scale = float(scale)
        self.last_skipped = False
        self.num_skipped = 0
        self.num_steps = 0
        self._trainer: weakref.ref | None = None  # the one trainer this scaler serves

    def __getstate__(self) -> dict[str, Any]:
        """A copy or a pickle (e.g. for a worker process) serves no trainer until attached."""
        return {**self.__dict__, "_trainer": None}

    def __deepcopy__(self, memo: dict) -> LossScaler:
        """A copy that serves no trainer; within ``copy.deepcopy(trainer)``, the trainer's copy."""
        copied = type(self).__new__(type(self))
        memo[id(self)] = copied
        copied.__dict__.update(copy.deepcopy(self.__getstate__(), memo))
        trainer = self._trainer() if self._trainer is not None else None
        if trainer is not None and id(trainer) in memo:
            copied._trainer = weakref.ref(memo[id(trainer)])
        return copied

    @property
    def loss_scale(self) -> float:
        """The current scale (``mxnet.contrib.amp``'s name for :attr:`scale`)."""
        return self.scale

    def update(self, found_nonfinite: bool) -> bool:
        """Record one step whose gradients were (not) all finite; return True to skip it."""
        self.num_steps += 1
        skip = bool(found_nonfinite) and self.checks_nonfinite
        self.last_skipped = skip
        if skip:
            self.num_skipped += 1
        return skip

    def has_overflow(self, params: list) -> bool:
        """Gluon ``Trainer._update``'s own AMP hook: check, decide, return True to skip the step."""
        from .trainer import step_hook  # the MXNet side lives with the trainer

        return step_hook(self, params)

    # The state every scaler saves, and the type of each value.
    _common: dict[str, type] = {
        "scale": float,
        "last_skipped": bool,
        "num_skipped": int,
        "num_steps": int,
    }
    # The configuration a subclass saves with its state (constructor arguments), by type.
    _config: dict[str, type] = {}
    # The private counters (integers) a subclass saves with its state.
    _counter_keys: tuple[str, ...] = ()

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: configuration, current scale and counters."""
        state = {key: getattr(self, key) for key in [*self._common, *self._config]}
        state.update({key: getattr(self, "_" + key) for key in self._counter_keys})
        state["type"] = type(self).__name__
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (from a scaler of the same type).

        All or nothing: an invalid or incomplete state raises ValueError and changes nothing.
        """
        saved_type = state.get("type") if isinstance(state, dict) else type(state).__name__
        if saved_type != type(self).__name__:
            raise ValueError(
                f"cannot load a {saved_type!r} state into a {type(self).__name__}: "
                f"create the scaler with the same type as the saved one"
            )
        types = {**self._common, **self._config, **dict.fromkeys(self._counter_keys, int)}
        missing = [key for key in types if key not in state]
        if missing:
            raise ValueError(
                f"loss-scaler state lacks {', '.join(missing)}: pass what state_dict() returned"
            )
        for key, kind in types.items():
            is_kind, description = _KINDS[kind]
            _check(
                is_kind(state[key]),
                f"loss-scaler state has {key}={state[key]!r}, not {description}: "
                f"pass what state_dict() returned",
            )
        for key in ("num_skipped", "num_steps", *self._counter_keys):
            _check(state[key] >= 0, f"loss-scaler state has {key}={state[key]!r}, not >= 0")
        before = dict(self.__dict__)
        try:
            for key, kind in {**self._common, **self._config}.items():
                setattr(self, key, kind(state[key]))
            for key in self._counter_keys:
                setattr(self, "_" + key, int(state[key]))
            self._validate()
        except BaseException:
            self.__dict__.update(before)
            raise

    def _validate(self) -> None:
        _check(
            math.isfinite(self.scale) and 0 < self.scale <= MAX_SCALE,
            f"scale must be a finite number > 0 and at most 2**127 (float32's largest power of "
            f"two), got {self.scale}",
        )

    def __repr__(self) -> str:
        config = ", ".join(f"{key}={getattr(self, key)!r}" for key in self._config)
        return f"{type(self).__name__}(scale={self.scale!r}{', ' if config else ''}{config})"


class StaticLossScaler(LossScaler):
    """A constant loss scale (1.0 suits bfloat16, which has float32's exponent range).

    Parameters
    ----------
    scale : float
        The constant scale, > 0.
    skip_nonfinite : bool, default True
        Still check the gradients and skip a step whose gradients hold inf or NaN, so that one bad
        batch cannot poison the weights. False makes the step check-free.
    """

    _config = {"skip_nonfinite": bool}

    def __init__(self, scale: float = 1.0, skip_nonfinite: bool = True) -> None:
        super().__init__(scale)
        self.skip_nonfinite = bool(skip_nonfinite)
        self._validate()

    @property
    def checks_nonfinite(self) -> bool:  # type: ignore[override]
        return self.skip_nonfinite

    @checks_nonfinite.setter
    def checks_nonfinite(self, value: bool) -> None:
        self.skip_nonfinite = bool(value)


class DynamicLossScaler(LossScaler):
    """A loss scale that backs off on overflow and grows after a run of clean steps (float16).

    Every step whose gradients hold inf or NaN is skipped and, from the ``hysteresis``-th
    overflow since the last growth on, the scale is multiplied by ``backoff_factor`` (never below
    ``min_scale``) before the very next step. After ``growth_interval`` clean steps in a row the
    scale is multiplied by ``growth_factor`` (never above ``max_scale``).

    Parameters
    ----------
    init_scale : float, default 2**16
        The first scale, within [min_scale, max_scale] and at most 2**127.
    growth_factor : float, default 2.0
        Growth multiplier, finite and > 1.
    backoff_factor : float, default 0.5
        Back-off multiplier, in (0, 1).
    growth_interval : int, default 2000
        Clean steps in a row before growing, >= 1.
    min_scale : float, default 1.0
        Floor of the scale, > 0 (a scale collapsing towards 0 silences every gradient).
    max_scale : float, default 2**24
        Ceiling of the scale, >= min_scale; ``math.inf`` for none (as in PyTorch). Whatever it
        is, the scale never exceeds :data:`MAX_SCALE` = 2**127, the largest float32 power of two.
    hysteresis : int, default 1
        Overflows tolerated since the last growth before backing off (DeepSpeed's meaning), >= 1.
    """

    _config = {
        "growth_factor": float,
        "backoff_factor": float,
        "growth_interval": int,
        "min_scale": float,
        "max_scale": float,
        "hysteresis": int,
    }
    _counter_keys = ("clean_steps", "overflows_since_growth")

    def __init__(
        self,
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
        min_scale: float = 1.0,
        max_scale: float = 2.0**24,
        hysteresis: int = 1,
    ) -> None:
        super().__init__(init_scale)
        self.growth_factor = float(growth_factor)
        self.backoff_factor = float(backoff_factor)
        self.growth_interval = growth_interval
        self.min_scale = float(min_scale)
        self.max_scale = float(max_scale)
        self.hysteresis = hysteresis
        self._clean_steps = 0
        self._overflows_since_growth = 0
        self._warned_at_floor = False
        self._validate()

    def _validate(self) -> None:
        super()._validate()
        _check(
            math.isfinite(self.growth_factor) and self.growth_factor > 1,
            f"growth_factor must be a finite number > 1, got {self.growth_factor}",
        )
        _check(
            0 < self.backoff_factor < 1,
            f"backoff_factor must be in (0, 1), got {self.backoff_factor}",
        )
        for name in ("growth_interval", "hysteresis"):
            value = getattr(self, name)
            _check(
                _is_integer(value) and value >= 1,
                f"{name} must be an integer >= 1, got {value!r}",
            )
            setattr(self, name, int(value))
        _check(
            math.isfinite(self.min_scale) and 0 < self.min_scale <= MAX_SCALE,
            f"min_scale must be a finite number > 0 and at most 2**127, got {self.min_scale}",
        )
        _check(
            self.max_scale >= self.min_scale,  # also refuses NaN; inf means no ceiling
            f"max_scale must be >= min_scale={self.min_scale} (inf for no ceiling), "
            f"got {self.max_scale}",
        )
        _check(
            self.min_scale <= self.scale <= self.max_scale,
            f"init_scale must be in [min_scale, max_scale] = [{self.min_scale}, "
            f"{self.max_scale}], got {self.scale}",
        )

    def update(self, found_nonfinite: bool) -> bool:
        skip = super().update(found_nonfinite)
        if skip:
            self._clean_steps = 0
            self._overflows_since_growth += 1
            if self._overflows_since_growth >= self.hysteresis:
                self._back_off()
        else:
            self._clean_steps += 1
            if self._clean_steps >= self.growth_interval:
                self.scale = min(self.scale * self.growth_factor, self.max_scale, MAX_SCALE)
                self._clean_steps = 0
                self._overflows_since_growth = 0
                if self.scale > self.min_scale:
                    self._warned_at_floor = False
        return skip

    def _back_off(self) -> None:
        self.scale = max(self.scale * self.backoff_factor, self.min_scale)
        if self.scale == self.min_scale and not self._warned_at_floor:
            self._warned_at_floor = True  # once per stay at the floor
            logger.warning(
                "loss scale is at min_scale=%g after %d skipped steps and cannot back off "
                "further: if steps keep being skipped, look for inf/NaN in the inputs, the loss "
                "or the learning rate",
                self.min_scale,
                self.num_skipped,
            )
