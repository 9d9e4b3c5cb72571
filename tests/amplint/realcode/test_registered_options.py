# ruff: noqa: E501  (a finding is marked on the line it is reported at)
"""Options a model registers on the parser it is handed (``E2E.add_arguments(parser)``), through
functions of other modules, and the namespace its constructor hands on to builder functions of
a third module: what ``args.eunits`` is where no module parses it."""

from __future__ import annotations

from realcase import check, check_project

ARGUMENT = """
def add_arguments_rnn_encoder_common(group):
    group.add_argument("--etype", default="blstmp", type=str, choices=["lstm", "blstm", "lstmp", "blstmp"])
    group.add_argument("--elayers", default=4, type=int)
    group.add_argument("--eunits", "-u", default=300, type=int)
    group.add_argument("--eprojs", default=320, type=int)
    return group
"""
ENCODERS = """
import torch
class RNNP(torch.nn.Module):
    def __init__(self, idim, elayers, cdim, hdim, typ="blstm"):
        super().__init__()
        bidir = typ[0] == "b"
        for i in range(elayers):
            inputdim = idim if i == 0 else hdim
            RNN = torch.nn.LSTM if "lstm" in typ else torch.nn.GRU
            self.add_module("rnn%d" % i, RNN(inputdim, cdim, num_layers=1, bidirectional=bidir)){bt}
            if bidir:
                self.add_module("bt%d" % i, torch.nn.Linear(2 * cdim, hdim))
            else:
                self.add_module("bt%d" % i, torch.nn.Linear(cdim, hdim)){bt}
class Encoder(torch.nn.Module):
    def __init__(self, etype, idim, elayers, eunits, eprojs):
        super().__init__()
        typ = etype.lstrip("vgg").rstrip("p")
        self.enc = torch.nn.ModuleList([RNNP(idim, elayers, eunits, eprojs, typ=typ)])
def encoder_for(args, idim):
    num_encs = getattr(args, "num_encs", 1)
    if num_encs == 1:
        return Encoder(args.etype, idim, args.elayers, args.eunits, args.eprojs)
    encoders = torch.nn.ModuleList()
    for idx in range(num_encs):
        encoders.append(Encoder(args.etype[idx], idim[idx], args.elayers[idx], args.eunits[idx], args.eprojs))
    return encoders
"""
MODEL = """
import torch
from espx.nets.rnn.argument import add_arguments_rnn_encoder_common
from espx.nets.rnn.encoders import encoder_for
from espx.utils.fill_missing_args import fill_missing_args
class E2E(torch.nn.Module):
    @staticmethod
    def add_arguments(parser):
        E2E.encoder_add_arguments(parser)
        return parser
    @staticmethod
    def encoder_add_arguments(parser):
        group = parser.add_argument_group("E2E encoder setting")
        group = add_arguments_rnn_encoder_common(group)
        return parser
    def __init__(self, idim, odim, args):
        super().__init__()
        args = fill_missing_args(args, self.add_arguments)
        self.embed = torch.nn.Embedding(idim, args.eunits){embed}
        self.enc = encoder_for(args, args.eunits)
        self.out = torch.nn.Linear(args.eprojs, 1024)
"""
FILL = """
import argparse
def fill_missing_args(args, add_arguments):
    parser = add_arguments(argparse.ArgumentParser())
    defaults = vars(parser.parse_args([]))
    return argparse.Namespace(**dict(defaults, **vars(args)))
"""
TRAIN = """
import argparse
import torch
from espx.nets.e2e_mt import E2E
def get_parser():
    parser = argparse.ArgumentParser()
    parser.add_argument("--train-dtype", default="float32", choices=["float16", "float32"])
    return parser
def main():
    parser = get_parser()
    E2E.add_arguments(parser)
    args = parser.parse_args()
    model = E2E(4000, 1024, args){cast}
    optimizer = torch.optim.Adadelta(model.parameters())
"""
FLOAT16 = "  # AMP201 ({})"
CAST = "\n    model = model.to(dtype=getattr(torch, args.train_dtype))"


def _files(cast: bool) -> dict[str, str]:
    where = "bin/mt_train.py: --train-dtype float16"
    mark = FLOAT16.format(where) if cast else ""
    return {
        "espx/__init__.py": "",
        "espx/bin/__init__.py": "",
        "espx/nets/__init__.py": "",
        "espx/nets/rnn/__init__.py": "",
        "espx/utils/__init__.py": "",
        "espx/utils/fill_missing_args.py": FILL,
        "espx/nets/rnn/argument.py": ARGUMENT,
        "espx/nets/rnn/encoders.py": ENCODERS.replace(
            "{bt}", mark.replace(")", " args.num_encs=1)")
        ),
        "espx/nets/e2e_mt.py": MODEL.replace("{embed}", mark),
        "espx/bin/mt_train.py": TRAIN.replace("{cast}", CAST if cast else ""),
    }


