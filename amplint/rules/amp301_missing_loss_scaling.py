"""float16 gradients computed without loss scaling and without float32 master weights.

Why it matters: float16 cannot represent gradients below about 6e-8; small gradients flush to
zero and training silently stalls or diverges. Loss scaling multiplies the loss before backward
(and divides the gradients after) to keep them representable. bfloat16 has float32's range and
needs no scaling: this rule never fires for bfloat16.

Checked, per backward, in the configurations in which its gradients are float16: the loss
was computed under a float16 `autocast` block (also through a name or a function), through a
model with float16 weights (`net.cast(dtype)`, `.half()`), or the module turns float16 on
for the whole process (`amp.init()`, a `mixed_float16` policy, apex `amp.initialize`) before
the backward runs; and in the configurations in which this backward's loss is not scaled.
Scaling counts per backward, where it applies: inside `amp.scale_loss(...)`, a loss from
`scaler.scale(loss)` (where that GradScaler is enabled), `loss * K` (static scaling,
`grad_scale=K`), Keras compile()/fit() or a `LossScaleOptimizer`; a wrapper's own backward
(DeepSpeed `engine.backward(loss)`, apex/fairseq `optimizer.backward(loss)`,
`accelerator.backward`, a `loss_scaler(...)` object) is not checked. A loss that is a
parameter of the function (a helper such as `def backward(total_loss, scaler)`) is checked at
each call of this module, with the helper's tests bound to what the call passes: the call
and the helper's backward are reported where that call leaves it unscaled. Not reported:
bfloat16, `multi_precision` master weights alone (AMP306's case), a helper another module
calls too, or that no call here passes the loss (its callers decide), code that trains
nothing (no optimizer step reached: a profiler timing backward; `no_grad`, evaluation
functions), and reduced precision another module brings in (its own conditions cannot be
related to this module's).

Example:

    amp.init()
    amp.init_trainer(trainer)
    with autograd.record():
        loss = loss_fn(net(x), y)
    loss.backward()                      # AMP301

Fix: scale the loss:

    with autograd.record():
        loss = loss_fn(net(x), y)
        with amp.scale_loss(loss, trainer) as scaled_loss:
            autograd.backward(scaled_loss)

(PyTorch: `scaler.scale(loss).backward()` with a `GradScaler`; Keras: wrap the optimizer in
`LossScaleOptimizer`.)
"""

from __future__ import annotations

from collections.abc import Iterator

from amplint.conditions import NEVER, Condition
from amplint.precision import FLOAT16, PrecisionModel, union
from amplint.rules.api import Issue, RuleContext
from amplint.scaling import (
    Backward,
    backward_calls,
    gradient_facts,
    loss_from_caller,
    master_weights,
    named_master_weights,
    scaled,
    static_scaling,
    through_callers,
    trains,
    uses_loss_scaling,
)


def unscaled_float16_backwards(ctx: RuleContext) -> Iterator[tuple[Backward, Condition]]:
    """Backward calls of float16 training, each with the configurations in which no
    loss-scaling mechanism covers it."""
    if static_scaling(ctx.source):
        return
    model = ctx.model
    for backward in backward_calls(ctx.index):
        if model.inference_only(backward.site):
            continue
        if backward.keras and uses_loss_scaling(ctx.index):
            continue
        if not loss_from_caller(backward):
            condition = _unscaled(backward, model.cases.runs(backward.site), model)
            if condition.possible:
                yield backward, condition
            continue
        helper = NEVER  # a helper's backward: where any call of it runs it unscaled
        for call, runs in through_callers(backward, model):
            condition = _unscaled(call, runs, model)
            if condition.possible:
                yield call, condition
                helper = helper | condition
        if helper.possible:
            yield backward, helper


def _unscaled(backward: Backward, runs: Condition, model: PrecisionModel) -> Condition:
    """Where ``backward`` (running in ``runs``) computes float16 gradients of an unscaled
    loss in training code."""
    if model.inference_only(backward.site):
        return NEVER
    reduced = union(gradient_facts(backward, model), (FLOAT16,))
    if not reduced.possible or not trains(backward.site, model):
        return NEVER
    return reduced & runs & ~scaled(backward, model)


