"""Image classification on CIFAR-10 with the network cast to float16 by hand, done right.

gluon_amp's init_trainer gives a trainer a dynamic loss scaler even without amp.init() (for
networks cast by hand); contrib's init_trainer would insist on amp.init() first."""

import argparse

import mxnet as mx
from mxnet import autograd, gluon
from mxnet.gluon import nn

import gluon_amp as amp

parser = argparse.ArgumentParser()
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument("--epochs", type=int, default=10)
args = parser.parse_args()

NUM_CLASSES = 16  # 10 real classes, padded to a multiple of 8; the extra logits are never targets


def build_net():
    net = nn.HybridSequential()
    net.add(nn.Conv2D(64, kernel_size=3, padding=1, in_channels=3), nn.Activation("relu"))
    net.add(nn.MaxPool2D(pool_size=2), nn.Flatten())
    net.add(nn.Dense(512), nn.Activation("relu"))
    net.add(nn.Dense(NUM_CLASSES))
    return net


net = build_net()
net.initialize(mx.init.Xavier())
net.cast("float16")
net.hybridize()

transform = gluon.data.vision.transforms.ToTensor()
train_data = gluon.data.vision.CIFAR10(train=True).transform_first(transform)
loader = gluon.data.DataLoader(train_data, batch_size=args.batch_size, shuffle=True)
loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1, "momentum": 0.9})
amp.init_trainer(trainer)
metric = mx.metric.Accuracy()

for epoch in range(args.epochs):
    metric.reset()
    for data, label in loader:
        data = data.astype("float16")
        with autograd.record():
            output = net(data).astype("float32")
            loss = loss_fn(output, label)
            with amp.scale_loss(loss, trainer) as scaled_loss:
                autograd.backward(scaled_loss)
        trainer.step(data.shape[0])
        metric.update([label], [output])
    print(f"epoch {epoch}: accuracy {metric.get()[1]:.3f}")
