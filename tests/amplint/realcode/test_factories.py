"""Factories: what a top-level function returns, read in its own frame (its parameters put in
per call, one caller's configurations never mixed with another's), also each element of a
tuple it returns (``model, preprocess_train, preprocess_val = create_model_and_transforms(...)``);
``'fp16' in precision`` folded over the values the function compares ``precision`` with; the
losses a loss factory of the project builds; outputs stored item by item and joined with
``torch.cat``; a backward helper checked at each call; a helper only evaluation code calls."""

from __future__ import annotations

import re

from realcase import check, check_project


def _unmarked(source: str) -> str:
    """The snippet without its marks: nothing expected."""
    return re.sub(r"  # AMP\d{3}.*", "", source)


_FACTORY_MODULE = """
import argparse
import torch
import torch.nn.functional as F
from torch import nn
parser = argparse.ArgumentParser()
parser.add_argument('--precision', default='amp', choices=PRECISIONS)
args = parser.parse_args()

class CLIP(nn.Module):
    def __init__(self, name):
        super().__init__()
        self.visual = Tower(name)
    def forward(self, images):
        return self.visual(images)

def create_model(name, precision='fp32', device='cpu'):
    model = CLIP(name)
    if precision in ('fp16', 'bf16'):
        dtype = torch.float16 if 'fp16' in precision else torch.bfloat16
        model.to(device=device)
        convert_weights_to_lp(model, dtype=dtype)
    elif precision in ('pure_fp16', 'pure_bf16'):
        dtype = torch.float16 if 'fp16' in precision else torch.bfloat16
        model.to(device=device, dtype=dtype)
    else:
        model.to(device=device)
    return model

def create_model_and_transforms(name, precision='fp32', device='cpu'):
    model = create_model(name, precision=precision, device=device)
    preprocess_train = image_transform(is_train=True)
    preprocess_val = image_transform(is_train=False)
    return model, preprocess_train, preprocess_val

def create_model_from_pretrained(name, precision='fp32', device='cpu'):
    model = create_model(name, precision=precision, device=device)
    return model

model, preprocess_train, preprocess_val = create_model_and_transforms(
    'RN50', precision=args.precision
)
teacher = create_model_from_pretrained('RN101', precision='fp32')
optimizer = torch.optim.AdamW(model.parameters())
for images, labels in loader:
    logits = model(preprocess_train(images))
    loss = F.cross_entropy(logits, labels)  # AMP101 (--precision pure_fp16)
    loss = loss + F.cross_entropy(teacher(images), labels)
    loss = loss + F.cross_entropy(preprocess_val(images), labels)
    loss.backward()  # AMP301 (--precision pure_fp16)
    optimizer.step()
"""


def test_a_tuple_returned_by_a_factory_of_the_module():
    """open_clip_torch 2.24.0 (PyPI), open_clip/factory.py (``create_model``,
    ``create_model_and_transforms``, ``create_model_from_pretrained``; shortened, the script
    folded into the module): the model, element 0 of the returned tuple, is float16 with
    ``--precision pure_fp16`` only — not with ``pure_bf16`` (``'fp16' in precision``), not
    through the other factory called with ``'fp32'``, and the transforms (elements 1 and 2)
    are no model."""
    choices = "['amp', 'bf16', 'fp32', 'pure_bf16', 'pure_fp16']"
    check(_FACTORY_MODULE.replace("PRECISIONS", choices))


def test_a_factory_whose_callers_choose_no_float16():
    """open_clip_torch 2.24.0 (PyPI), open_clip/factory.py as above, run by a script whose
    ``--precision`` offers no float16 value (``amp``, ``fp32``, ``pure_bf16``): the factory's
    float16 branch is never taken, so nothing is reported."""
    check(_unmarked(_FACTORY_MODULE.replace("PRECISIONS", "['amp', 'fp32', 'pure_bf16']")))


_CLIP_INIT = """
from .factory import create_loss, create_model_and_transforms
"""

_CLIP_FACTORY = """
import torch
from .loss import ClipLoss, SigLipLoss
from .model import CLIP


def create_model(name, precision="fp32", device="cpu"):
    model = CLIP(name)
    if precision in ("pure_fp16", "pure_bf16"):
        dtype = torch.float16 if "fp16" in precision else torch.bfloat16
        model.to(device=device, dtype=dtype)
    else:
        model.to(device=device)
    return model


def create_model_and_transforms(name, precision="fp32", device="cpu"):
    model = create_model(name, precision=precision, device=device)
    return model, image_transform(True), image_transform(False)


def create_loss(args):
    if args.siglip:
        return SigLipLoss(rank=args.rank)
    return ClipLoss(rank=args.rank)
"""

