# ruff: noqa: E501  (a finding is marked on the line it is reported at)
"""Calls a trainer makes through its class: a class attribute holding the trainer class
(``cls.trainer.run(model=model)`` with ``trainer = Trainer``) and methods called through
``cls``/``self`` that subclasses in other modules override (``cls.train_one_epoch(...)``)."""

from __future__ import annotations

from realcase import check_project

TASK = """
import argparse
import torch
from espy.train.trainer import Trainer
class AbsTask:
    trainer = Trainer
    @classmethod
    def get_parser(cls):
        parser = argparse.ArgumentParser()
        parser.add_argument("--train_dtype", default="float32", choices=["float16", "float32", "float64"])
        parser.add_argument("--use_amp", action="store_true")
        return parser
    @classmethod
    def main(cls, cmd=None):
        args = cls.get_parser().parse_args(cmd)
        cls.main_worker(args)
    @classmethod
    def main_worker(cls, args):
        model = cls.build_model(args=args)
        model = model.to(dtype=getattr(torch, args.train_dtype), device="cuda")
        optimizers = cls.build_optimizers(args, model=model)
        trainer_options = cls.trainer.build_options(args)
        cls.trainer.run(model=model, optimizers=optimizers, trainer_options=trainer_options)
"""
TRAINER = """
import torch
from torch.cuda.amp import GradScaler, autocast
class Trainer:
    @classmethod
    def build_options(cls, args):
        return args
    @classmethod
    def run(cls, model, optimizers, trainer_options):
        if trainer_options.use_amp:
            scaler = GradScaler()
        else:
            scaler = None
        if trainer_options.ngpu > 1:
            dp_model = torch.nn.parallel.DataParallel(model)
        else:
            dp_model = model
        for iepoch in range(trainer_options.max_epoch):
            cls.train_one_epoch(model=dp_model, optimizers=optimizers, scaler=scaler)
    @classmethod
    def train_one_epoch(cls, model, optimizers, scaler):
        for batch in iterator:
            with autocast(scaler is not None):
                retval = model(**batch)
                loss = retval["loss"]
            if scaler is not None:
                scaler.scale(loss).backward()
            else:
                loss.backward(){mark}
            for optimizer in optimizers:
                if scaler is not None:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
"""
GAN_TRAINER = """
import torch
from torch.cuda.amp import autocast
from espy.train.trainer import Trainer
class GANTrainer(Trainer):
    @classmethod
    def train_one_epoch(cls, model, optimizers, scaler):
        for batch in iterator:
            for turn in ["generator", "discriminator"]:
                with autocast(scaler is not None):
                    retval = model(forward_generator=turn == "generator", **batch)
                    loss = retval["loss"]
                if scaler is not None:
                    scaler.scale(loss).backward()
                else:
                    loss.backward(){mark}
                optimizer = optimizers[retval["optim_idx"]]
                if scaler is not None:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
"""
GAN_TASK = """
from espy.tasks.abs_task import AbsTask
from espy.train.gan_trainer import GANTrainer
class GANTTSTask(AbsTask):
    trainer = GANTrainer
"""
PACKAGES = {f"espy/{name}__init__.py": "" for name in ("", "tasks/", "train/")}


def test_a_trainer_class_held_in_a_class_attribute_and_its_overrides_train_the_cast_model(
    tmp_path,
):
    """espnet 202402 (PyPI), espnet2/tasks/abs_task.py (``trainer = Trainer``;
    ``main_worker`` casts the model with ``getattr(torch, args.train_dtype)`` and calls
    ``cls.trainer.run(model=model, ...)``), espnet2/train/trainer.py (``run`` makes a
    GradScaler only with ``--use_amp`` and calls ``cls.train_one_epoch(model=dp_model, ...)``)
    and espnet2/train/gan_trainer.py (``GANTrainer(Trainer)`` overrides ``train_one_epoch``;
    GAN tasks set ``trainer = GANTrainer``), shortened. With ``--train_dtype float16`` and
    without ``--use_amp`` both backwards are unscaled; the scaled ones are fine."""
    mark = "  # AMP301 (--train_dtype float16 not trainer_options.use_amp)"
    check_project(
        tmp_path,
        {
            **PACKAGES,
            "espy/tasks/abs_task.py": TASK,
            "espy/tasks/gan_tts.py": GAN_TASK,
            "espy/train/trainer.py": TRAINER.replace("{mark}", mark),
            "espy/train/gan_trainer.py": GAN_TRAINER.replace("{mark}", mark),
        },
    )