def test_options_a_model_registers_through_another_module_have_their_defaults(tmp_path):
    """espnet 202402 (PyPI): espnet/nets/pytorch_backend/e2e_mt.py (``E2E.add_arguments`` ->
    ``encoder_add_arguments`` -> ``add_arguments_rnn_encoder_common(group)`` of
    espnet/nets/pytorch_backend/rnn/argument.py registers ``--eunits`` default 300;
    ``self.embed = torch.nn.Embedding(idim, args.eunits)`` at line 131, after
    ``args = fill_missing_args(args, self.add_arguments)``; ``encoder_for(args, ...)`` of
    espnet/nets/pytorch_backend/rnn/encoders.py builds ``Linear(cdim, hdim)`` at line 129 from
    ``args.eunits``), cast by espnet/mt/pytorch_backend/mt.py to ``--train-dtype``; shortened.
    The multi-encoder branch passes ``args.eunits[idx]`` (not told): the single-encoder call
    still counts. The bidirectional 2 * 300 and --eprojs 320 are multiples of 8. The RNN
    class is picked by a name (``RNN = torch.nn.LSTM if "lstm" in typ else torch.nn.GRU``,
    encoders.py line 33)."""
    check_project(tmp_path, _files(cast=True), select={"AMP201"})


def test_registered_options_of_a_model_left_in_float32_are_silent(tmp_path):
    """The same project when the script never casts the model: float32, silent."""
    check_project(tmp_path, _files(cast=False), select={"AMP201"})


def test_both_branches_run_when_callers_pass_different_values():
    """espnet 202402 (PyPI), espnet/nets/pytorch_backend/lm/default.py: ``RNNLM(n_vocab,
    n_layers, n_units, n_embed=None, typ="lstm")`` builds ``LSTMCell`` or, in the else branch,
    ``GRUCell(n_embed, n_units)`` (line 365); ``DefaultRNNLM`` passes ``args.type`` (choices
    lstm, gru) and recognition code passes nothing (the default "lstm"). The else branch runs
    with ``--type gru``: one caller's constant does not make the test true everywhere."""
    check(
        """
        import argparse
        import torch
        from torch import nn
        class RNNLM(nn.Module):
            def __init__(self, n_vocab, n_units, typ="lstm"):
                super().__init__()
                if typ == "lstm":
                    self.rnn = nn.LSTMCell(n_units, n_units)  # AMP201 (--train-dtype float16)
                else:
                    self.rnn = nn.GRUCell(n_units, n_units)  # AMP201 (--train-dtype float16 --type gru)
        def build_default(args):
            return RNNLM(1024, args.unit, args.type)
        def build_for_recognition(args):
            return RNNLM(1024, args.unit)
        parser = argparse.ArgumentParser()
        parser.add_argument("--type", type=str, default="lstm", choices=["lstm", "gru"])
        parser.add_argument("--unit", type=int, default=650)
        parser.add_argument("--train-dtype", default="float32", choices=["float16", "float32"])
        args = parser.parse_args()
        model = build_default(args).to(dtype=getattr(torch, args.train_dtype))
        decoder = build_for_recognition(args).to(dtype=getattr(torch, args.train_dtype))
        optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
        """,
        select={"AMP201"},
    )


def test_a_branch_no_caller_takes_stays_silent():
    """The trap: every caller passes the constant (or leaves the default) "lstm": the GRUCell
    branch never runs."""
    check(
        """
        import torch
        from torch import nn
        class RNNLM(nn.Module):
            def __init__(self, n_vocab, n_units, typ="lstm"):
                super().__init__()
                if typ == "lstm":
                    self.rnn = nn.LSTMCell(n_units, n_units)  # AMP201
                else:
                    self.rnn = nn.GRUCell(n_units, n_units)
        a = RNNLM(1024, 650, "lstm").half()
        b = RNNLM(1024, 650).half()
        optimizer = torch.optim.SGD(a.parameters(), lr=1.0)
        """,
        select={"AMP201"},
    )


def test_a_layer_class_picked_by_a_name_is_checked():
    """espnet 202402 (PyPI), espnet/nets/pytorch_backend/rnn/encoders.py line 33: ``RNN =
    torch.nn.LSTM if "lstm" in typ else torch.nn.GRU`` then ``RNN(inputdim, cdim, ...)``. The
    trap: a name that may hold a class of the project (its arguments are not a layer's)."""
    check(
        """
        import torch
        from blocks import Highway
        class Encoder(torch.nn.Module):
            def __init__(self, typ, idim):
                super().__init__()
                RNN = torch.nn.LSTM if "lstm" in typ else torch.nn.GRU
                self.rnn = RNN(idim, 300, batch_first=True)  # AMP201
                Layer = torch.nn.Linear if typ == "linear" else Highway
                self.proj = Layer(300, 300)
        model = Encoder("blstm", 80).half()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        """,
        select={"AMP201"},
    )