def check(ctx: RuleContext) -> Iterator[Issue]:
    """Backward calls of float16 training without loss scaling or master weights."""
    master = master_weights(ctx.model)
    for backward, condition in unscaled_float16_backwards(ctx):
        # master weights alone: AMP306's case
        condition = condition & ~(master | named_master_weights(condition))
        if not condition.possible:
            continue
        what = "tape.gradient" if backward.keras else "backward"
        if backward.helper is not None:
            what += f" (run by {backward.helper}())"
        yield Issue(
            backward.site.node,
            f"float16 {what} without loss scaling: small gradients underflow to zero; "
            + _advice(ctx, backward.keras),
            condition=condition,
        )


def _advice(ctx: RuleContext, keras: bool) -> str:
    if keras:
        return "wrap the optimizer in keras.mixed_precision.LossScaleOptimizer"
    modules = {qualname.split(".")[0] for qualname in ctx.index.imports.values()}
    if "torch" in modules and not modules & {"mxnet", "gluon_amp"}:
        return "use torch.cuda.amp.GradScaler: scaler.scale(loss).backward()"
    return "use amp.scale_loss(loss, trainer) inside autograd.record()"


VALID = [
    # Generic helpers: the loss comes from the caller, who may have scaled it (GluonCV's
    # parallel_backward, a Keras optimizer's compute_gradients).
    """
import threading
from mxnet import autograd
from mxnet.contrib import amp
amp.init()
def parallel_backward(losses, sync=True):
    def _worker(loss):
        autograd.backward(loss)
    threads = [threading.Thread(target=_worker, args=(loss,)) for loss in losses]
    if not sync:
        for loss in losses:
            loss.backward()
""",
    """
import tensorflow as tf
tf.keras.mixed_precision.set_global_policy("mixed_float16")
def compute_gradients(loss, var_list, tape=None):
    if tape is None:
        tape = tf.GradientTape()
    if callable(loss):
        with tape:
            loss = loss()
    return tape.gradient(loss, var_list)
""",
    # bfloat16 needs no scaling.
    """
from mxnet import autograd
from mxnet.contrib import amp
amp.init(target_dtype="bfloat16")
with autograd.record():
    loss = loss_fn(net(x), y)
loss.backward()
""",
    """
import torch
for x, y in loader:
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
        loss = criterion(model(x), y)
    loss.backward()
""",
    # The scaled loss rebound to the same name, inside scale_loss.
    """
from mxnet import autograd
from mxnet.contrib import amp
amp.init()
amp.init_trainer(trainer)
with autograd.record():
    loss = loss_fn(net(x), y)
    with amp.scale_loss(loss, trainer) as loss:
        loss.backward()
""",
    # GradScaler, with the scaled loss rebound to the same name.
    """
import torch
scaler = torch.cuda.amp.GradScaler()
with torch.cuda.amp.autocast():
    loss = criterion(model(x), y)
loss = scaler.scale(loss)
loss.backward()
""",
    # Wrappers that scale: DeepSpeed, apex FP16_Optimizer, a loss_scaler object.
    """
import torch
model = model.half()
loss = criterion(model(x), y)
model_engine.backward(loss)
optimizer.backward(loss)
""",
    """
import torch
def train_one_epoch(model, loader, loss_scaler, amp_autocast):
    with torch.autocast("cuda", dtype=torch.float16):
        loss = model(x).sum()
    if loss_scaler is not None:
        loss_scaler(loss, optimizer, clip_grad=1.0)
    else:
        loss.backward()
""",
    # apex's scale_loss.
    """
from apex import amp
model, optimizer = amp.initialize(model.half(), optimizer, opt_level="O2")
with amp.scale_loss(loss, optimizer) as scaled_loss:
    scaled_loss.backward()
""",
    # Static scaling.
    """
from mxnet import autograd
net.cast("float16")
K = 128.0
trainer = gluon.Trainer(net.collect_params(), "sgd", {"rescale_grad": 1.0 / K})
with autograd.record():
    loss = loss_fn(net(x), y)
    scaled = loss * K
scaled.backward()
""",
    """
import mxnet as mx
mx.nd.Cast(data, dtype="float16")
out = mx.sym.SoftmaxOutput(fc, grad_scale=128)
mod.backward()
""",
    # Keras compile()/fit() wraps the optimizer itself.
    """
from tensorflow import keras
keras.mixed_precision.set_global_policy("mixed_float16")
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
model.fit(x, y, batch_size=64)
""",
    """
import tensorflow as tf
from tensorflow import keras
keras.mixed_precision.set_global_policy("mixed_float16")
optimizer = keras.mixed_precision.LossScaleOptimizer(keras.optimizers.Adam())
with tf.GradientTape() as tape:
    loss = loss_fn(y, model(x))
grads = tape.gradient(loss, model.trainable_variables)
""",
    # Keras 3: the loss-scale optimizer's scale_loss.
    """
import keras
import tensorflow as tf
keras.config.set_dtype_policy("mixed_float16")
optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam())
with tf.GradientTape() as tape:
    loss = optimizer.scale_loss(loss_fn(y, model(x)))
grads = tape.gradient(loss, model.trainable_variables)
""",
    # The float32 branch of the AMP switch; a float16 tensor as data is not float16 training.
    """
import torch
if args.amp:
    scaler.scale(loss).backward()
else:
    loss.backward()
x = torch.zeros(4, dtype=torch.float16)
""",
    # .half() to save a checkpoint, or in a .half().float() round trip.
    """
import torch
torch.save(model.half().state_dict(), "model_fp16.pt")
y = x.half().float()
loss = criterion(model(x), y)
loss.backward()
""",
    # A variable that happens to be named amp.
    """
from mxnet import autograd
amp = 0.3
amp.init()
with autograd.record():
    loss = loss_fn(net(x), y)
loss.backward()
""",
    # .half() in an export helper does not make the training loop beside it float16.
    """
import torch
def export(model, path):
    torch.onnx.export(model.half(), torch.zeros(1, 3, 224, 224).half(), path)
def train(model, loader):
    for x, y in loader:
        loss = criterion(model(x), y)
        loss.backward()
""",
    # Master weights only: AMP306's case, not AMP301.
    """
from mxnet import autograd, gluon
net.cast("float16")
trainer = gluon.Trainer(params, "sgd", {"learning_rate": 0.1, "multi_precision": True})
with autograd.record():
    loss = loss_fn(net(x), y)
loss.backward()
""",
]

