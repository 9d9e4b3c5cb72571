# ruff: noqa: E501  (a finding is marked on the line it is reported at)
"""Reduced precision decided in one module of a project and computed in another: the model
classes a script builds, casts and trains live in other modules."""

from __future__ import annotations

from realcase import check_project

INTERFACE = """
class ASRInterface:
    def forward(self, xs, ilens, ys):
        raise NotImplementedError("forward method is not implemented")
"""
DYNAMIC_IMPORT = """
import importlib
def dynamic_import(import_path, alias=dict()):
    if ":" not in import_path:
        import_path = alias[import_path]
    module_name, objname = import_path.split(":")
    return getattr(importlib.import_module(module_name), objname)
"""


def test_a_model_class_chosen_at_run_time_is_any_class_of_the_type_it_is_checked_against(
    tmp_path,
):
    """espnet 202402 (PyPI), espnet/asr/pytorch_backend/asr_mix.py: ``model_class =
    dynamic_import(args.model_module)``, ``assert isinstance(model, ASRInterface)``, then
    ``model.to(device=device, dtype=getattr(torch, args.train_dtype))``; the model classes
    derive from ASRInterface in other modules (espnet/nets/pytorch_backend/e2e_asr_mix.py,
    simplified; a second one derives from the first). A class of the same module that is not
    an ASRInterface, and one that no cast reaches, stay float32."""
    check_project(
        tmp_path,
        {
            "espx/__init__.py": "",
            "espx/nets/__init__.py": "",
            "espx/utils/__init__.py": "",
            "espx/asr/__init__.py": "",
            "espx/nets/asr_interface.py": INTERFACE,
            "espx/utils/dynamic_import.py": DYNAMIC_IMPORT,
            "espx/nets/e2e_asr_mix.py": """
                import torch
                from espx.nets.asr_interface import ASRInterface
                class E2E(ASRInterface, torch.nn.Module):
                    def __init__(self, idim, odim, args):
                        torch.nn.Module.__init__(self)
                        self.enc = torch.nn.LSTM(idim, 300, bidirectional=True)  # AMP201 (asr/asr_mix.py: args.train_dtype=float16)
                        self.output = torch.nn.Linear(600, odim)
                class PIT(object):
                    def __init__(self, num_spkrs):
                        self.proj = torch.nn.Linear(83, 300)
                """,
            "espx/nets/e2e_asr_mix_transformer.py": """
                import torch
                from espx.nets.e2e_asr_mix import E2E as E2EASRMIX
                class E2E(E2EASRMIX):
                    def __init__(self, idim, odim, args):
                        super().__init__(idim, odim, args)
                        self.ctc_lo = torch.nn.Linear(256, 1001)  # AMP201 (asr/asr_mix.py: args.train_dtype=float16)
                """,
            "espx/asr/asr_mix.py": """
                import torch
                from espx.nets.asr_interface import ASRInterface
                from espx.utils.dynamic_import import dynamic_import
                def train(args):
                    model_class = dynamic_import(args.model_module)
                    model = model_class(83, 52, args)
                    assert isinstance(model, ASRInterface)
                    if args.train_dtype in ("float16", "float32", "float64"):
                        dtype = getattr(torch, args.train_dtype)
                    else:
                        dtype = torch.float32
                    model = model.to(device="cuda", dtype=dtype)
                    optimizer = torch.optim.Adadelta(model.parameters())
                    for x, ilens, ys in loader:
                        loss = model(x, ilens, ys)
                        loss.backward()  # AMP301 (args.train_dtype=float16)
                        optimizer.step()
                """,
        },
    )
