# ruff: noqa: E501  (a finding is marked on the line it is reported at)
"""Losses and softmax inside the model classes a training script casts to float16 from
another module: the model module has no switch, no backward and no optimizer of its own."""

from __future__ import annotations

from realcase import check_project

INTERFACE = """
class MTInterface:
    def forward(self, xs, ilens, ys):
        raise NotImplementedError("forward method is not implemented")
"""

# espnet 202402 (PyPI), espnet/mt/pytorch_backend/mt.py (simplified): the model class comes from
# --model-module, is cast with --train-dtype, and the optimizer is built here while the
# backward runs in an updater of another module (espnet/asr/pytorch_backend/asr.py).
TRAIN = """
import torch
from espx.nets.mt_interface import MTInterface
from espx.asr.updater import CustomUpdater
def train(args):
    model_class = dynamic_import(args.model_module)
    model = model_class(83, 52, args)
    assert isinstance(model, MTInterface)
    if args.train_dtype in ("float16", "float32", "float64"):
        dtype = getattr(torch, args.train_dtype)
    else:
        dtype = torch.float32
    model = model.to(device="cuda", dtype=dtype)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    updater = CustomUpdater(model, args.grad_clip, optimizer)
    updater.run()
"""


def test_losses_inside_a_model_class_cast_by_another_module(tmp_path):
    """espnet 202402 (PyPI): espnet/nets/pytorch_backend/e2e_mt_transformer.py (the decoder's
    output fed to ``self.criterion``, a LabelSmoothingLoss of another module),
    the decoder's output fed to ``self.ctc``, a CTC loss module (e2e_asr_transformer.py),
    lm/seq_rnn.py (``F.cross_entropy`` of what a helper method ``self._before_loss`` returns),
    rnn/attentions.py (trap: an attention softmax whose weights are multiplied back in),
    lm/transformer.py (trap: ``batch_score``, a decoding method) and
    chainer_backend/e2e_asr_transformer.py (trap: a Chainer model of the same interface,
    which the PyTorch script cannot build)."""
    configuration = "train.py: args.train_dtype=float16"
    check_project(
        tmp_path,
        {
            "espx/__init__.py": "",
            "espx/nets/__init__.py": "",
            "espx/asr/__init__.py": "",
            "espx/nets/mt_interface.py": INTERFACE,
            "espx/asr/updater.py": """
                class CustomUpdater:
                    def __init__(self, model, grad_clip, optimizer):
                        self.model, self.optimizer = model, optimizer
                """,
            "espx/nets/label_smoothing_loss.py": """
                import torch
                class LabelSmoothingLoss(torch.nn.Module):
                    def __init__(self, size, padding_idx, smoothing):
                        super().__init__()
                        self.criterion = torch.nn.KLDivLoss(reduction="none")
                """,
            "espx/nets/ctc.py": """
                import torch
                class CTC(torch.nn.Module):
                    def __init__(self, odim, eprojs, dropout_rate):
                        super().__init__()
                        self.ctc_lo = torch.nn.Linear(eprojs, odim)
                """,
            "espx/nets/e2e_mt_transformer.py": f"""
                import torch
                from espx.nets.mt_interface import MTInterface
                from espx.nets.label_smoothing_loss import LabelSmoothingLoss
                from espx.nets.ctc import CTC
                class E2E(MTInterface, torch.nn.Module):
                    def __init__(self, idim, odim, args):
                        torch.nn.Module.__init__(self)
                        self.decoder = torch.nn.Linear(256, 256)
                        self.att = torch.nn.Linear(256, 1)
                        self.criterion = LabelSmoothingLoss(256, 0, 0.1)
                        self.ctc = CTC(256, 256, 0.1)
                    def forward(self, xs_pad, ilens, ys_pad):
                        hs_pad = self.decoder(xs_pad)
                        loss_ctc = self.ctc(hs_pad.view(8, -1, 256), ilens, ys_pad)  # AMP101 ({configuration})
                        e = self.att(xs_pad).squeeze(2)
                        w = torch.nn.functional.softmax(e, dim=1)
                        c = torch.sum(xs_pad * w.unsqueeze(2), dim=1)
                        pred_pad = self.decoder(c)
                        self.loss = self.criterion(pred_pad, ys_pad)  # AMP101 ({configuration})
                        return self.loss
                    def batch_score(self, ys, states, xs):
                        h = self.decoder(xs)
                        return h.log_softmax(dim=-1), states
                """,
            "espx/nets/seq_rnn.py": f"""
                import torch
                import torch.nn.functional as F
                from espx.nets.mt_interface import MTInterface
                class SequentialRNNLM(MTInterface, torch.nn.Module):
                    def __init__(self, n_vocab, args):
                        torch.nn.Module.__init__(self)
                        self.decoder = torch.nn.Linear(256, 256)
                    def _before_loss(self, input, hidden):
                        return self.decoder(input), hidden
                    def forward(self, x, t):
                        y = self._before_loss(x, None)[0]
                        loss = F.cross_entropy(y.view(-1, y.shape[-1]), t.view(-1))  # AMP101 ({configuration})
                        return loss
                """,
            "espx/nets/chainer_e2e.py": """
                import chainer
                import chainer.functions as F
                from espx.nets.mt_interface import MTInterface
                class E2E(MTInterface, chainer.Chain):
                    def __init__(self, idim, odim, args):
                        chainer.Chain.__init__(self)
                        self.decoder = chainer.links.Linear(256, 256)
                    def forward(self, xs, ilens, ys):
                        return F.softmax_cross_entropy(self.decoder(xs), ys)
                """,
            "train.py": TRAIN,
        },
    )


