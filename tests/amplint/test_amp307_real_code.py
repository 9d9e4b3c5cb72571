"""AMP307 (grad-scaler-bypassed) on training code adapted from real files: the bypasses they
hold are found and fixed, and their traps stay silent. Each source is condensed from the named
file (repository, commit, path) to the lines the rule looks at, written anew."""

from __future__ import annotations

import textwrap

from amplint.engine import lint_source
from amplint.fix.apply import fix_source
from amplint.settings import Settings


def amp307(source: str, settings: Settings | None = None) -> list[tuple[int, str]]:
    """(line, message) of the AMP307 findings of ``source`` with every default rule on."""
    findings = lint_source(textwrap.dedent(source), "train.py", settings=settings)
    assert all(f.code != "AMP000" for f in findings), findings
    return [(f.line, f.message) for f in findings if f.code == "AMP307"]


ACCELERATE_MS_AMP_DDP = """
    import msamp
    import torch
    from accelerate import Accelerator
    from accelerate.utils import get_grad_scaler

    def train_baseline(opt_level="O2"):
        scaler = get_grad_scaler()
        model, optimizer, train_dataloader, eval_dataloader, lr_scheduler = utilities()
        model, optimizer = msamp.initialize(model, optimizer, opt_level=opt_level)
        model.train()
        for batch in train_dataloader:
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
                loss = model(**batch).loss
            scaler.scale(loss).backward()
            optimizer.step()
            optimizer.zero_grad()
            lr_scheduler.step()

    def train_integration(opt_level="O2"):
        accelerator = Accelerator(mixed_precision="fp8")
        model, optimizer, train_dataloader, eval_dataloader, lr_scheduler = utilities()
        model, optimizer = accelerator.prepare(model, optimizer)
        for batch in train_dataloader:
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
                loss = model(**batch).loss
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
            lr_scheduler.step()

    if __name__ == "__main__":
        for opt_level in ["O1", "O2"]:
            baseline = train_baseline(opt_level)
            integration = train_integration(opt_level)
"""


def test_accelerate_baseline_steps_past_its_scaler_and_is_fixed():
    """huggingface/accelerate 4d052844d067438e18a73188d00b5b41ec887bc2
    benchmarks/fp8/ms_amp/ddp.py: `train_baseline` scales the loss with `get_grad_scaler()`
    and then calls `optimizer.step()` (gradients 65536x too large, infs applied). The trap in
    the same file: `train_integration` leaves scaling to Accelerate (`accelerator.backward`,
    the prepared optimizer's `step`), with no scaler of its own. Reported once, where it is,
    not again at the call of `train_baseline`."""
    [(line, message)] = amp307(ACCELERATE_MS_AMP_DDP)
    assert line == 16 and message.startswith("optimizer.step() bypasses the GradScaler")
    assert "scaled by scaler.scale, line 15" in message
    source = textwrap.dedent(ACCELERATE_MS_AMP_DDP)
    findings = lint_source(source, "train.py")

    def relint(text: str) -> list:
        return lint_source(text, "train.py")

    result = fix_source(source, findings, relint)
    assert "        scaler.step(optimizer)\n        scaler.update()\n" in result.fixed
    assert result.fixed.count("optimizer.step()") == 1  # train_integration's is left alone
    assert amp307(result.fixed) == []


MS_AMP_MNIST = """
    import torch
    import torch.nn.functional as F

    def train(args, model, device, train_loader, optimizer, epoch):
        model.train()
        scaler = torch.cuda.amp.GradScaler()
        for batch_idx, (data, target) in enumerate(train_loader):
            data, target = data.to(device), target.to(device)
            optimizer.zero_grad()
            with torch.cuda.amp.autocast():
                output = model(data)
            loss = F.nll_loss(output, target)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            if batch_idx % args.log_interval == 0:
                print(epoch, loss.item())
"""


def test_ms_amp_mnist_never_updates_its_scaler_and_is_fixed():
    """Azure/MS-AMP 0038d791521bf9c0359013ecec5ea833a0de648b examples/mnist.py: the scaler
    steps but `scaler.update()` never runs; the second step raised RuntimeError until
    commit 61b601a added the update."""
    [(line, message)] = amp307(MS_AMP_MNIST)
    assert line == 15 and message.startswith("scaler.update() never runs")
    source = textwrap.dedent(MS_AMP_MNIST)
    result = fix_source(source, lint_source(source, "t.py"), lambda t: lint_source(t, "t.py"))
    assert "        scaler.step(optimizer)\n        scaler.update()\n" in result.fixed
    assert amp307(result.fixed) == []