_CLIP_MODEL = """
from torch import nn


class CLIP(nn.Module):
    def __init__(self, name):
        super().__init__()
        self.visual = nn.Linear(768, 512)

    def forward(self, images, texts):
        return {"image_features": self.visual(images), "text_features": texts}
"""

_CLIP_LOSS = """
from torch import nn


class ClipLoss(nn.Module):
    def __init__(self, rank=0):
        super().__init__()


class SigLipLoss(nn.Module):
    def __init__(self, rank=0):
        super().__init__()
"""

_TRAINING_MAIN = """
import argparse
import torch
from clip import create_loss, create_model_and_transforms
from .train import train_one_epoch

parser = argparse.ArgumentParser()
parser.add_argument("--precision", default="amp", choices=PRECISIONS)
parser.add_argument("--accum", type=int, default=1)
parser.add_argument("--siglip", action="store_true")
args = parser.parse_args()
model, preprocess_train, preprocess_val = create_model_and_transforms(
    "RN50", precision=args.precision
)
optimizer = torch.optim.AdamW(model.parameters())
scaler = torch.cuda.amp.GradScaler() if args.precision == "amp" else None
loss = create_loss(args)
for epoch in range(32):
    train_one_epoch(model, data, loss, optimizer, scaler, args)
"""

_TRAINING_TRAIN = """
import torch
from contextlib import suppress
import torch.nn.functional as F


def get_autocast(precision):
    if precision == "amp":
        return torch.cuda.amp.autocast
    return suppress


def backward(total_loss, scaler):
    if scaler is not None:
        scaler.scale(total_loss).backward()
    else:
        total_loss.backward()  # AMP301 (--precision pure_fp16)


def train_one_epoch(model, data, loss, optimizer, scaler, args):
    autocast = get_autocast(args.precision)
    accum_features = {}
    for i, (images, texts) in enumerate(data):
        if args.accum == 1:
            with autocast():
                model_out = model(images, texts)
                losses = loss(**model_out)  # AMP101 (--accum 1 --precision pure_fp16)
                total_loss = sum(losses.values())
            backward(total_loss, scaler)  # AMP301 (--accum 1 --precision pure_fp16)
        else:
            with autocast():
                model_out = model(images, texts)
                inputs = {}
                for key, val in accum_features.items():
                    inputs[key] = torch.cat([model_out[key]] + val)
                losses = loss(**inputs)  # AMP101 (--accum not 1 --precision pure_fp16)
                total_loss = sum(losses.values())
            backward(total_loss, scaler)  # AMP301 (--accum not 1 --precision pure_fp16)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()


def evaluate(model, data):
    for images, texts in data:
        model_out = model(images, texts)
        gen_loss = maybe_compute_generative_loss(model_out)


def maybe_compute_generative_loss(model_out):
    if "logits" in model_out:
        logits = model_out["logits"].permute(0, 2, 1)
        return F.cross_entropy(logits, model_out["labels"])
"""


def _project(precisions: str) -> dict[str, str]:
    return {
        "clip/__init__.py": _CLIP_INIT,
        "clip/factory.py": _CLIP_FACTORY,
        "clip/model.py": _CLIP_MODEL,
        "clip/loss.py": _CLIP_LOSS,
        "training/__init__.py": "",
        "training/main.py": _TRAINING_MAIN.replace("PRECISIONS", precisions),
        "training/train.py": _TRAINING_TRAIN,
    }


def test_a_factory_of_another_module_a_loss_factory_and_a_backward_helper(tmp_path):
    """open_clip_torch 2.24.0 (PyPI), training/main.py, training/train.py (``backward``,
    ``train_one_epoch`` with ``--accum-freq``, ``evaluate``, ``maybe_compute_generative_loss``)
    and open_clip/factory.py (shortened, renamed): the script unpacks the model from a factory
    of the package, builds the loss with ``create_loss(args)`` and a GradScaler only for
    ``--precision amp``; the training loop
    feeds the float16 outputs to the loss (also stored item by item and joined with
    ``torch.cat``) and calls a helper whose plain backward runs where the scaler is None.
    Under ``--precision amp`` autocast and the scaler cover it; the helper only ``evaluate``
    calls is evaluation code."""
    check_project(tmp_path, _project('["amp", "fp32", "pure_bf16", "pure_fp16"]'))


def test_the_same_project_without_a_float16_choice(tmp_path):
    """open_clip_torch 2.24.0 (PyPI), the same files as above with a ``--precision`` that
    offers no float16 value: the factory, the loss factory and the backward helper are read
    the same way, and nothing is reported (bfloat16 needs no scaling)."""
    files = _project('["amp", "fp32", "pure_bf16"]')
    check_project(tmp_path, {name: _unmarked(text) for name, text in files.items()})
