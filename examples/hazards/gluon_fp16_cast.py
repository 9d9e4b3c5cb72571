"""Image classification on CIFAR-10 with the network cast to float16 by hand (the old recipe)."""

import argparse

import mxnet as mx
from mxnet import autograd, gluon
from mxnet.gluon import nn

parser = argparse.ArgumentParser()
parser.add_argument("--batch-size", type=int, default=100)
parser.add_argument("--epochs", type=int, default=10)
args = parser.parse_args()

NUM_CLASSES = 10


def build_net():
    net = nn.HybridSequential()
    net.add(nn.Conv2D(64, kernel_size=3, padding=1, in_channels=3), nn.Activation("relu"))
    net.add(nn.MaxPool2D(pool_size=2), nn.Flatten())
    net.add(nn.Dense(500), nn.Activation("relu"))  # AMP201
    net.add(nn.Dense(NUM_CLASSES))  # AMP201
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
metric = mx.metric.Accuracy()

for epoch in range(args.epochs):
    metric.reset()
    for data, label in loader:
        data = data.astype("float16")
        with autograd.record():
            output = net(data)
            loss = loss_fn(output, label)  # AMP101
        loss.backward()  # AMP301
        trainer.step(data.shape[0])
        metric.update([label], [output.astype("float32")])
    print(f"epoch {epoch}: accuracy {metric.get()[1]:.3f}")