def test_a_model_class_cast_only_by_an_inference_script_gets_no_loss_finding(tmp_path):
    """Trap: the same model module when the only script casting it converts a model for
    serving (no backward, no optimizer): its losses compute nothing to train with."""
    check_project(
        tmp_path,
        {
            "espx/__init__.py": "",
            "espx/nets/__init__.py": "",
            "espx/nets/mt_interface.py": INTERFACE,
            "espx/nets/e2e.py": """
                import torch
                from espx.nets.mt_interface import MTInterface
                class E2E(MTInterface, torch.nn.Module):
                    def __init__(self, idim, odim, args):
                        torch.nn.Module.__init__(self)
                        self.decoder = torch.nn.Linear(256, 256)
                        self.criterion = torch.nn.CrossEntropyLoss()
                    def forward(self, xs_pad, ilens, ys_pad):
                        return self.criterion(self.decoder(xs_pad), ys_pad)
                """,
            "export.py": """
                import torch
                from espx.nets.mt_interface import MTInterface
                def export(args):
                    model_class = dynamic_import(args.model_module)
                    model = model_class(83, 52, args)
                    assert isinstance(model, MTInterface)
                    model = model.to(dtype=torch.float16)
                    torch.save(model.state_dict(), args.out)
                """,
        },
    )


