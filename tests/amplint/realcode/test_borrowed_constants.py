# ruff: noqa: E501  (a finding is marked on the line it is reported at)
"""Constants of another module of the project in a switch: ``import sockeye.constants as C``,
then ``if args.dtype == C.DTYPE_FP16: model.cast(C.DTYPE_FP16)`` (see amplint.borrowing)."""

from __future__ import annotations

import textwrap

from realcase import check_project

TRAINING = """
                from typing import List

                import mxnet as mx
                from mxnet.contrib import amp

                from . import loss


                class ParallelModel:
                    def __init__(self, model, loss_functions: List[loss.Loss], trainer, using_amp: bool = False):
                        self.model = model
                        self.loss_functions = loss_functions
                        self.trainer = trainer
                        self.using_amp = using_amp

                    def forward_backward(self, shard):
                        inputs, labels = shard
                        with mx.autograd.record():
                            outputs = self.model(*inputs)
                            loss_outputs = [loss_function(outputs, labels) for loss_function in self.loss_functions]  # AMP101 (without --amp --dtype float16)
                            sum_losses = mx.nd.add_n(*(v for v, _ in loss_outputs))
                            if self.using_amp:
                                with amp.scale_loss(sum_losses, self.trainer) as scaled_loss:
                                    mx.autograd.backward(scaled_loss)
                            else:
                                sum_losses.backward()
                        return loss_outputs


                class EarlyStoppingTrainer:
                    def __init__(self, sockeye_model, trainer, loss_functions: List[loss.Loss], using_amp: bool):
                        self.model = sockeye_model
                        self.trainer = trainer
                        self._parallel = ParallelModel(sockeye_model, loss_functions, trainer, using_amp)

                    def fit(self, batches):
                        for batch in batches:
                            self._parallel.forward_backward(batch)
                            self.trainer.step(1)
"""
LOSS = """
                import mxnet as mx


                class Loss(mx.gluon.HybridBlock):
                    def hybrid_forward(self, F, logits, labels):
                        raise NotImplementedError()


                class CrossEntropyLoss(Loss):
                    def hybrid_forward(self, F, logits, labels):
                        probs = F.SoftmaxOutput(data=logits, label=labels, normalization='valid')
                        return -F.log(F.pick(probs, labels)), F.sum(labels != 0)
"""
MODEL = """
                import mxnet as mx


                class TrainingModel(mx.gluon.HybridBlock):
                    def __init__(self, vocab_size):
                        super().__init__()
                        self.output_layer = mx.gluon.nn.Dense(vocab_size, flatten=False)

                    def hybrid_forward(self, F, source, target):
                        return self.output_layer(source)
"""
TRAIN = """
                import argparse

                import mxnet as mx
                from mxnet.contrib import amp

                from . import constants as C
                from . import loss
                from . import training
                from .model import TrainingModel


                def main():
                    parser = argparse.ArgumentParser()
                    parser.add_argument('--dtype', default=C.DTYPE_FP32, choices=[C.DTYPE_FP32, C.DTYPE_FP16])
                    parser.add_argument('--amp', action='store_true')
                    args = parser.parse_args()
                    if args.amp:
                        amp.init()
                    training_model = TrainingModel(vocab_size=32000)
                    training_model.initialize()
                    if args.dtype == C.DTYPE_FP16:
                        training_model.cast(C.DTYPE_FP16)
                    gluon_trainer = mx.gluon.Trainer(training_model.collect_params(), 'adam')
                    if args.amp:
                        amp.init_trainer(gluon_trainer)
                    losses = [loss.CrossEntropyLoss()]
                    trainer = training.EarlyStoppingTrainer(sockeye_model=training_model, trainer=gluon_trainer,
                                                            loss_functions=losses, using_amp=args.amp)
                    trainer.fit([])
"""


def files(constants: str) -> dict[str, str]:
    return {
        "sockx/__init__.py": "",
        "sockx/constants.py": constants,
        "sockx/loss.py": LOSS,
        "sockx/model.py": MODEL,
        "sockx/train.py": TRAIN,
        "sockx/training.py": TRAINING,
    }


def test_a_dtype_named_by_a_constant_of_another_module_switches_the_cast(tmp_path):
    """sockeye 2.3.24 (PyPI), sockeye/train.py (``from . import constants as C``; ``if
    args.dtype == C.DTYPE_FP16: training_model.cast(C.DTYPE_FP16)``, l.1085) and
    sockeye/training.py (ParallelModel.forward_backward, l.760), shortened: the float16 model
    the trainer is handed feeds the project's cross-entropy loss unless --amp is on (then
    amp.scale_loss under amp.init: silent)."""
    constants = """
        DTYPE_FP16 = 'float16'
        DTYPE_FP32 = 'float32'
        """
    check_project(tmp_path, files(constants))


def test_a_constant_assigned_twice_is_not_known(tmp_path):
    """The same project with a constants module that changes the name after it is first set
    (sockeye's constants.py with a platform switch added): its value cannot be told, so
    nothing follows from it."""
    constants = """
        import os
        DTYPE_FP16 = 'float16'
        DTYPE_FP32 = 'float32'
        if os.environ.get('SOCKX_NO_FP16'):
            DTYPE_FP16 = 'float32'
        """
    text = files(constants)
    text["sockx/training.py"] = TRAINING.replace("  # AMP101 (without --amp --dtype float16)", "")
    check_project(tmp_path, text)


def test_an_edit_of_the_constants_module_reaches_the_cached_importers(tmp_path, monkeypatch):
    """With the cache: the run after ``DTYPE_FP16`` is edited in the constants module reads
    the switch again with the new value (the cast is no longer float16: silent), and the run
    after the edit is undone reports it again; ``training.py`` and ``train.py`` are unchanged."""
    from amplint import stat_cache
    from amplint.runner import Request, run

    constants = "DTYPE_FP16 = '{}'\nDTYPE_FP32 = 'float32'\n"
    for name, text in files(constants.format("float16")).items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(stat_cache, "RACY_SECONDS", -3600)  # every stat is trusted

    def codes() -> list[tuple[str, str]]:
        outcome = run(Request(paths=("sockx",), jobs=1, select=("AMP101",)))
        return [(f.path, f.code) for f in outcome.findings]

    found = [("sockx/training.py", "AMP101")]
    assert codes() == found
    (tmp_path / "sockx/constants.py").write_text(constants.format("float32"))
    assert codes() == []
    (tmp_path / "sockx/constants.py").write_text(constants.format("float16"))
    assert codes() == found
