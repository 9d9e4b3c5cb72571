"""The long-standing GluonCV recipe: float16 network, float32 master weights, no loss scaling.

Only reported with ``--select AMP306`` (it often trains fine; it is not always safe)."""

import argparse

import mxnet as mx
from mxnet import autograd, gluon
from mxnet.gluon.model_zoo import vision

parser = argparse.ArgumentParser()
parser.add_argument("--dtype", type=str, default="float16")
parser.add_argument("--batch-size", type=int, default=256)
opt = parser.parse_args()

net = vision.resnet50_v1(classes=1000)
net.initialize(mx.init.MSRAPrelu())
net.cast(opt.dtype)
optimizer_params = {"learning_rate": 0.1, "wd": 1e-4, "momentum": 0.9}
if opt.dtype != "float32":
    optimizer_params["multi_precision"] = True
trainer = gluon.Trainer(net.collect_params(), "nag", optimizer_params)
loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()

for data, label in train_data:
    with autograd.record():
        outputs = net(data.astype(opt.dtype, copy=False))
        loss = loss_fn(outputs.astype("float32"), label)
    loss.backward()  # AMP306
    trainer.step(opt.batch_size)