INVALID = [
    """
from mxnet import autograd, gluon
from mxnet.contrib import amp
amp.init()
trainer = gluon.Trainer(params, "sgd")
amp.init_trainer(trainer)
for x, y in loader:
    with autograd.record():
        loss = loss_fn(net(x), y)
    loss.backward()  # AMP301
    trainer.step(x.shape[0])
""",
    """
import gluon_amp as amp
from mxnet import autograd
amp.init()
with autograd.record():
    loss = loss_fn(net(x), y)
    autograd.backward(loss)  # AMP301
trainer.step(x.shape[0])
""",
    """
from mxnet import autograd
net.cast("float16")
trainer = gluon.Trainer(params, "sgd", {"learning_rate": 0.1})
with autograd.record():
    loss = loss_fn(net(x).astype("float32"), y)
loss.backward()  # AMP301
trainer.step(x.shape[0])
""",
    """
import torch
model = Net().cuda().half()
for x, y in loader:
    loss = criterion(model(x.half()).float(), y)
    loss.backward()  # AMP301
    optimizer.step()
""",
    """
import torch
for x, y in loader:
    with torch.cuda.amp.autocast():
        loss = criterion(model(x), y)
    loss.backward()  # AMP301
    optimizer.step()
""",
    # Dividing the loss for gradient accumulation scales nothing; the loss is rebound.
    """
import torch
for x, y in loader:
    with torch.autocast("cuda"):
        loss, aux = model(x, y)
    loss = loss.mean() / 4
    loss.backward()  # AMP301
    optimizer.step()
""",
    """
import tensorflow as tf
from tensorflow import keras
keras.mixed_precision.set_global_policy("mixed_float16")
with tf.GradientTape() as tape:
    loss = loss_fn(y, model(x))
grads = tape.gradient(loss, model.trainable_variables)  # AMP301
optimizer.apply_gradients(zip(grads, model.trainable_variables))
""",
    """
import keras
import tensorflow as tf
keras.config.set_dtype_policy("mixed_float16")
with tf.GradientTape() as tape:
    loss = loss_fn(y, model(x))
grads = tape.gradient(loss, model.trainable_variables)  # AMP301
optimizer.apply_gradients(zip(grads, model.trainable_variables))
""",
]