def test_nanogpt_scaler_disabled_for_bfloat16_with_accumulation_is_silent():
    """karpathy/nanoGPT e2221318e607eb5ee0669d6b7641af25a2111545 train.py: one code path for
    both precisions (`GradScaler(enabled=(dtype == 'float16'))`), backward once per micro-step,
    one `scaler.step` after the accumulation loop, unscale only when clipping."""
    source = """
        import torch
        dtype = 'bfloat16' if torch.cuda.is_bf16_supported() else 'float16'
        ctx = torch.amp.autocast(device_type='cuda', dtype=torch.float16)
        scaler = torch.cuda.amp.GradScaler(enabled=(dtype == 'float16'))
        optimizer = model.configure_optimizers(weight_decay, learning_rate, betas, 'cuda')
        while True:
            for micro_step in range(gradient_accumulation_steps):
                with ctx:
                    logits, loss = model(X, Y)
                    loss = loss / gradient_accumulation_steps
                X, Y = get_batch('train')
                scaler.scale(loss).backward()
            if grad_clip != 0.0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
    """
    assert amp307(source) == []


def test_applio_gan_with_warm_up_steps_is_silent():
    """IAHispano/Applio ed4ac3609ac0cf2fbb133349565d646dac2f8799 rvc/train/train.py: two bare
    `optim_d.step()`/`optim_g.step()` before training (to quiet the scheduler warning; no
    gradients exist yet), one scaler (`enabled=config.train.fp16_run`) for both optimizers of a
    GAN, handed to the training function, updated once per iteration."""
    source = """
        import torch
        from torch.cuda.amp import GradScaler, autocast

        def run(config, net_g, net_d):
            optim_g = torch.optim.AdamW(net_g.parameters(), config.train.learning_rate)
            optim_d = torch.optim.AdamW(net_d.parameters(), config.train.learning_rate)
            scheduler_g = torch.optim.lr_scheduler.ExponentialLR(optim_g, gamma=0.999)
            scheduler_d = torch.optim.lr_scheduler.ExponentialLR(optim_d, gamma=0.999)
            optim_d.step()
            optim_g.step()
            scaler = GradScaler(enabled=config.train.fp16_run)
            for epoch in range(config.train.epochs):
                train_and_evaluate(config, [net_g, net_d], [optim_g, optim_d], scaler)
                scheduler_g.step()
                scheduler_d.step()

        def train_and_evaluate(config, nets, optims, scaler):
            net_g, net_d = nets
            optim_g, optim_d = optims
            for batch in loader:
                with autocast(enabled=config.train.fp16_run):
                    y_hat = net_g(batch)
                    loss_disc = discriminator_loss(net_d(batch, y_hat.detach()))
                optim_d.zero_grad()
                scaler.scale(loss_disc).backward()
                scaler.unscale_(optim_d)
                scaler.step(optim_d)
                with autocast(enabled=config.train.fp16_run):
                    loss_gen_all = generator_loss(net_d(batch, y_hat))
                optim_g.zero_grad()
                scaler.scale(loss_gen_all).backward()
                scaler.unscale_(optim_g)
                scaler.step(optim_g)
                scaler.update()
    """
    assert amp307(source) == []


def test_ocp_trainer_steps_through_the_scaler_in_its_backward_helper():
    """Open-Catalyst-Project/ocp 4191ea6bea0951780ee050df308ce9c9beca8030
    ocpmodels/trainers/ocp_trainer.py (each loss term scaled in `_compute_loss` when there is a
    scaler) with `_backward` of 039937be87c7291f7cd4c0f521774ced4aebdf3e
    ocpmodels/trainers/base_trainer.py (zero_grad, backward, then `scaler.step` or
    `optimizer.step()` in the two branches of `if self.scaler`)."""
    source = """
        import torch

        class OCPTrainer:
            def __init__(self, config):
                self.scaler = torch.cuda.amp.GradScaler() if config["amp"] else None

            def train(self):
                for batch in self.train_loader:
                    with torch.cuda.amp.autocast(enabled=self.scaler is not None):
                        out = self._forward(batch)
                        loss = self._compute_loss(out, batch)
                    self._backward(loss)
                    self.scheduler.step()

            def _compute_loss(self, out, batch):
                loss = []
                for name, loss_fn in self.loss_fns:
                    loss_ = loss_fn(out[name], batch[name])
                    if self.scaler:
                        loss_ = self.scaler.scale(loss_)
                    loss.append(loss_)
                return sum(loss)

            def _backward(self, loss):
                self.optimizer.zero_grad()
                loss.backward()
                if self.clip_grad_norm:
                    if self.scaler:
                        self.scaler.unscale_(self.optimizer)
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_grad_norm)
                if self.scaler:
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                else:
                    self.optimizer.step()
    """
    assert amp307(source) == []
    bypassed = textwrap.dedent(source).replace(
        "        if self.scaler:\n            self.scaler.step(self.optimizer)\n"
        "            self.scaler.update()\n        else:\n            self.optimizer.step()\n",
        "        self.optimizer.step()\n",
    )
    assert bypassed != textwrap.dedent(source)
    [(line, message)] = amp307(bypassed)  # the same trainer without the scaler branch
    assert "self._backward() steps the optimizer directly" in message


