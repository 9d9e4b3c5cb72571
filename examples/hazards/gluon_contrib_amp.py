"""A language model trained with mxnet.contrib.amp: the API used in the wrong order."""

import mxnet as mx
from mxnet import autograd, gluon
from mxnet.contrib import amp
from mxnet.gluon import nn, rnn

VOCAB = 33280
HIDDEN = 640
CLIP = 0.25


class RNNModel(gluon.HybridBlock):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.embedding = nn.Embedding(VOCAB, HIDDEN)
        self.rnn = rnn.LSTM(HIDDEN, num_layers=2, dropout=0.2)
        self.decoder = nn.Dense(VOCAB, flatten=False, in_units=HIDDEN)

    def hybrid_forward(self, F, inputs, state):
        output, state = self.rnn(self.embedding(inputs), state)
        return self.decoder(output), state


def train(batches, epochs=3):
    model = RNNModel()
    model.initialize(mx.init.Xavier())
    model.hybridize(static_alloc=True)
    state = model.rnn.begin_state(batch_size=32)
    model(mx.nd.zeros((35, 32)), state)  # warm-up pass: builds and caches the graph
    amp.init()  # AMP304
    trainer = gluon.Trainer(model.collect_params(), "sgd", {"learning_rate": 20})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    params = [p for p in model.collect_params().values() if p.grad_req != "null"]
    for _ in range(epochs):
        for data, target in batches:
            with autograd.record():
                output, state = model(data, state)
                loss = loss_fn(output, target)
            with amp.scale_loss(loss, trainer) as scaled_loss:  # AMP302 AMP303
                autograd.backward(scaled_loss)
            grads = [p.grad() for p in params]
            gluon.utils.clip_global_norm(grads, CLIP * 32 * 35)  # AMP305
            trainer.step(32)


def finetune(model, batches):
    trainer = gluon.Trainer(model.collect_params(), "adam", {"learning_rate": 1e-4})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    for data, target in batches:
        with autograd.record():
            output, _ = model(data, None)
            loss = loss_fn(output, target)
            with amp.scale_loss(loss, trainer) as scaled_loss:  # AMP303
                autograd.backward(scaled_loss)
        trainer.step(data.shape[1])