def test_a_trainer_class_attribute_with_a_model_that_stays_float32_is_silent(tmp_path):
    """The same trainers (espnet2/train/trainer.py, gan_trainer.py) run by a task that only
    moves its model to the GPU (float32; mixed precision only with ``--use_amp``, scaled): no
    finding, and a class attribute a method rebinds is not followed."""
    task = TASK.replace('dtype=getattr(torch, args.train_dtype), device="cuda"', 'device="cuda"')
    rebound = """
        import torch
        from espy.train.trainer import Trainer
        class Task:
            trainer = Trainer
            @classmethod
            def main(cls, args):
                cls.trainer = args.trainer_class
                model = cls.build_model(args).half()
                cls.trainer.run(model=model, optimizers=[], trainer_options=args)
        """
    check_project(
        tmp_path,
        {
            **PACKAGES,
            "espy/tasks/abs_task.py": task,
            "espy/tasks/other.py": rebound,
            "espy/tasks/gan_tts.py": GAN_TASK,
            "espy/train/trainer.py": TRAINER.replace("{mark}", ""),
            "espy/train/gan_trainer.py": GAN_TRAINER.replace("{mark}", ""),
        },
    )


FACTORY_TASK = """
import argparse
import torch
from espy.train.trainer import Trainer
class AbsTask:
    trainer = Trainer
    @classmethod
    def build_model(cls, args):
        raise NotImplementedError
    @classmethod
    def build_optimizers(cls, args, model):
        optim_class = optim_classes.get(args.optim)
        optim = optim_class(model.parameters(), **args.optim_conf)
        return [optim]
    @classmethod
    def main(cls, cmd=None):
        parser = argparse.ArgumentParser()
        parser.add_argument("--train_dtype", default="float32", choices=["float16", "float32", "float64"])
        args = parser.parse_args(cmd)
        model = cls.build_model(args=args)
        model = model.to(dtype=getattr(torch, args.train_dtype), device="cuda")
        optimizers = cls.build_optimizers(args, model=model)
        cls.trainer.run(model=model, optimizers=optimizers, trainer_options=args)
"""
ASR_TASK = """
from espy.asr.ctc import CTC
from espy.asr.espnet_model import ESPnetASRModel
from espy.tasks.abs_task import AbsTask
class ASRTask(AbsTask):
    @classmethod
    def build_model(cls, args) -> ESPnetASRModel:
        decoder_class = decoder_choices.get_class(args.decoder)
        decoder = decoder_class(vocab_size=args.vocab_size, **args.decoder_conf)
        ctc = CTC(odim=args.vocab_size, encoder_output_size=256)
        model_class = model_choices.get_class(args.model)
        return model_class(vocab_size=args.vocab_size, decoder=decoder, ctc=ctc)
"""
CTC_MODULE = """
import torch
import torch.nn.functional as F
class CTC(torch.nn.Module):
    def __init__(self, odim: int, encoder_output_size: int):
        super().__init__()
        self.ctc_lo = torch.nn.Linear(encoder_output_size, odim)
        self.ctc_loss = torch.nn.CTCLoss(reduction="none")
    def forward(self, hs_pad, hlens, ys_pad, ys_lens):
        ys_hat = self.ctc_lo(hs_pad).transpose(0, 1)
        return self.ctc_loss(ys_hat.log_softmax(2), ys_pad, hlens, ys_lens)
"""
MODEL = """
import torch
from espy.asr.ctc import CTC
from espy.losses import LabelSmoothingLoss
class ESPnetASRModel(torch.nn.Module):
    def __init__(self, vocab_size: int, encoder, decoder, ctc: CTC, ctc_weight: float = 0.5):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.ctc = ctc
        self.ctc_weight = ctc_weight
        self.criterion_att = LabelSmoothingLoss(size=vocab_size, padding_idx=-1, smoothing=0.1)
    def forward(self, speech, speech_lengths, text, text_lengths):
        encoder_out, encoder_out_lens = self.encode(speech, speech_lengths)
        loss_ctc = self._calc_ctc_loss(encoder_out, encoder_out_lens, text, text_lengths)
        loss_att = self._calc_att_loss(encoder_out, encoder_out_lens, text, text_lengths)
        return self.ctc_weight * loss_ctc + (1 - self.ctc_weight) * loss_att
    def encode(self, speech, speech_lengths):
        encoder_out, encoder_out_lens, _ = self.encoder(speech, speech_lengths)
        return encoder_out, encoder_out_lens
    def _calc_att_loss(self, encoder_out, encoder_out_lens, ys_pad, ys_pad_lens):
        decoder_out, _ = self.decoder(encoder_out, encoder_out_lens, ys_pad, ys_pad_lens)
        loss_att = self.criterion_att(decoder_out, ys_pad){att}
        return loss_att
    def _calc_ctc_loss(self, encoder_out, encoder_out_lens, ys_pad, ys_pad_lens):
        loss_ctc = self.ctc(encoder_out, encoder_out_lens, ys_pad, ys_pad_lens){ctc}
        return loss_ctc
    def nll(self, encoder_out, encoder_out_lens, ys_pad, ys_pad_lens):
        decoder_out, _ = self.decoder(encoder_out, encoder_out_lens, ys_pad, ys_pad_lens)
        return torch.nn.functional.cross_entropy(decoder_out.view(-1, 5000), ys_pad.view(-1))
"""
LOSSES = """
import torch
class LabelSmoothingLoss(torch.nn.Module):
    def __init__(self, size, padding_idx, smoothing):
        super().__init__()
        self.size = size
    def forward(self, x, target):
        return torch.log_softmax(x.view(-1, self.size), dim=1).mean()
"""
FACTORY_PACKAGES = {f"espy/{name}__init__.py": "" for name in ("", "tasks/", "train/", "asr/")}


