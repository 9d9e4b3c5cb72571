"""Every trap of the issue, by name: code that looks like a hazard and is not. All default rules
run on each snippet and none may report anything."""

from __future__ import annotations

import textwrap

import pytest

from amplint.engine import lint_source
from amplint.settings import Settings

TRAPS = {
    "deepspeed-engine-backward": """
        import torch
        model = model.half()
        loss = criterion(model(x), y)
        model_engine.backward(loss)
        model_engine.step()
    """,
    "apex-fp16-optimizer-backward": """
        import torch
        from apex.fp16_utils import FP16_Optimizer
        model = model.cuda().half()
        sgd = torch.optim.SGD(model.parameters(), lr=0.1)
        optimizer = FP16_Optimizer(sgd, dynamic_loss_scale=True)
        loss = criterion(model(x).float(), y)
        optimizer.backward(loss)
    """,
    "callable-loss-scaler-object": """
        import torch
        def step(model, x, y, loss_scaler):
            with torch.autocast("cuda", dtype=torch.float16):
                loss = model(x).float().mean()
            loss_scaler(loss, optimizer, parameters=model.parameters())
    """,
    "keras-compile-wraps-the-optimizer": """
        from tensorflow import keras
        from tensorflow.keras import layers
        keras.mixed_precision.set_global_policy("mixed_float16")
        output = layers.Activation("softmax", dtype="float32")
        model = keras.Sequential([layers.Dense(64), layers.Dense(16), output])
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=64)
    """,
    "scaled-loss-rebound-to-the-same-name": """
        from mxnet import autograd
        from mxnet.contrib import amp
        amp.init()
        amp.init_trainer(trainer)
        with autograd.record():
            loss = loss_fn(net(x), y)
            with amp.scale_loss(loss, trainer) as loss:
                autograd.backward(loss)
    """,
    "static-scaling": """
        from mxnet import autograd, gluon
        net.cast("float16")
        trainer = gluon.Trainer(params, "sgd", {"rescale_grad": 1.0 / 1024})
        with autograd.record():
            loss = loss_fn(net(x).astype("float32"), y)
        (loss * 1024).backward()
    """,
    "cast-by-a-helper-or-the-next-layer": """
        from mxnet import gluon
        net.cast("float16")
        loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
        loss = loss_fn(to_float32(net(x)), y)
        loss = loss_fn(float32_head(net(x)), y)
    """,
    "layers-forced-to-float32": """
        import torch
        from torch import nn
        body = nn.Linear(1024, 1024).half()
        head = nn.Linear(1024, 10, dtype=torch.float32)
    """,
    "numbers-that-are-not-dimensions": """
        import mxnet as mx
        from mxnet.gluon import nn
        from mxnet.contrib import amp
        amp.init()
        conv = nn.Conv2D(64, kernel_size=7, strides=3, padding=3)
        pool = nn.MaxPool2D(pool_size=3, strides=2)
        lrn = mx.nd.LRN(x, nsize=5)
        net = resnet(layers=[3, 4, 23, 3], channels=[64, 256, 512, 1024, 2048])
        metric = mx.metric.TopKAccuracy(top_k=5)
        noise = mx.nd.random.normal(shape=(3, 17, 33))
    """,
    "three-input-channels-of-the-first-convolution": """
        import torch
        from torch import nn
        stem = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3).half()
        gray = nn.Conv2d(in_channels=1, out_channels=32, kernel_size=3).half()
    """,
    "code-in-comments-strings-and-docstrings": '''
        """Train with amp.init() and nn.Dense(10); loss.backward() after net.cast('float16')."""
        # net.cast("float16"); loss.backward()
        usage = "model.half(); loss.backward(); nn.Linear(10, 10)"
        print(usage)
    ''',
    "half-for-a-checkpoint-or-a-round-trip": """
        import torch
        import torch.nn.functional as F
        torch.save(model.half().state_dict(), "fp16.pt")
        model = model.half().float()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
    """,
    "bfloat16-autocast": """
        import torch
        import torch.nn.functional as F
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
    """,
    "a-variable-named-amp": """
        from mxnet import autograd
        from mxnet.gluon import nn
        amp = signal.amplitude()
        amp.init()
        layer = nn.Dense(10)
        with autograd.record():
            loss = loss_fn(layer(x), y)
        loss.backward()
    """,
    "odd-dimensions-in-a-float32-only-file": """
        import torch
        from torch import nn
        from torch.utils.data import DataLoader
        model = nn.Sequential(nn.Linear(100, 30), nn.Linear(30, 10))
        loader = DataLoader(data, batch_size=100)
        loss = nn.CrossEntropyLoss()(model(x), y)
        loss.backward()
    """,
    "float32-branch-of-the-amp-switch": """
        import torch
        if args.amp:
            with torch.autocast("cuda"):
                loss = model(x).mean()
            scaler.scale(loss).backward()
        else:
            loss = model(x).mean()
            loss.backward()
    """,
}


@pytest.mark.parametrize("source", TRAPS.values(), ids=TRAPS.keys())
def test_trap_is_not_reported(source):
    findings = lint_source(textwrap.dedent(source), "trap.py", settings=Settings())
    assert findings == [], [f"{f.line}: {f.code} {f.message}" for f in findings]
