"""A small text classifier trained with the whole model in .half()."""

import argparse

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

parser = argparse.ArgumentParser()
parser.add_argument("--vocab-size", type=int, default=30522)
parser.add_argument("--classes", type=int, default=20)
parser.add_argument("--batch-size", type=int, default=50)
args = parser.parse_args()


class Classifier(nn.Module):
    def __init__(self, vocab, classes, width=300):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)  # AMP201
        self.rnn = nn.LSTM(width, 256, batch_first=True)
        self.head = nn.Linear(256, classes)  # AMP201

    def forward(self, tokens):
        out, _ = self.rnn(self.embed(tokens))
        return self.head(out[:, -1])


model = Classifier(args.vocab_size, args.classes).cuda().half()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True)  # AMP202

for tokens, labels in loader:
    logits = model(tokens.cuda())
    loss = F.cross_entropy(logits, labels.cuda())  # AMP101
    optimizer.zero_grad()
    loss.backward()  # AMP301
    optimizer.step()

torch.save(model.half().state_dict(), "classifier_fp16.pt")
