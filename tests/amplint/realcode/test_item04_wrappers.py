"""Item 4: wrappers that switch precision or scale the loss (apex, DeepSpeed, Lightning,
Hugging Face, Accelerate, torch 2.x spellings, timm's --amp-dtype), their bfloat16 spellings
and the wrappers' own backward."""

from __future__ import annotations

import json

from realcase import check

from amplint.runner import Request, run


def test_deepspeed_config_from_a_function_apex_opt_level_and_timm_amp_dtype():
    """microsoft/DeepSpeedExamples@83757d9c937daabd1089a08051061706cb73900d,
    training/cifar/cifar10_deepspeed.py (``get_ds_config(args)`` with ``"fp16": {"enabled":
    args.dtype == "fp16"}``),
    huggingface/pytorch-image-models@aa4b5850c1543fa488abf260f18390eda46cf85d, train.py
    (``--amp`` with ``--amp-dtype``) and an apex ``opt_level`` option."""
    check(
        """
        import argparse
        from functools import partial
        import deepspeed
        import torch
        from apex import amp
        from torch import nn
        parser = argparse.ArgumentParser()
        parser.add_argument('--dtype', default='fp32', choices=['bf16', 'fp16', 'fp32'])
        parser.add_argument('--amp', action='store_true')
        parser.add_argument('--amp-dtype', default='float16')
        parser.add_argument('--opt-level', default='O0')
        args = parser.parse_args()

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1 = nn.Linear(400, 120)
                self.fc2 = nn.Linear(120, 84)  # AMP201 (--dtype bf16|fp16; --opt-level O1|O2)

        def get_ds_config(args):
            return {'train_batch_size': 16, 'fp16': {'enabled': args.dtype == 'fp16'},
                    'bf16': {'enabled': args.dtype == 'bf16'}}

        net = Net()
        engine, optimizer, _, _ = deepspeed.initialize(model=net, config=get_ds_config(args))
        for inputs, labels in loader:
            loss = nn.CrossEntropyLoss()(engine(inputs), labels)  # AMP101 (--dtype fp16)
            engine.backward(loss)
            engine.step()

        head = nn.Linear(512, 1001).cuda()  # AMP201 (--amp; --opt-level O1|O2)
        head, opt = amp.initialize(head, opt, opt_level=args.opt_level)
        amp_dtype = torch.bfloat16 if args.amp_dtype == 'bfloat16' else torch.float16
        autocast = partial(torch.autocast, device_type='cuda', dtype=amp_dtype)
        for x, y in loader:
            with autocast(enabled=args.amp):
                out = criterion(head(x), y)
            with amp.scale_loss(out, opt) as scaled:
                scaled.backward()
            opt.step()
        """
    )


def test_lightning_hugging_face_and_accelerate_wrap_the_models_given_to_them():
    """Lightning-style ``Trainer(precision="16-mixed").fit(model)``, Hugging Face
    ``TrainingArguments(fp16=...)`` and Accelerate's ``mixed_precision`` (the shapes of
    DeepSpeedExamples@83757d9c937daabd1089a08051061706cb73900d,
    applications/DeepSpeed-Chat/training/step1_supervised_finetuning/main.py and of the
    libraries' own examples); bfloat16 spellings make layers bfloat16."""
    check(
        """
        import argparse
        import lightning as L
        from accelerate import Accelerator
        from torch import nn
        from transformers import Trainer, TrainingArguments
        parser = argparse.ArgumentParser()
        parser.add_argument('--mixed_precision', default='no', choices=['no', 'fp16', 'bf16'])
        parser.add_argument('--fp16', action='store_true')
        args = parser.parse_args()

        class Lit(L.LightningModule):
            def __init__(self):
                super().__init__()
                self.head = nn.Linear(768, 1001)  # AMP201

        class Bf16(L.LightningModule):
            def __init__(self):
                super().__init__()
                self.head = nn.Linear(768, 1002)  # AMP201

        class Head(nn.Module):
            def __init__(self):
                super().__init__()
                self.out = nn.Linear(768, 1003)  # AMP201 (--fp16)

        L.Trainer(precision='16-mixed').fit(Lit())
        L.Trainer(precision='bf16-mixed').fit(Bf16())
        Trainer(model=Head(), args=TrainingArguments('out', fp16=args.fp16)).train()
        accelerator = Accelerator(mixed_precision=args.mixed_precision)
        model = nn.Linear(768, 1005)  # AMP201 (--mixed_precision bf16|fp16)
        model, optimizer = accelerator.prepare(model, optimizer)
        for x, y in loader:
            loss = criterion(model(x), y)
            accelerator.backward(loss)
            optimizer.step()
        """
    )


