"""gluon_amp: automatic mixed precision for MXNet Gluon, a drop-in for ``mxnet.contrib.amp``.

import gluon_amp as amp
amp.init()                      # bfloat16 on CPU, float16 on GPU
trainer = amp.init_trainer(gluon.Trainer(net.collect_params(), "sgd"))
with autograd.record():
    loss = loss_fn(net(x), y)
with amp.scale_loss(loss, trainer) as scaled:
    scaled.backward()
trainer.step(batch_size)        # skips the step if a gradient is inf/NaN
"""

_INSTALL_HINT = (
    "gluon_amp needs a working MXNet 1.9.1: on Python <= 3.11 run "
    'pip install "gluon-amp[cpu]" (or "gluon-amp[cu112]" for CUDA 11.2), which pins numpy<1.24'
)

try:
    import mxnet as _mxnet  # noqa: F401
except Exception as _error:  # missing, or broken by numpy>=1.24 (np.bool) / Python>=3.12
    raise ImportError(f"{_INSTALL_HINT} ({type(_error).__name__}: {_error})") from None

from mxnet.contrib.amp.amp import (  # noqa: E402  contrib's own functions, already right
    convert_bucketing_module,
    convert_model,
    convert_symbol,
)

from .autocast import init, reset, target_dtype  # noqa: E402
from .checkpoint import load_states, save_states  # noqa: E402
from .convert import convert_hybrid_block  # noqa: E402
from .errors import BFloat16UnavailableError, Float16OnCPUError  # noqa: E402
from .lists import (  # noqa: E402
    list_conditional_fp32_ops,
    list_fp32_ops,
    list_loss_output_functions,
    list_lp16_fp32_ops,
    list_lp16_ops,
    list_lp16_use_fp32_params,
    list_widest_type_cast,
)
from .reporting import recording, report  # noqa: E402
from .scaler import MAX_SCALE, DynamicLossScaler, LossScaler, StaticLossScaler  # noqa: E402
from .trainer import init_trainer, loss_scaler, scale_loss, unscale  # noqa: E402

__all__ = [
    "init",
    "reset",
    "target_dtype",
    "init_trainer",
    "loss_scaler",
    "scale_loss",
    "unscale",
    "report",
    "recording",
    "save_states",
    "load_states",
    "LossScaler",
    "DynamicLossScaler",
    "StaticLossScaler",
    "MAX_SCALE",
    "Float16OnCPUError",
    "BFloat16UnavailableError",
    "convert_hybrid_block",
    "convert_model",
    "convert_symbol",
    "convert_bucketing_module",
    "list_lp16_ops",
    "list_fp32_ops",
    "list_lp16_fp32_ops",
    "list_conditional_fp32_ops",
    "list_widest_type_cast",
    "list_loss_output_functions",
    "list_lp16_use_fp32_params",
]
