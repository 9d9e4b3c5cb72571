"""Where code runs in reduced precision: signals in a file and float32 branches.

Signals: ``amp.init(...)`` (contrib and gluon_amp), ``.cast('float16')``, ``dtype='float16'``
arguments, Keras ``set_global_policy('mixed_float16')``, ``autocast(...)``, ``.half()`` and
argparse options whose default or choices are a reduced precision (or flags named like ``--amp``).
Code on the float32 side of ``if args.amp:`` is float32.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import libcst as cst

from amplint.frameworks import find_layer, mxnet, torch
from amplint.index import CALL, IF_BODY, IF_ELSE, CallSite, FileIndex, dotted, string_value
from amplint.project import POLICY_CALLS
from amplint.values import fold

FLOAT16, BFLOAT16 = "float16", "bfloat16"
_DTYPE_NAMES = {
    "float16": FLOAT16,
    "half": FLOAT16,
    "mixed_float16": FLOAT16,
    "fp16": FLOAT16,
    "bfloat16": BFLOAT16,
    "mixed_bfloat16": BFLOAT16,
    "bf16": BFLOAT16,
}
_FLAG = re.compile(r"^-*(use[-_])?(amp|fp16|half|mixed[-_]precision|float16)$")
_AMP_WORD = re.compile(r"(^|_)(amp|fp16|half|float16|mixed_precision|scaler|loss_scaler|use_amp)$")


# Switches that affect only the code around them (unlike amp.init or a Keras global policy).
LOCAL_SWITCHES = ("autocast", ".half()")


@dataclass(frozen=True)
class Signal:
    """One place that turns on reduced precision."""

    precision: str
    site: CallSite
    what: str
    # False for a bare ``dtype=`` on a tensor (data, not the model's training precision)
    strong: bool = True


def dtype_of(expr: cst.BaseExpression | None, index: FileIndex, site: CallSite) -> str | None:
    """'float16' / 'bfloat16' when ``expr`` denotes one (a string, ``np.float16``, an argparse
    default), else None."""
    if expr is None:
        return None
    name = dotted(expr)
    if name is not None and "." in name and name.rsplit(".", 1)[1] in _DTYPE_NAMES:
        return _DTYPE_NAMES[name.rsplit(".", 1)[1]]  # np.float16, torch.half, tf.bfloat16
    value = fold(expr, index, site.scope)
    if value is not None and isinstance(value.value, str):
        return _DTYPE_NAMES.get(value.value)
    return None


def signals(index: FileIndex) -> list[Signal]:
    """Every reduced-precision signal of the file, in source order."""
    found = []
    for site in index.calls:
        signal = _signal(site, index)
        if signal is not None:
            strong = not signal[1].startswith("dtype=") or find_layer(site.qualname) is not None
            found.append(Signal(signal[0], site, signal[1], strong))
    return found


def _signal(site: CallSite, index: FileIndex) -> tuple[str, str] | None:
    qualname, method = site.qualname, site.method
    if mxnet.amp_function(qualname, "init"):
        dtype = site.arg(0, "target_dtype")
        return dtype_of(dtype, index, site) or FLOAT16, "amp.init()"
    if qualname in torch.AUTOCAST or qualname in torch.CPU_AUTOCAST:
        enabled = fold(site.arg(None, "enabled"), index, site.scope)
        if enabled is not None and enabled.value is False:
            return None
        dtype = dtype_of(site.arg(None, "dtype"), index, site)
        device = fold(site.arg(0, "device_type"), index, site.scope)
        cpu = qualname in torch.CPU_AUTOCAST or (device is not None and device.value == "cpu")
        return dtype or (BFLOAT16 if cpu else FLOAT16), "autocast"
    if method == "cast" and len(site.node.args) == 1:
        dtype = dtype_of(site.node.args[0].value, index, site)
        return (dtype, f"cast('{dtype}')") if dtype else None
    if method in POLICY_CALLS or site.name in POLICY_CALLS:
        dtype = dtype_of(site.arg(0, "name"), index, site)
        return (dtype, "a mixed precision policy") if dtype else None
    if method == "half" and not site.node.args and not half_for_storage(site):
        return FLOAT16, ".half()"
    if method == "add_argument":
        return _argparse_signal(site, index)
    dtype = dtype_of(site.arg(None, "dtype"), index, site)
    if dtype is not None and method not in ("astype", "to"):
        return dtype, f"dtype='{dtype}'"
    return None


def half_for_storage(site: CallSite) -> bool:
    """``.half().float()`` round trips and ``.half()`` for a checkpoint are not float16 training."""
    for kind, node in reversed(site.ancestors):
        if kind != CALL:
            continue
        assert isinstance(node, cst.Call)
        func = node.func
        if isinstance(func, cst.Attribute) and func.value is site.node:
            if func.attr.value in ("float", "state_dict", "numpy", "cpu", "save"):
                return True
        name = dotted(func)
        if name is not None and name.rsplit(".", 1)[-1] in ("save", "save_file", "save_parameters"):
            return True
    return False


def _argparse_signal(site: CallSite, index: FileIndex) -> tuple[str, str] | None:
    flags = [string_value(a.value) for a in site.node.args if a.keyword is None]
    choices = site.arg(None, "choices")
    candidates = [site.arg(None, "default")]
    if isinstance(choices, (cst.List, cst.Tuple, cst.Set)):
        candidates += [element.value for element in choices.elements]
    for candidate in candidates:
        dtype = dtype_of(candidate, index, site)
        if dtype is not None:
            return dtype, f"the {flags[0] if flags else 'command-line'} option"
    if any(flag and _FLAG.match(flag) for flag in flags):
        return FLOAT16, f"the {next(f for f in flags if f)} option"
    return None


def _amp_test(test: cst.BaseExpression) -> bool | None:
    """Whether an ``if`` test asks "is AMP on?" (True), "is AMP off?" (False), or neither (None)."""
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        inner = _amp_test(test.expression)
        return None if inner is None else not inner
    if isinstance(test, cst.Comparison) and len(test.comparisons) == 1:
        target = test.comparisons[0]
        base = _amp_test(test.left)
        op = target.operator
        if isinstance(target.comparator, cst.Name) and target.comparator.value == "None":
            if base is None:
                return None
            return base if isinstance(op, cst.IsNot) else not base
        text = string_value(target.comparator) or dotted(target.comparator) or ""
        word = text.rsplit(".", 1)[-1]
        positive = isinstance(op, (cst.Equal, cst.Is, cst.In))
        negative = isinstance(op, (cst.NotEqual, cst.IsNot, cst.NotIn))
        if word in _DTYPE_NAMES and (positive or negative):
            return positive
        if word == "float32" and (positive or negative):
            return negative
        return None
    name = dotted(test)
    if name is not None and _AMP_WORD.search(name.rsplit(".", 1)[-1].lower()):
        return True
    return None


def in_float32_branch(site: CallSite) -> bool:
    """Whether the call sits on the float32 side of an ``if`` that switches AMP."""
    for kind, node in site.ancestors:
        if kind not in (IF_BODY, IF_ELSE):
            continue
        assert isinstance(node, cst.If)
        amp_on = _amp_test(node.test)
        if amp_on is None or (kind == IF_ELSE and isinstance(node.orelse, cst.If)):
            continue  # not an AMP switch, or an ``elif`` chain whose branches we cannot order
        if (kind == IF_BODY) != amp_on:
            return True
    return False
