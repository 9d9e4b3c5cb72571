# ruff: noqa: E501  (a finding is marked on the line it is reported at)
"""Sizes that reach a layer through the configuration model: an option's default handed to
a constructor, picked by a ternary, or read from a namespace inside the model class."""

from __future__ import annotations

from realcase import check


def test_an_option_default_picked_by_a_ternary_inside_the_model():
    """salesforce/awd-lstm-lm@1d466ec5875675ca6b6f0caacbb741240a29da9e, main.py (``--nhid``
    defaults to 1150, ``RNNModel(args.model, ntokens, args.emsize, args.nhid, ...)``) and
    model.py (``nhid if l != nlayers - 1 else (ninp if tie_weights else nhid)``), in one file,
    with a ``--fp16`` switch added: the hidden size is 1150 by default in both branches of the
    ternary, and the GRU only runs with ``--model GRU``."""
    check(
        """
        import argparse
        import torch
        import torch.nn as nn
        class RNNModel(nn.Module):
            def __init__(self, rnn_type, ntoken, ninp, nhid, nlayers, tied=False):
                super(RNNModel, self).__init__()
                self.encoder = nn.Embedding(ntoken, ninp)
                if rnn_type == 'LSTM':
                    self.rnns = [
                        torch.nn.LSTM(
                            ninp if l == 0 else nhid,
                            nhid if l != nlayers - 1 else (ninp if tied else nhid),  # AMP201 (--fp16 --model LSTM)
                            1,
                        )
                        for l in range(nlayers)
                    ]
                if rnn_type == 'GRU':
                    self.rnns = [
                        torch.nn.GRU(
                            ninp if l == 0 else nhid,
                            nhid if l != nlayers - 1 else ninp,  # AMP201 (--fp16 --model GRU)
                            1,
                        )
                        for l in range(nlayers)
                    ]
                self.rnns = torch.nn.ModuleList(self.rnns)
                self.decoder = nn.Linear(nhid, ntoken)  # AMP201 (--fp16)
        parser = argparse.ArgumentParser()
        parser.add_argument('--model', type=str, default='LSTM')
        parser.add_argument('--emsize', type=int, default=400)
        parser.add_argument('--nhid', type=int, default=1150)
        parser.add_argument('--nlayers', type=int, default=3)
        parser.add_argument('--fp16', action='store_true')
        args = parser.parse_args()
        model = RNNModel(args.model, 10000, args.emsize, args.nhid, args.nlayers)
        if args.fp16:
            model.half()
        """
    )
