"""Item 10: documented exemptions that do not apply — a cast in a branch the loss never runs
in, a clipping threshold multiplied by the loss scale through a variable — and the cases
where they are missing."""

from __future__ import annotations

from realcase import check


def test_a_cast_in_a_branch_the_loss_does_not_see():
    """dmlc/gluon-cv@567775619f3b97d47e7c360748912a4fd883ff52,
    scripts/action-recognition/train_recognizer.py (the network cast with ``--dtype`` unless
    ``--use-amp``); the loss of the other branch, with the uncast network, is float32."""
    check(
        """
        import argparse
        from mxnet import autograd, gluon
        from mxnet.contrib import amp
        parser = argparse.ArgumentParser()
        parser.add_argument('--export', action='store_true')
        args = parser.parse_args()
        L = gluon.loss.SoftmaxCrossEntropyLoss()
        if args.export:
            net.cast('float16')
            net.export('model-fp16')
        else:
            with autograd.record():
                loss = L(net(x), y)
            loss.backward()
            trainer.step(1)
        student.cast('float16')
        with autograd.record():
            loss = L(student(x), y)  # AMP101
        loss.backward()  # AMP301
        trainer.step(1)
        """
    )


def test_a_clipping_threshold_scaled_through_a_variable_and_one_that_is_not():
    """dmlc/gluon-nlp@14553a0c19790a3b03e8107471c987c7aa4f8faa,
    scripts/machine_translation/train_transformer.py: ``grad_scale =
    trainer.amp_loss_scale * loss_denom`` then ``clip_grad_global_norm(params,
    args.max_grad_norm * grad_scale)``; the same loop clipping a plain threshold is
    AMP305."""
    check(
        """
        from mxnet import autograd
        from mxnet.contrib import amp
        from gluonnlp.utils import clip_grad_global_norm
        amp.init()
        amp.init_trainer(trainer)

        def step(loss_l, params, max_grad_norm):
            with autograd.record():
                with amp.scale_loss(loss_l, trainer) as scaled:
                    for loss in scaled:
                        loss.backward()
            grad_scale = trainer.amp_loss_scale * 4
            threshold = max_grad_norm * grad_scale
            clip_grad_global_norm(params, threshold)
            trainer.step(1)

        def careless(loss_l, params):
            with autograd.record():
                with amp.scale_loss(loss_l, trainer) as scaled:
                    autograd.backward(scaled)
            clip_grad_global_norm(params, 1.0)  # AMP305
            trainer.step(1)
        """
    )


def test_a_threshold_scaled_in_the_float16_branch_and_a_clip_after_an_optional_scale_loss():
    """dmlc/gluon-nlp (GitHub, branch v0.10.x), scripts/bert/finetune_squad.py: the float16
    branch scales the loss and multiplies the clipping threshold by the loss scale, the float32
    branch uses a plain threshold and no scaling: nothing to report. scripts/bert/
    finetune_classifier.py clips a plain threshold after the same optional ``amp.scale_loss``:
    AMP305 only where that scaling runs (with --dtype float16)."""
    check(
        """
        import argparse
        from mxnet import autograd
        from mxnet.contrib import amp
        import gluonnlp as nlp
        parser = argparse.ArgumentParser()
        parser.add_argument('--dtype', type=str, default='float32', choices=['float32', 'float16'])
        args = parser.parse_args()
        if args.dtype == 'float16':
            amp.init()
            amp.init_trainer(trainer)

        def squad_step(loss, params, size):
            with autograd.record():
                if args.dtype == 'float16':
                    with amp.scale_loss(loss, trainer) as l:
                        autograd.backward(l)
                    norm_clip = 1.0 * size * trainer._amp_loss_scaler.loss_scale
                else:
                    autograd.backward(loss)
                    norm_clip = 1.0 * size
            nlp.utils.clip_grad_global_norm(params, norm_clip)
            trainer.update(size)

        def classifier_step(ls, params):
            with autograd.record():
                if args.dtype == 'float16':
                    with amp.scale_loss(ls, trainer) as scaled_loss:
                        autograd.backward(scaled_loss)
                else:
                    ls.backward()
            trainer.allreduce_grads()
            nlp.utils.clip_grad_global_norm(params, 1)  # AMP305 (--dtype float16)
            trainer.update(1)
        """
    )
