"""Item 2: outputs of a model with float16 weights reach losses and metrics in the shapes real
scripts write them; losses under amp.init or autocast are float32 already."""

from __future__ import annotations

from realcase import check


def test_losses_in_attributes_dicts_wrappers_and_parameters():
    """dmlc/gluon-cv@567775619f3b97d47e7c360748912a4fd883ff52, scripts/segmentation/train.py
    (a criterion wrapped in ``DataParallelCriterion``, kept on ``self``, the model cast in
    ``__init__``) and microsoft/DeepSpeedExamples@83757d9c937daabd1089a08051061706cb73900d,
    training/BingBertGlue/run_glue_classifier_bert_base.py (``CrossEntropyLoss`` objects)."""
    check(
        """
        import torch
        from torch import nn
        from mxnet import autograd, gluon
        from gluoncv.utils.parallel import DataParallelCriterion

        class Trainer:
            def __init__(self, args):
                model = get_segmentation_model(args.model)
                model.cast('float16')
                self.net = model
                self.criterion = DataParallelCriterion(MixSoftmaxCrossEntropyLoss(), args.ctx)
                self.losses = {'seg': gluon.loss.SoftmaxCrossEntropyLoss()}

            def training(self, data, target):
                with autograd.record(True):
                    outputs = self.net(data)
                    losses = self.criterion(outputs, target)  # AMP101
                    extra = self.losses['seg'](outputs, target)  # AMP101
                    autograd.backward(losses + extra)  # AMP301
                self.optimizer.step(1)

        def train(model, criterion, loader):
            for x, y in loader:
                loss = criterion(model(x), y)  # AMP101
                loss.backward()  # AMP301
                optimizer.step()

        bert = nn.Linear(768, 16).half()
        train(bert, nn.CrossEntropyLoss(), loader)
        """
    )


def test_metrics_appended_outputs_and_arithmetic_before_the_softmax():
    """dmlc/gluon-cv@567775619f3b97d47e7c360748912a4fd883ff52,
    scripts/classification/imagenet/train_imagenet.py: ``train_metric.update(label,
    outputs)`` and the distillation teacher's ``nd.softmax(teacher(X) / T)``; outputs collected
    with ``append``."""
    check(
        """
        import mxnet as mx
        from mxnet import autograd, gluon, nd
        net.cast('float16')
        teacher.cast('float16')
        metric = mx.metric.Accuracy()
        L = gluon.loss.SoftmaxCrossEntropyLoss()
        for data, label in loader:
            teacher_prob = [nd.softmax(teacher(X) / 4.0) for X in data]  # AMP101
            outputs = []
            with autograd.record():
                for X in data:
                    outputs.append(net(X))
                loss = [L(yhat, y) for yhat, y in zip(outputs, label)]  # AMP101
            autograd.backward(loss)
            trainer.step(64)
            metric.update(label, outputs)  # AMP101
        """
    )


def test_trap_losses_under_amp_init_or_autocast_and_outputs_cast_first():
    """dmlc/gluon-cv@567775619f3b97d47e7c360748912a4fd883ff52,
    scripts/detection/faster_rcnn/train_faster_rcnn.py (``amp.init()`` with the network cast
    to float16: MXNet's lists keep softmax and the losses in float32) and
    scripts/pose/simple_pose/train_simple_pose.py (``L(nd.cast(yhat, 'float32'), ...)``)."""
    check(
        """
        import torch
        import torch.nn.functional as F
        from mxnet import autograd, gluon, nd
        from mxnet.contrib import amp
        amp.init()
        net.cast('float16')
        amp.init_trainer(trainer)
        L = gluon.loss.SoftmaxCrossEntropyLoss()
        l2 = gluon.loss.L2Loss()
        with autograd.record():
            out = net(x)
            loss = L(out, y) + l2(nd.cast(out, 'float32'), y)
            with amp.scale_loss(loss, trainer) as scaled:
                autograd.backward(scaled)
        trainer.step(1)
        model = torch.nn.Linear(512, 16).cuda().half()
        with torch.autocast('cuda'):
            logits = model(x)
            ce = F.cross_entropy(logits, y)
        scaler.scale(ce).backward()
        scaler.step(optimizer)
        """
    )


def test_each_output_of_a_list_a_loop_runs_over():
    """espnet 202402 (PyPI), espnet/nets/pytorch_backend/e2e_asr_transformer.py lines 193-237:
    the encoder returns ``hs_pad, hs_mask, hs_intermediates`` and, with
    ``--intermediate-ctc-layer``, ``for hs_intermediate in hs_intermediates:`` feeds each to
    ``self.ctc(...)``; shortened. The trap: a loop over the data, whose items are inputs, and
    a loop over outputs cast to float32 first."""
    check(
        """
        import torch
        from torch import nn
        class E2E(nn.Module):
            def __init__(self):
                super().__init__()
                self.encoder = nn.Linear(80, 256)
                self.ctc = nn.CTCLoss()
            def forward(self, xs_pad, ilens, ys_pad, olens):
                hs_pad, hs_intermediates = self.encoder(xs_pad)
                loss_ctc = self.ctc(hs_pad, ys_pad, ilens, olens)  # AMP101
                for hs_intermediate in hs_intermediates:
                    loss_ctc = loss_ctc + self.ctc(hs_intermediate, ys_pad, ilens, olens)  # AMP101
                for hs_float in [h.float() for h in hs_intermediates]:
                    loss_ctc = loss_ctc + self.ctc(hs_float, ys_pad, ilens, olens)
                return loss_ctc
        model = E2E().half()
        criterion = nn.CrossEntropyLoss()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for features, labels in loader:
            loss = criterion(model.encoder(features.half()).float(), labels)
            for label in labels:
                loss = loss + criterion(label, labels)
            loss.backward()
        """,
        select={"AMP101"},
    )
