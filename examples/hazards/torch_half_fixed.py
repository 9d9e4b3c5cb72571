"""A small text classifier trained with autocast and GradScaler (float32 master weights)."""

import argparse

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

parser = argparse.ArgumentParser()
parser.add_argument("--vocab-size", type=int, default=30528)  # 30522 padded to a multiple of 8
parser.add_argument("--classes", type=int, default=24)  # 20 classes padded; extra logits unused
parser.add_argument("--batch-size", type=int, default=48)
args = parser.parse_args()


class Classifier(nn.Module):
    def __init__(self, vocab, classes, width=304):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.rnn = nn.LSTM(width, 256, batch_first=True)
        self.head = nn.Linear(256, classes)

    def forward(self, tokens):
        out, _ = self.rnn(self.embed(tokens))
        return self.head(out[:, -1])


model = Classifier(args.vocab_size, args.classes).cuda()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
scaler = torch.cuda.amp.GradScaler()
loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True)

for tokens, labels in loader:
    with torch.autocast(device_type="cuda", dtype=torch.float16):
        logits = model(tokens.cuda())
        loss = F.cross_entropy(logits, labels.cuda())
    optimizer.zero_grad()
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()

torch.save(model.half().state_dict(), "classifier_fp16.pt")