def test_dytox_scaler_updates_in_a_third_method():
    """arthurdouillard/dytox 86eee672f48d6c7de2a22da6d005ae28aaf77be1 continual/scaler.py:
    the backward in `pre_step`, `scaler.step` in `post_step`, `scaler.update()` in `update`
    (called from `post_step`, and by the engine on its own)."""
    source = """
        import torch

        class ContinualScaler:
            def __init__(self, disable_amp):
                self._scaler = torch.cuda.amp.GradScaler(enabled=not disable_amp)

            def __call__(self, loss, optimizer, model, clip_grad=None, parameters=None):
                self.pre_step(loss, optimizer, parameters, clip_grad)
                self.post_step(optimizer, model)

            def pre_step(self, loss, optimizer, parameters=None, clip_grad=None):
                self._scaler.scale(loss).backward()
                self._scaler.unscale_(optimizer)
                if clip_grad is not None:
                    torch.nn.utils.clip_grad_norm_(parameters, clip_grad)

            def post_step(self, optimizer, model):
                model.hook_before_update()
                self._scaler.step(optimizer)
                model.hook_after_update()
                self.update()

            def update(self):
                self._scaler.update()
    """
    assert amp307(source) == []


def test_callbacks_a_framework_calls_are_silent():
    """SadEnjoyer/diffusion 4c805587ec411decbfac6019a9b4905e1b7f6c6c
    callbacks/mixed_precision_callback.py (the fast.ai course's MixedPrecision callback): the
    learner of another module calls `backward` and `step`; the plain `learn.opt.step()` of the
    base callback lives in that other module too."""
    source = """
        import torch
        from .train_callback import TrainCB

        class MixedPrecisionCB(TrainCB):
            def before_fit(self, learn):
                self.scaler = torch.cuda.amp.GradScaler()

            def before_batch(self, learn):
                self.autocast = torch.autocast("cuda", dtype=torch.float16)
                self.autocast.__enter__()

            def backward(self, learn):
                self.scaler.scale(learn.loss).backward()

            def step(self, learn):
                self.scaler.step(learn.opt)
                self.scaler.update()
    """
    assert amp307(source) == []


NERFACC_NGP = """
    import torch
    import torch.nn.functional as F

    def train(radiance_field, loader, max_steps=20000):
        grad_scaler = torch.cuda.amp.GradScaler(2**10)
        optimizer = torch.optim.Adam(radiance_field.parameters(), lr=1e-2, eps=1e-15)
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[max_steps // 2])
        for step, (rays, pixels) in enumerate(loader):
            rgb = render(radiance_field, rays)
            loss = F.smooth_l1_loss(rgb, pixels)
            optimizer.zero_grad()
            # do not unscale it because we are using Adam.
            grad_scaler.scale(loss).backward()
            optimizer.step()
            scheduler.step()
"""


def test_nerfacc_scale_left_on_purpose_for_adam():
    """KAIR-BAIR/nerfacc fb876fd43eaa7fd1724d002dd5c9bd30255470bf
    examples/train_ngp_nerf.py scales by 2**10 and steps Adam directly ("do not unscale it
    because we are using Adam"): Adam nearly cancels the scale, but nothing skips a step on
    inf/NaN gradients, and the finding says exactly that. examples/train_mlp_nerf.py of the
    same commit makes its scaler with a scale of 1 that nothing updates: a no-op, not
    reported. (The file names no autocast or float16 — its MLP runs in half precision inside
    tiny-cuda-nn — so it is checked as --assume-amp checks it.)"""
    assumed = Settings(assume_amp="float16")
    [(line, message)] = amp307(NERFACC_NGP, assumed)
    assert line == 15
    assert "Adam nearly cancels the loss scale, but it steps on inf/NaN gradients too" in message
    assert amp307(NERFACC_NGP.replace("GradScaler(2**10)", "GradScaler(1)"), assumed) == []
