"""``with amp.recording(net, trainer) as report:`` around real training steps.

While the block runs, a forward pre-hook on ``net`` keeps the inputs of its first call (the
shapes the report is for; for an imperative network, autocast's wrappers are watched during that
call) and the trainer's step hook (``trainer.step_hook``, which every loss scaler calls to decide
a step) records, step by step, the scale used, whether the step was skipped and the scale after
it. On leaving the block the hooks are removed and ``report`` is filled in as ``amp.report``
fills it, plus the steps.
Nothing is recorded outside the block, and nothing is left behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from mxnet.gluon import Block, Trainer
from mxnet.ndarray import NDArray

from .. import trainer as trainer_module
from ..trainer import loss_scaler
from .collect import assemble, class_name, from_graph, observed_part, reads_a_graph
from .imperative import observing
from .model import Report, Step
from .precision import policy

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


#: Scalers being recorded (by id) and where their steps go; the trainer's step hook is wrapped
#: while this is not empty.
_recorded: dict[int, list[Step]] = {}


def _recording_step_hook(scaler: Any, params: list) -> bool:
    """``trainer.step_hook`` that also records the step of a scaler being recorded."""
    scale = scaler.scale
    skip = _step_hook(scaler, params)
    steps = _recorded.get(id(scaler))
    if steps is not None:
        steps.append(Step(scale, bool(skip), scaler.scale))
    return skip


_step_hook = trainer_module.step_hook


@contextlib.contextmanager
def _steps_of(trainer: Trainer | None, steps: list[Step]) -> Iterator[None]:
    """Append a :class:`Step` to ``steps`` for every step ``trainer``'s loss scaler decides.

    The scaler itself is left alone (it is saved, pickled and copied as it is): the trainer's
    step hook, which every scaler calls, is wrapped while a recording runs.
    """
    if trainer is None:
        yield
        return
    scaler = loss_scaler(trainer)
    if id(scaler) in _recorded:
        raise RuntimeError("this trainer's steps are already being recorded")
    if not _recorded:
        trainer_module.step_hook = _recording_step_hook
    _recorded[id(scaler)] = steps
    try:
        yield
    finally:
        del _recorded[id(scaler)]
        if not _recorded:
            trainer_module.step_hook = _step_hook


@contextlib.contextmanager
def recording(
    net: Block, trainer: Trainer | None = None, *, alignment: int = 8, min_dimension: int = 8
) -> Iterator[Report]:
    """Record ``net``'s precision report and, with ``trainer``, the loss scale of every step
    taken inside the block. The report is complete when the block ends.

    A hybridized network's report is read from its cached graph for the inputs of its first call
    in the block; an imperative network's is recorded from autocast's wrappers during that call
    (in the mode it ran: training or prediction). ``trainer`` must have been given to
    ``amp.init_trainer``. ``alignment`` and ``min_dimension`` as in ``amp.report``.
    """
    if not isinstance(net, Block):
        raise TypeError(f"amp.recording needs a Gluon Block, got {type(net).__name__}")
    rules = policy()
    result = _empty(net, alignment, min_dimension)
    graph = reads_a_graph(net)
    watching = contextlib.nullcontext(None) if graph else observing(net, rules)
    with _first_call(net) as calls, _steps_of(trainer, result.steps), watching as seen:
        yield result
    if not calls:
        return
    if graph:
        part = from_graph(net, calls[0], rules)
    else:
        part = observed_part(net, seen, rules)
    steps = result.steps
    vars(result).update(vars(assemble(net, part, calls[0], rules, alignment, min_dimension)))
    result.steps = steps
