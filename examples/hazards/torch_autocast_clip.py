"""GPT-style language model with autocast and GradScaler, clipping the still-scaled gradients."""

import torch
from torch import nn

VOCAB = 50257  # GPT-2's vocabulary
D_MODEL = 768


class TinyGPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(VOCAB, D_MODEL)  # AMP201
        self.blocks = nn.TransformerEncoder(nn.TransformerEncoderLayer(D_MODEL, 12), 4)
        self.lm_head = nn.Linear(D_MODEL, VOCAB, bias=False)  # AMP201

    def forward(self, idx):
        return self.lm_head(self.blocks(self.wte(idx)))


def train(model, batches, grad_clip=1.0):
    optimizer = torch.optim.AdamW(model.parameters(), lr=6e-4)
    scaler = torch.cuda.amp.GradScaler()
    for x, y in batches:
        with torch.autocast(device_type="cuda", dtype=torch.float16):
            logits = model(x)
            loss = nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
        scaler.scale(loss).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)  # AMP305
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)


if __name__ == "__main__":
    train(TinyGPT().cuda(), batches=load_batches())
