"""Item 8: a batch size is reported only for the models whose costly GEMMs have the batch as
their row dimension — an MLP, an RNN — trained from that loader."""

from __future__ import annotations

from realcase import check


def test_an_rnn_language_model_and_a_gluon_mlp():
    """pytorch/examples@77f55b912142e11fcfdf5b530231fb9c52f181e8,
    word_language_model/main.py (an embedding, an LSTM and a decoder, ``--batch_size 20``),
    here run under float16 autocast, and an MLP of Dense layers in Gluon under ``amp.init()``."""
    check(
        """
        import argparse
        import torch
        from torch import nn
        from torch.utils.data import DataLoader
        from mxnet import autograd, gluon
        from mxnet.contrib import amp
        parser = argparse.ArgumentParser()
        parser.add_argument('--batch_size', type=int, default=20)
        args = parser.parse_args()

        class RNNModel(nn.Module):
            def __init__(self, ntoken=33280, ninp=256, nhid=256):
                super().__init__()
                self.encoder = nn.Embedding(ntoken, ninp)
                self.rnn = nn.LSTM(ninp, nhid, 2)
                self.decoder = nn.Linear(nhid, ntoken)

        model = RNNModel()
        loader = DataLoader(corpus, batch_size=args.batch_size)  # AMP202
        for data, targets in loader:
            with torch.autocast('cuda', dtype=torch.float16):
                output = model(data)
                loss = criterion(output, targets)
            scaler.scale(loss).backward()
            scaler.step(optimizer)

        amp.init()
        mlp = gluon.nn.HybridSequential()
        mlp.add(gluon.nn.Dense(256, activation='relu'), gluon.nn.Dense(16))
        train = gluon.data.DataLoader(mnist, batch_size=100, shuffle=True)  # AMP202
        for x, y in train:
            with autograd.record():
                l = loss_fn(mlp(x), y)
            l.backward()  # AMP301
            trainer.step(100)
        """
    )


def test_trap_cnn_undetermined_model_and_validation_loader():
    """microsoft/DeepSpeedExamples@83757d9c937daabd1089a08051061706cb73900d,
    training/cifar/cifar10_deepspeed.py (a CNN, ``test_batch_size=4``) and
    dmlc/gluon-cv@567775619f3b97d47e7c360748912a4fd883ff52,
    scripts/classification/imagenet/train_imagenet.py (``get_model(name)``: not shown)."""
    check(
        """
        import torch
        from torch import nn
        from torch.utils.data import DataLoader
        from gluoncv.model_zoo import get_model

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 64, 5)
                self.fc = nn.Linear(1600, 128)

        net = Net().half()
        train = DataLoader(trainset, batch_size=100, shuffle=True)
        for x, y in train:
            loss = criterion(net(x.half()).float(), y)
            loss.backward()
            optimizer.step()
        resnet = get_model('resnet50_v1', classes=1000)
        resnet.cast('float16')
        batches = torch.utils.data.DataLoader(data, batch_size=100)
        for x, y in batches:
            resnet(x).backward()
            trainer.step(100)
        mlp = nn.Sequential(nn.Linear(784, 512), nn.Linear(512, 16)).half()
        test = DataLoader(testset, batch_size=4)
        with torch.no_grad():
            for x, y in test:
                correct = (mlp(x.half()).argmax(1) == y).sum()
        """,
        select={"AMP202"},
    )