def test_an_rnn_lm_whose_sizes_are_options_of_its_own_module(tmp_path):
    """espnet 202402 (PyPI), espnet/nets/pytorch_backend/lm/default.py (simplified): the LM
    class adds its own options (``--unit`` 650, ``--embed-unit`` without a default), reads
    them with ``getattr(args, "embed_unit", None)``, wraps an RNNLM in a ClassifierWithState
    whose forward unpacks ``state, self.y = self.predictor(...)`` into an attribute and feeds
    it to a loss held in an attribute, and overrides ``load_state_dict`` to delegate (not a
    checkpoint the script loads: the sizes stay actionable). espnet/lm/pytorch_backend/lm.py
    casts it with ``--train-dtype float16``."""
    configuration = "lm.py: args.train_dtype=float16"
    check_project(
        tmp_path,
        {
            "espx/__init__.py": "",
            "espx/nets/__init__.py": "",
            "espx/nets/lm_interface.py": "class LMInterface:\n    pass\n",
            "espx/nets/default.py": f"""
                import torch.nn as nn
                from espx.nets.lm_interface import LMInterface
                class DefaultRNNLM(LMInterface, nn.Module):
                    @staticmethod
                    def add_arguments(parser):
                        parser.add_argument("--unit", "-u", type=int, default=650)
                        parser.add_argument("--embed-unit", default=None, type=int)
                        return parser
                    def __init__(self, n_vocab, args):
                        nn.Module.__init__(self)
                        embed_unit = getattr(args, "embed_unit", None)
                        self.model = ClassifierWithState(RNNLM(n_vocab, args.unit, embed_unit))
                    def load_state_dict(self, d):
                        self.model.load_state_dict(d)
                class ClassifierWithState(nn.Module):
                    def __init__(self, predictor, lossfun=nn.CrossEntropyLoss(reduction="none")):
                        super().__init__()
                        self.lossfun = lossfun
                        self.y = None
                        self.predictor = predictor
                    def forward(self, state, x, t):
                        state, self.y = self.predictor(state, x)
                        self.loss = self.lossfun(self.y, t)  # AMP101 ({configuration})
                        return state, self.loss
                class RNNLM(nn.Module):
                    def __init__(self, n_vocab, n_units, n_embed=None):
                        super().__init__()
                        if n_embed is None:
                            n_embed = n_units
                        self.embed = nn.Embedding(n_vocab, n_embed)  # AMP201 (without --embed-unit {configuration})
                        self.rnn = nn.LSTMCell(n_embed, n_units)  # AMP201 ({configuration})
                        self.lo = nn.Linear(n_units, n_vocab)  # AMP201 ({configuration})
                    def forward(self, state, x):
                        h = self.rnn(self.embed(x), state)
                        return h, self.lo(h[0])
                """,
            "lm.py": """
                import argparse
                import torch
                from espx.nets.lm_interface import LMInterface
                from espx.nets.default import DefaultRNNLM
                def train(args):
                    model_class = DefaultRNNLM
                    assert issubclass(model_class, LMInterface)
                    if args.train_dtype in ("float16", "float32", "float64"):
                        dtype = getattr(torch, args.train_dtype)
                    else:
                        dtype = torch.float32
                    model = model_class(args.n_vocab, args).to(dtype=dtype)
                    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
                """,
        },
    )


def test_a_model_cast_by_the_script_and_trained_in_a_class_of_another_module(tmp_path):
    """sockeye 2.3.24 (PyPI), sockeye/train.py and sockeye/training.py (simplified; the dtype
    constant written out): the script casts the model with ``--dtype float16`` and hands it to
    a trainer class of another module, which passes it on to a ``ParallelModel``; that class
    calls each of its ``loss_functions: List[loss.Loss]`` on the model's float16 outputs.
    With ``--amp`` (contrib AMP) the same code is autocast: no finding there."""
    check_project(
        tmp_path,
        {
            "sock/__init__.py": "",
            "sock/loss.py": """
                import mxnet as mx
                class Loss(mx.gluon.HybridBlock):
                    pass
                """,
            "sock/training.py": """
                from typing import List
                import mxnet as mx
                from mxnet.contrib import amp
                from . import loss
                class GluonEarlyStoppingTrainer:
                    def __init__(self, sockeye_model, trainer, loss_functions: List[loss.Loss], using_amp=False):
                        self.model = sockeye_model
                        self._parallel = ParallelModel(sockeye_model, loss_functions, trainer, using_amp=using_amp)
                class ParallelModel:
                    def __init__(self, model, loss_functions: List[loss.Loss], trainer, using_amp=False):
                        self.model = model
                        self.loss_functions = loss_functions
                        self.trainer = trainer
                        self.using_amp = using_amp
                    def forward_backward(self, shard):
                        inputs, labels = shard
                        with mx.autograd.record():
                            outputs = self.model(*inputs)
                            loss_outputs = [loss_function(outputs, labels) for loss_function in self.loss_functions]  # AMP101 (not args.amp args.dtype=float16)
                            sum_losses = mx.nd.add_n(*(v for v, _ in loss_outputs))
                            if self.using_amp:
                                with amp.scale_loss(sum_losses, self.trainer) as scaled_loss:
                                    mx.autograd.backward(scaled_loss)
                            else:
                                sum_losses.backward()
                        return loss_outputs
                """,
            "sock/train.py": """
                import argparse
                import mxnet as mx
                from mxnet.contrib import amp
                from . import training
                from .model import SockeyeModel
                def train(args):
                    if args.amp:
                        amp.init()
                    training_model = SockeyeModel(args)
                    if args.dtype == "float16":
                        training_model.cast("float16")
                    gluon_trainer = mx.gluon.Trainer(training_model.collect_params(), "adam")
                    if args.amp:
                        amp.init_trainer(gluon_trainer)
                    trainer = training.GluonEarlyStoppingTrainer(
                        sockeye_model=training_model,
                        trainer=gluon_trainer,
                        loss_functions=create_losses(args),
                        using_amp=args.amp,
                    )
                """,
        },
        select={"AMP101"},
    )


