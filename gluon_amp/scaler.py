"""Loss scalers: pure state machines deciding, step by step, whether to skip and what scale to use.

They never touch MXNet: the trainer hook (``trainer.py``) measures whether the gradients are
finite and reports it with :meth:`LossScaler.update`.
"""

from __future__ import annotations

import logging
import math
import numbers
from typing import Any

__all__ = ["LossScaler", "DynamicLossScaler", "StaticLossScaler"]

logger = logging.getLogger("gluon_amp")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


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
        self._trainer = None  # weak reference to the one trainer this scaler serves

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

    # The configuration keys a subclass saves with its state (constructor arguments).
    _config_keys: tuple[str, ...] = ()
    # The private counters a subclass saves with its state.
    _counter_keys: tuple[str, ...] = ()

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: configuration, current scale and counters."""
        keys = ("scale", "last_skipped", "num_skipped", "num_steps")
        state = {key: getattr(self, key) for key in keys + self._config_keys}
        state.update({key: getattr(self, "_" + key) for key in self._counter_keys})
        state["type"] = type(self).__name__
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (from a scaler of the same type).

        All or nothing: an invalid or incomplete state raises ValueError and changes nothing.
        """
        kind = state.get("type") if isinstance(state, dict) else type(state).__name__
        if kind != type(self).__name__:
            raise ValueError(
                f"cannot load a {kind!r} state into a {type(self).__name__}: "
                f"create the scaler with the same type as the saved one"
            )
        keys = ("scale", "last_skipped", "num_skipped", "num_steps")
        missing = [k for k in keys + self._config_keys + self._counter_keys if k not in state]
        if missing:
            raise ValueError(
                f"loss-scaler state lacks {', '.join(missing)}: pass what state_dict() returned"
            )
        before = dict(self.__dict__)
        try:
            for key in self._config_keys:
                setattr(self, key, state[key])
            for key in self._counter_keys:
                setattr(self, "_" + key, int(state[key]))
            self.scale = float(state["scale"])
            self.last_skipped = bool(state["last_skipped"])
            self.num_skipped = int(state["num_skipped"])
            self.num_steps = int(state["num_steps"])
            self._validate()
        except BaseException:
            self.__dict__.update(before)
            raise

    def _validate(self) -> None:
        _check(
            math.isfinite(self.scale) and self.scale > 0,
            f"scale must be a finite number > 0, got {self.scale}",
        )

    def __repr__(self) -> str:
        config = ", ".join(f"{key}={getattr(self, key)!r}" for key in self._config_keys)
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

    _config_keys = ("skip_nonfinite",)

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
        The first scale, within [min_scale, max_scale].
    growth_factor : float, default 2.0
        Growth multiplier, > 1.
    backoff_factor : float, default 0.5
        Back-off multiplier, in (0, 1).
    growth_interval : int, default 2000
        Clean steps in a row before growing, >= 1.
    min_scale : float, default 1.0
        Floor of the scale, > 0 (a scale collapsing towards 0 silences every gradient).
    max_scale : float, default 2**24
        Ceiling of the scale, >= min_scale.
    hysteresis : int, default 1
        Overflows tolerated since the last growth before backing off (DeepSpeed's meaning), >= 1.
    """

    _config_keys = (
        "growth_factor",
        "backoff_factor",
        "growth_interval",
        "min_scale",
        "max_scale",
        "hysteresis",
    )
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
            self.growth_factor > 1,
            f"growth_factor must be > 1, got {self.growth_factor}",
        )
        _check(
            0 < self.backoff_factor < 1,
            f"backoff_factor must be in (0, 1), got {self.backoff_factor}",
        )
        for name in ("growth_interval", "hysteresis"):
            value = getattr(self, name)
            _check(
                isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1,
                f"{name} must be an integer >= 1, got {value!r}",
            )
        _check(
            math.isfinite(self.min_scale) and self.min_scale > 0,
            f"min_scale must be a finite number > 0, got {self.min_scale}",
        )
        _check(
            self.max_scale >= self.min_scale,
            f"max_scale must be >= min_scale={self.min_scale}, got {self.max_scale}",
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
                self.scale = min(self.scale * self.growth_factor, self.max_scale)
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
