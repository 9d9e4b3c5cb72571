"""Item 3: loss scaling is decided per backward: one ``amp.scale_loss`` in a function does not
cover a second, unscaled backward on another path."""

from __future__ import annotations

from realcase import check


def test_a_second_backward_on_another_path_is_unscaled():
    """dmlc/gluon-nlp@14553a0c19790a3b03e8107471c987c7aa4f8faa,
    scripts/pretraining/bert/run_pretraining.py: its scaled and plain backward hang on the same
    ``--use_amp``; here ``amp.init()`` always runs and the plain side is reached with
    ``--accumulate 0``, unscaled in float16."""
    check(
        """
        import argparse
        from mxnet import autograd
        from mxnet.contrib import amp
        parser = argparse.ArgumentParser()
        parser.add_argument('--accumulate', type=int, default=1)
        args = parser.parse_args()
        amp.init()
        amp.init_trainer(trainer)

        def train_step(batch):
            with autograd.record():
                loss_l = [model(x) for x in batch]
                if args.accumulate:
                    with amp.scale_loss(loss_l, trainer) as scaled_l:
                        for loss in scaled_l:
                            loss.backward()
                else:
                    for loss in loss_l:
                        loss.backward()  # AMP301 (--accumulate 0)
            trainer.step(1)
        """
    )


def test_trap_both_backwards_hang_on_the_option_that_turns_amp_on():
    """dmlc/gluon-nlp@14553a0c19790a3b03e8107471c987c7aa4f8faa,
    scripts/pretraining/bert/run_pretraining.py as written: ``amp.init()`` and the scaled
    backward with ``--use_amp``, the plain backward without it (float32)."""
    check(
        """
        import argparse
        from mxnet import autograd
        from mxnet.contrib import amp
        parser = argparse.ArgumentParser()
        parser.add_argument('--use_amp', action='store_true')
        args = parser.parse_args()

        def train(trainer):
            if args.use_amp:
                amp.init_trainer(trainer)
            for batch in loader:
                with autograd.record():
                    loss_l = [model(x) for x in batch]
                    if args.use_amp:
                        with amp.scale_loss(loss_l, trainer) as loss_l:
                            for loss in loss_l:
                                loss.backward()
                    else:
                        for loss in loss_l:
                            loss.backward()
                trainer.step(1)

        if __name__ == '__main__':
            if args.use_amp:
                amp.init()
            train(trainer)
        """
    )