def test_a_model_another_module_converts_for_inference_stays_float32_where_it_is_trained(
    tmp_path,
):
    """Traps from ultralytics 8.4.190 (PyPI): utils/files.py converts a YOLO model with
    ``.half()`` to profile it, engine/trainer.py trains its own instance (unpacking
    ``loss, self.loss_items = self.model(batch)``) with a GradScaler enabled only for
    ``amp=True`` (the model class's ``train`` builds it, engine/model.py): its backward is not
    a float16 one. nn/modules/head.py's heads take their
    sizes as constructor parameters (``nq: int = 300``, ``nc: int = 19``) that the model parser
    fills from a YAML file (``m(*args)``): the defaults are not what runs."""
    check_project(
        tmp_path,
        {
            "ultra/__init__.py": "",
            "ultra/head.py": """
                import torch.nn as nn
                class RTDETRDecoder(nn.Module):
                    def __init__(self, nc: int = 80, hd: int = 256, nq: int = 300):
                        super().__init__()
                        self.tgt_embed = nn.Embedding(nq, hd)
                        self.score_head = nn.Linear(hd, nc)
                """,
            "ultra/engine_model.py": """
                import torch.nn as nn
                from ultra.trainer import BaseTrainer
                class Model(nn.Module):
                    def train(self, args):
                        self.trainer = BaseTrainer(args, self.layers)
                        self.trainer.train_epoch(self.loader)
                """,
            "ultra/model.py": """
                import torch.nn as nn
                from ultra.engine_model import Model
                from ultra.head import RTDETRDecoder
                class YOLO(Model):
                    def __init__(self, layers):
                        super().__init__()
                        self.layers = layers
                        heads = (RTDETRDecoder,)
                        self.model = nn.Sequential(*(m(*args) for m, args in layers if m in heads))
                """,
            "ultra/files.py": """
                from ultra.model import YOLO
                def profile(layers):
                    model = YOLO(layers).half()
                    return model
                """,
            "ultra/trainer.py": """
                import torch
                from ultra.model import YOLO
                class BaseTrainer:
                    def __init__(self, args, layers):
                        self.args = args
                        self.model = YOLO(layers)
                        self.amp = bool(args.amp)
                        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
                        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01)
                    def train_epoch(self, loader):
                        for batch in loader:
                            with torch.autocast("cuda", enabled=self.amp):
                                loss, self.loss_items = self.model(batch)
                                self.loss = loss.sum()
                            self.scaler.scale(self.loss).backward()
                            self.scaler.step(self.optimizer)
                            self.scaler.update()
                """,
        },
    )