def test_trap_wrappers_own_backward_bfloat16_and_torch_2_spellings():
    """facebookresearch/fairseq@3d262bb25690e4eb2e7d3c1309b1e9c406ca4b99, fairseq/trainer.py
    (``--fp16`` halves the model and its FP16 optimizer scales in ``optimizer.backward(loss)``),
    a DeepSpeed ``bf16`` configuration, ``.to(torch.bfloat16)`` and torch 2.x
    ``torch.amp.autocast("cuda")`` with ``torch.amp.GradScaler("cuda")``."""
    check(
        """
        import argparse
        import deepspeed
        import torch
        from torch import nn
        parser = argparse.ArgumentParser()
        parser.add_argument('--fp16', action='store_true')
        args = parser.parse_args()
        model = nn.Linear(1024, 1024)
        if args.fp16:
            model = model.half()
        for x, y in loader:
            loss = criterion(model(x).float(), y)
            optimizer.backward(loss)
            optimizer.step()
        bf = nn.Linear(1024, 512).to(torch.bfloat16)
        loss = criterion(bf(x), y)
        loss.backward()
        optimizer.step()
        engine, opt, _, _ = deepspeed.initialize(model=bf, config={'bf16': {'enabled': True}})
        engine.backward(criterion(engine(x), y))
        scaler = torch.amp.GradScaler('cuda')
        with torch.amp.autocast('cuda'):
            out = criterion(model(x), y)
        scaler.scale(out).backward()
        scaler.step(optimizer)
        scaler.update()
        """
    )


TRAIN = """\
import argparse
import deepspeed
from torch import nn
parser = argparse.ArgumentParser()
parser.add_argument('--deepspeed_config', default='ds_config.json')
args = parser.parse_args()
net = nn.Sequential(nn.Linear(3072, 500), nn.Linear(500, 10))
engine, optimizer, _, _ = deepspeed.initialize(args=args, model=net)
"""


def test_deepspeed_json_named_by_an_option_default_is_part_of_the_cache_key(tmp_path):
    """microsoft/DeepSpeedExamples@83757d9c937daabd1089a08051061706cb73900d, training/cifar/
    (a ``ds_config.json`` beside the script, named by ``--deepspeed_config``): the file is read
    as data; changing it re-checks the script that names it."""
    (tmp_path / ".git").mkdir()
    (tmp_path / "train.py").write_text(TRAIN)
    config = tmp_path / "ds_config.json"
    config.write_text(json.dumps({"train_batch_size": 16, "fp16": {"enabled": True}}))

    def check_run():
        findings = run(Request(paths=(str(tmp_path),), jobs=1)).findings
        return [(f.line, f.code, f.configurations) for f in findings]

    expected = [(7, "AMP201", ("--deepspeed_config ds_config.json",))] * 3  # 500, 500, 10
    assert check_run() == expected
    config.write_text('{"fp16": {"enabled": false}, "bf16": {"enabled": true}}')
    assert check_run() == expected  # in bfloat16 now
    assert "bfloat16" in run(Request(paths=(str(tmp_path),), jobs=1)).findings[0].message
    config.write_text("{}")
    assert check_run() == []
