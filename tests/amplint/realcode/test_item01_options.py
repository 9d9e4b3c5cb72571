"""Item 1: options off by default still choose a configuration that runs in reduced precision.

Each case is written for these tests, after the shape of a named real script (repository,
commit, path); the float32 side of each option stays float32.
"""

from __future__ import annotations

from realcase import check


def test_dtype_option_defaulting_to_float32_casts_the_network():
    """dmlc/gluon-cv@567775619f3b97d47e7c360748912a4fd883ff52,
    scripts/classification/imagenet/train_imagenet.py: ``--dtype`` defaults to float32 and
    feeds ``net.cast(opt.dtype)``; float16 is a value the option can take."""
    check(
        """
        import argparse
        from mxnet import autograd, gluon
        from gluoncv.model_zoo import get_model
        parser = argparse.ArgumentParser()
        parser.add_argument('--dtype', type=str, default='float32')
        opt = parser.parse_args()
        net = get_model('resnet50_v1b', classes=1000)
        net.cast(opt.dtype)
        params = {'learning_rate': 0.1}
        if opt.dtype != 'float32':
            params['multi_precision'] = True
        trainer = gluon.Trainer(net.collect_params(), 'nag', params)
        L = gluon.loss.SoftmaxCrossEntropyLoss()
        for data, label in loader:
            with autograd.record():
                outputs = [net(X.astype(opt.dtype, copy=False)) for X in data]
                losses = [L(o, y) for o, y in zip(outputs, label)]  # AMP101 (--dtype float16)
            for l in losses:
                l.backward()
            trainer.step(64)
        """
    )


def test_boolean_flag_gating_half_autocast_and_a_dtype_ternary():
    """microsoft/DeepSpeedExamples@83757d9c937daabd1089a08051061706cb73900d,
    training/BingBertGlue/run_glue_classifier_bert_base.py (``if args.fp16: model.half()``) and
    awslabs/sockeye@871d9863d6a657d87de1c90f44977c5b70c99c7e, sockeye/training.py
    (``autocast`` enabled by a flag): each is reduced only with its flag."""
    check(
        """
        import argparse
        import torch
        from torch import nn
        parser = argparse.ArgumentParser()
        parser.add_argument('--fp16', action='store_true')
        parser.add_argument('--amp', action='store_true')
        args = parser.parse_args()
        model = nn.Linear(768, 10)  # AMP201 (--fp16)
        if args.fp16:
            model.half()
        loss_fct = nn.CrossEntropyLoss()
        for ids, labels in loader:
            logits = model(ids)
            loss = loss_fct(logits.view(-1, 3), labels.view(-1))  # AMP101 (--fp16)
            loss.backward()  # AMP301 (--fp16)
            optimizer.step()
        dtype = 'float16' if args.amp else 'float32'
        head = nn.Linear(768, 1001, dtype=getattr(torch, dtype))  # AMP201 (--amp)
        """
    )


def test_autocast_through_a_configurator_global_and_a_dtype_table():
    """karpathy/nanoGPT@3adf61e154c3fe3fca428ad6bc3818b27a3b8291, bench.py: ``dtype`` is a
    global the configurator may override, mapped to a torch dtype by a dict and fed to
    ``torch.amp.autocast``; the loop has no GradScaler."""
    check(
        """
        from contextlib import nullcontext
        import torch
        device = 'cuda'
        dtype = 'bfloat16'
        exec(open('configurator.py').read())
        table = {'float32': torch.float32, 'bfloat16': torch.bfloat16, 'float16': torch.half}
        ptdtype = table[dtype]
        amp_ctx = torch.amp.autocast(device_type='cuda', dtype=ptdtype)
        ctx = nullcontext() if device == 'cpu' else amp_ctx
        for step in range(10):
            with ctx:
                logits, loss = model(X, Y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # AMP301 (device!=cpu dtype=float16)
            optimizer.step()
        """
    )


def test_keras_policy_behind_an_absl_flag():
    """keras-team/keras-cv@94b0a551d03ee9de3d81663e2c1a680cb113f7f1,
    examples/training/classification/imagenet/basic_training.py: ``mixed_float16`` only with
    ``--use_mixed_precision``, a softmax classifier head."""
    check(
        """
        from absl import flags
        from keras_cv import models
        from tensorflow import keras
        flags.DEFINE_boolean('use_mixed_precision', False, 'fp16 training')
        FLAGS = flags.FLAGS
        if FLAGS.use_mixed_precision:
            keras.mixed_precision.set_global_policy('mixed_float16')
        model = models.ImageClassifier(  # AMP101 (--use_mixed_precision)
            backbone=backbone, num_classes=1000, activation='softmax'
        )
        model.compile(optimizer='sgd', loss='categorical_crossentropy')
        model.fit(train_ds, epochs=2)
        """
    )


def test_trap_the_float32_side_of_each_option_stays_float32():
    """ultralytics/yolov5@5081342f04fb287fc2e5f2b5a4e06752b7937b1c, train.py
    (``autocast(amp)`` with ``GradScaler(enabled=amp)``) and
    dmlc/gluon-nlp@14553a0c19790a3b03e8107471c987c7aa4f8faa,
    scripts/machine_translation/train_transformer.py (``amp.init()`` and ``amp.scale_loss``
    only with ``--fp16``; the plain backward on the other side)."""
    check(
        """
        import argparse
        import torch
        from mxnet import autograd
        from mxnet.contrib import amp
        parser = argparse.ArgumentParser()
        parser.add_argument('--fp16', action='store_true')
        parser.add_argument('--amp', action='store_true')
        args = parser.parse_args()
        scaler = torch.cuda.amp.GradScaler(enabled=args.amp)
        for imgs, targets in loader:
            with torch.cuda.amp.autocast(args.amp):
                loss = compute_loss(model(imgs), targets)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        if args.fp16:
            amp.init()
            amp.init_trainer(trainer)
        with autograd.record():
            loss_l = [net(x) for x in batch]
        if args.fp16:
            with autograd.record():
                with amp.scale_loss(loss_l, trainer) as scaled:
                    for loss in scaled:
                        loss.backward()
        else:
            for loss in loss_l:
                loss.backward()
        trainer.step(1)
        """
    )


def test_trap_two_functions_the_script_picks_between_and_an_undetermined_dtype():
    """pytorch/examples@77f55b912142e11fcfdf5b530231fb9c52f181e8,
    distributed/minGPT-ddp/mingpt/trainer.py (a training step chosen by a flag); a dtype that
    is a parameter no call passes cannot be folded: never a finding."""
    check(
        """
        import argparse
        import torch
        parser = argparse.ArgumentParser()
        parser.add_argument('--amp', action='store_true')
        args = parser.parse_args()
        def step_amp(model, x, y):
            with torch.autocast('cuda'):
                loss = criterion(model(x), y)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
        def step_fp32(model, x, y):
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
        step = step_amp if args.amp else step_fp32
        for x, y in loader:
            step(model, x, y)
        def build(dtype):
            net = torch.nn.Linear(512, 1001)
            return net.to(dtype)
        """
    )
