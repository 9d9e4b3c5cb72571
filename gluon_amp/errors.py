"""Errors gluon_amp raises for what MXNet would only report later and obscurely."""

from __future__ import annotations

from mxnet.base import MXNetError

__all__ = ["Float16OnCPUError"]


class Float16OnCPUError(MXNetError):
    """An operator with no float16 kernel on CPU was about to run in float16 on a CPU context."""

    def __init__(self, op_name: str) -> None:
        super().__init__(
            f"{op_name} has no float16 kernel on CPU: float16 AMP needs a GPU context; "
            f"on CPU use amp.init('bfloat16') (call amp.reset() first)"
        )
