"""GPT-style language model with autocast and GradScaler, unscaling before clipping."""

import torch
from torch import nn

VOCAB = 50304  # GPT-2's 50257 padded to a multiple of 64 (nanoGPT): the extra rows are unused
D_MODEL = 768


class TinyGPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(VOCAB, D_MODEL)
        self.blocks = nn.TransformerEncoder(nn.TransformerEncoderLayer(D_MODEL, 12), 4)
        self.lm_head = nn.Linear(D_MODEL, VOCAB, bias=False)

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
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)


if __name__ == "__main__":
    train(TinyGPT().cuda(), batches=load_batches())
