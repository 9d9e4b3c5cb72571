"""``with amp.recording(net, trainer) as report:`` around real training steps.

While the block runs, a forward pre-hook on ``net`` keeps the inputs of its first call (the
shapes the report is for) and the trainer's loss scaler records, step by step, the scale used,
whether the step was skipped and the scale after it. On leaving the block the hook and the
recorder are removed and ``report`` is filled in as ``amp.report`` fills it, plus the steps.
Nothing is recorded outside the block, and nothing is left behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from mxnet.gluon import Block, Trainer
from mxnet.ndarray import NDArray

from ..trainer import loss_scaler
from .collect import class_name
from .collect import report as build_report
from .model import Report, Step

__all__ = ["recording"]


def _empty(net: Block, alignment: int, min_dimension: int) -> Report:
    return Report(
        class_name(net),
        "no call of the network recorded",
        None,
        "",
        {},
        [],
        [],
        0,
        [],
        alignment,
        min_dimension,
    )


@contextlib.contextmanager
def _first_call(net: Block) -> Iterator[list]:
    """Yield a list that receives the inputs of ``net``'s first call on arrays."""
    calls: list = []

    def keep(block: Block, inputs: Any) -> None:
        if not calls and any(isinstance(x, NDArray) for x in inputs):
            calls.append(tuple(inputs))

    handle = net.register_forward_pre_hook(keep)
    try:
        yield calls
    finally:
        handle.detach()


@contextlib.contextmanager
def _steps_of(trainer: Trainer | None, steps: list[Step]) -> Iterator[None]:
    """Append a :class:`Step` to ``steps`` for every update of ``trainer``'s loss scaler."""
    if trainer is None:
        yield
        return
    scaler = loss_scaler(trainer)
    update = scaler.update  # the class's method, bound

    def recorded(found_nonfinite: bool) -> bool:
        scale = scaler.scale
        skip = update(found_nonfinite)
        steps.append(Step(scale, bool(skip), scaler.scale))
        return skip

    scaler.update = recorded
    try:
        yield
    finally:
        del scaler.update


@contextlib.contextmanager
def recording(
    net: Block, trainer: Trainer | None = None, *, alignment: int = 8, min_dimension: int = 8
) -> Iterator[Report]:
    """Record ``net``'s precision report and, with ``trainer``, the loss scale of every step
    taken inside the block. The report is complete when the block ends.

    ``trainer`` must have been given to ``amp.init_trainer``. Parameters as in ``amp.report``.
    """
    if not isinstance(net, Block):
        raise TypeError(f"amp.recording needs a Gluon Block, got {type(net).__name__}")
    result = _empty(net, alignment, min_dimension)
    with _first_call(net) as calls, _steps_of(trainer, result.steps):
        yield result
    if calls:
        steps = result.steps
        vars(result).update(
            vars(build_report(net, *calls[0], alignment=alignment, min_dimension=min_dimension))
        )
        result.steps = steps