def test_the_model_a_factory_override_builds_is_cast_with_the_parts_given_to_it(tmp_path):
    """espnet 202402 (PyPI), espnet2/tasks/abs_task.py (``model = cls.build_model(args=args)``
    then ``model.to(dtype=getattr(torch, args.train_dtype))``; optimizers built as
    ``optim_class(model.parameters(), **args.optim_conf)``), espnet2/tasks/asr.py
    (``ASRTask.build_model(cls, args) -> ESPnetASRModel`` builds the decoder and the CTC and
    hands them to the model) and espnet2/asr/espnet_model.py (``self.decoder = decoder``,
    ``self.ctc = ctc`` given as ``ctc: CTC``; ``_calc_att_loss`` and ``_calc_ctc_loss`` feed
    their float16 outputs to the losses) and espnet2/asr/ctc.py (log_softmax of the float16
    logits into the CTC loss), shortened. ``nll``, which the model's forward never runs
    (rescoring at decoding), is not reported."""
    mark = "  # AMP101 (tasks/abs_task.py: --train_dtype float16)"
    check_project(
        tmp_path,
        {
            **FACTORY_PACKAGES,
            "espy/tasks/abs_task.py": FACTORY_TASK,
            "espy/tasks/asr.py": ASR_TASK,
            "espy/train/trainer.py": TRAINER.replace(
                "{mark}", "  # AMP301 (--train_dtype float16 not trainer_options.use_amp)"
            ),
            "espy/asr/ctc.py": CTC_MODULE.replace("ys_lens)\n", "ys_lens)" + mark + "\n"),
            "espy/asr/espnet_model.py": MODEL.replace("{att}", mark).replace("{ctc}", mark),
            "espy/losses.py": LOSSES,
        },
        select={"AMP101", "AMP301"},
    )


def test_a_factory_whose_model_stays_float32_and_a_class_outside_the_hierarchy_are_silent(
    tmp_path,
):
    """The same modules (espnet2/tasks/abs_task.py, asr.py, asr/espnet_model.py) with the
    model only moved to the GPU: float32, no finding; a task class that does not derive from
    the one whose factory is cast (a standalone ``Task.build_model``) brings nothing either."""
    task = FACTORY_TASK.replace(
        'dtype=getattr(torch, args.train_dtype), device="cuda"', 'device="cuda"'
    )
    standalone = ASR_TASK.replace("class ASRTask(AbsTask):", "class ASRTask:")
    for name, tasks in (
        ("float32", {"espy/tasks/abs_task.py": task, "espy/tasks/asr.py": ASR_TASK}),
        ("unrelated", {"espy/tasks/abs_task.py": FACTORY_TASK, "espy/tasks/asr.py": standalone}),
    ):
        check_project(
            tmp_path / name,
            {
                **FACTORY_PACKAGES,
                **tasks,
                "espy/train/trainer.py": TRAINER.replace(
                    "{mark}",
                    "  # AMP301 (--train_dtype float16 not trainer_options.use_amp)"
                    if name == "unrelated"
                    else "",
                ),
                "espy/asr/ctc.py": CTC_MODULE,
                "espy/asr/espnet_model.py": MODEL.replace("{att}", "").replace("{ctc}", ""),
                "espy/losses.py": LOSSES,
            },
            select={"AMP101", "AMP301"},
        )
