# ruff: noqa: E501  (a finding is marked on the line it is reported at)
"""Loss classes and helpers of the training script: the model outputs a training call passes
in reach the softmax or cross-entropy inside them, where that call runs outside autocast."""

from __future__ import annotations

from realcase import check

# open_clip_torch 2.24.0 (PyPI), open_clip/loss.py (ClipLoss.forward, DistillClipLoss.dist_loss,
# shortened, renamed) with training/train.py's loop (``loss(...)`` on the model's outputs) and
# factory.py's cast under ``--precision fp16``, in one script.
LOSSES = """
import argparse
import torch
import torch.nn as nn
import torch.nn.functional as F

class PairLoss(nn.Module):
    def logits(self, image_features, text_features, logit_scale):
        return logit_scale * image_features @ text_features.T

    def soft_loss(self, teacher_logits, student_logits):
        return -(teacher_logits.softmax(dim=1) * student_logits.log_softmax(dim=1)).sum(dim=1).mean(){distill}

    def forward(self, image_features, text_features, logit_scale, dist_features=None):
        per_image = self.logits(image_features, text_features, logit_scale)
        labels = torch.arange(per_image.shape[0], device=per_image.device)
        total = F.cross_entropy(per_image, labels){contrastive}
        if dist_features is not None:
            teacher = self.logits(dist_features, text_features, logit_scale)
            total = total + self.soft_loss(teacher, per_image)
        return total

parser = argparse.ArgumentParser()
parser.add_argument("--precision", default="amp", choices=["amp", "fp16", "fp32"])
args = parser.parse_args()
model = CLIP()
if args.precision == "fp16":
    model = model.half()
loss = PairLoss()
scaler = torch.cuda.amp.GradScaler()
for images, texts in loader:
"""


def test_forward_and_helpers_of_a_loss_class_fed_float16_outputs():
    """open_clip_torch 2.24.0 (PyPI), open_clip/loss.py: ``F.cross_entropy`` in
    ``ClipLoss.forward`` on the float16 features training/train.py passes it (loss.py:127), and
    the softmax of ``DistillClipLoss.dist_loss``, a helper method forward calls (loss.py:183)."""
    check(
        LOSSES.format(
            contrastive="  # AMP101 (--precision fp16)",
            distill="  # AMP101 (--precision fp16)",
        )
        + """
    out = model(images, texts)
    total = loss(out["image_features"], out["text_features"], out["logit_scale"], dist_features=out["image_features"])  # AMP101 (--precision fp16)
    total.backward()  # AMP301 (--precision fp16)
    optimizer.step()
""",
    )


def test_loss_class_run_under_autocast_or_on_float32_features():
    """open_clip_torch 2.24.0 (PyPI), training/train.py: under ``--precision amp`` the loss call
    runs inside ``autocast()`` (cross-entropy and softmax are float32 there); features cast
    with ``.float()`` (zero_shot.py) reach nothing in float16, nor does ``evaluate``, which
    computes the loss under ``torch.no_grad()``."""
    check(
        LOSSES.format(contrastive="", distill="")
        + """
    out = model(images, texts)
    with torch.autocast("cuda"):
        total = loss(out["image_features"], out["text_features"], out["logit_scale"])
    scaler.scale(total).backward()
    scaler.step(optimizer)
    scaler.update()
    features = model(images, texts)
    extra = loss(features["image_features"].float(), features["text_features"].float(), 1.0)

def evaluate(model, loader):
    with torch.no_grad():
        for images, texts in loader:
            out = model(images, texts)
            print(loss(out["image_features"], out["text_features"], out["logit_scale"]))

evaluate(model, val_loader)
""",
    )
