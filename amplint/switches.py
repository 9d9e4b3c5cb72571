"""The switch table: every call that turns reduced precision on, what it covers and how it is
read. The rest of amplint reads only this table: the precision model to recognise a switch, the
engine and the project pass for their cheap text pre-filters (:func:`mentioned`, :func:`in_code`).

Coverage:

* ``PROCESS`` — everything that runs after it: MXNet ``amp.init()``, a Keras global policy,
  apex ``amp.initialize`` (O1 patches torch functions), ``torch.set_default_dtype``.
* ``OBJECT`` — one model and what it is built from: Gluon ``net.cast(dtype)``, ``.half()``,
  ``.bfloat16()``, ``.to(dtype)``; wrappers taking the model: DeepSpeed's engine (its config's
  ``fp16``/``bf16``), Lightning's ``Trainer(precision=...)`` (``trainer.fit(model)``), Hugging
  Face's ``Trainer(model, args=TrainingArguments(fp16=...))`` and Accelerate's
  ``accelerator.prepare(model)`` with ``Accelerator(mixed_precision=...)``.
* ``BLOCK`` — the body of ``with torch.autocast(...)`` (every spelling), and what it calls.
* ``LAYER`` — one layer built with ``dtype='float16'`` (``mixed_float16`` in Keras).

``how`` says what the switch does to values: ``AUTOCAST`` casts per operation and keeps losses
and softmax in float32 (MXNet's lists, torch autocast, Keras policies: AMP101 does not apply to
their losses); ``WEIGHTS`` casts the parameters, so outputs are float16 too.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

PROCESS, OBJECT, BLOCK, LAYER = "process", "object", "block", "layer"
AUTOCAST, WEIGHTS = "autocast", "weights"


@dataclass(frozen=True)
class Switch:
    """One kind of switch: how calls are recognised, where the dtype and the on/off flag are,
    and the words a file must contain to hold one (the pre-filter)."""

    what: str  # as messages name it
    scope: str
    how: str
    qualnames: tuple[str, ...] = ()  # resolved callee names...
    suffixes: tuple[str, ...] = ()  # ...or resolved names ending so (Keras' many modules)
    method: str | None = None  # ...or a method of any object
    dtype: tuple[int | None, str | None] | None = None  # where the dtype argument is
    default: str | None = "float16"  # the dtype without that argument
    enabled: tuple[int | None, str] | None = None  # where an on/off argument is
    reader: str = "dtype"  # how the argument reads (see amplint.precision)
    # the text pre-filter: (a plain substring, the regular expression confirming it or None)
    words: tuple[tuple[str, str | None], ...] = ()
    framework: str | None = "torch"  # whose layers it makes reduced (None: any)


_AUTOCAST = ("torch.autocast", "torch.amp.autocast", "torch.amp.autocast_mode.autocast")
_CUDA_AUTOCAST = ("torch.cuda.amp.autocast", "torch.cuda.amp.autocast_mode.autocast")
_CPU_AUTOCAST = ("torch.cpu.amp.autocast", "torch.cpu.amp.autocast_mode.autocast")
_POLICY = ("set_global_policy", "set_policy", "set_dtype_policy")
_DTYPE_WORD = r"(?:float16|bfloat16|half|fp16|bf16)"

SWITCHES: tuple[Switch, ...] = (
    Switch(
        "amp.init()",
        PROCESS,
        AUTOCAST,
        qualnames=(
            "mxnet.contrib.amp.init",
            "mxnet.contrib.amp.amp.init",
            "mxnet.amp.init",  # MXNet 2
            "gluon_amp.init",
        ),
        dtype=(0, "target_dtype"),
        words=((".init(", r"amp(?<!\wamp)\.init\("),),
        framework="mxnet",
    ),
    Switch(
        "a mixed precision policy",
        PROCESS,
        AUTOCAST,
        suffixes=tuple(f"mixed_precision.{name}" for name in _POLICY)
        + ("mixed_precision.experimental.set_policy", "keras.config.set_dtype_policy"),
        dtype=(0, "name"),
        default=None,
        reader="policy",
        words=(("policy(", r"set_(?:global_|dtype_)?policy\("),),
        framework="keras",
    ),
    Switch(
        "apex amp.initialize()",
        PROCESS,
        AUTOCAST,
        qualnames=("apex.amp.initialize",),
        dtype=(None, "opt_level"),
        enabled=(None, "enabled"),
        reader="apex",
        default="float16",
        words=(("amp.initialize(", None),),
    ),
    Switch(
        "torch.set_default_dtype()",
        PROCESS,
        WEIGHTS,
        qualnames=("torch.set_default_dtype",),
        dtype=(0, "d"),
        default=None,
        words=(("set_default_dtype(", None),),
    ),
    Switch(
        "autocast",
        BLOCK,
        AUTOCAST,
        qualnames=_AUTOCAST,
        dtype=(1, "dtype"),
        enabled=(2, "enabled"),
        reader="autocast",
        words=(("autocast", None),),
    ),
    Switch(
        "autocast",
        BLOCK,
        AUTOCAST,
        qualnames=_CUDA_AUTOCAST,
        dtype=(1, "dtype"),
        enabled=(0, "enabled"),
        words=(("autocast", None),),
    ),
    Switch(
        "CPU autocast",
        BLOCK,
        AUTOCAST,
        qualnames=_CPU_AUTOCAST,
        dtype=(1, "dtype"),
        default="bfloat16",
        enabled=(0, "enabled"),
        words=(("autocast", None),),
    ),
    Switch(
        "cast()",
        OBJECT,
        WEIGHTS,
        method="cast",
        dtype=(0, "dtype"),
        default=None,
        words=((".cast(", r"\.cast\(\s*[\w.'\"]+\s*\)"),),
        framework="mxnet",
    ),
    Switch(".half()", OBJECT, WEIGHTS, method="half", words=((".half(", r"\.half\(\s*\)"),)),
    Switch(
        ".bfloat16()",
        OBJECT,
        WEIGHTS,
        method="bfloat16",
        default="bfloat16",
        words=((".bfloat16(", r"\.bfloat16\(\s*\)"),),
    ),
    Switch(
        ".to(dtype)",
        OBJECT,
        WEIGHTS,
        method="to",
        dtype=(None, "dtype"),
        default=None,
        reader="to",
        words=((".to(", r"\.to\([^)]*" + _DTYPE_WORD),),
    ),
    Switch(
        "DeepSpeed",
        OBJECT,
        WEIGHTS,
        qualnames=("deepspeed.initialize",),
        default=None,
        reader="deepspeed",
        words=(("deepspeed.initialize(", None),),
    ),
    Switch(
        "Lightning Trainer(precision=...)",
        OBJECT,
        AUTOCAST,
        suffixes=("lightning.Trainer", "lightning.pytorch.Trainer", "lightning.fabric.Fabric"),
        dtype=(None, "precision"),
        default=None,
        reader="lightning",
        words=(
            ("precision", r"precision\s*=\s*(?:['\"]?(?:16|bf16|b?float16)|[\w.]*precision\b)"),
        ),
    ),
    Switch(
        "TrainingArguments(fp16=...)",
        OBJECT,
        AUTOCAST,
        suffixes=("TrainingArguments",),
        default=None,
        reader="hf",
        words=(("f16", r"(?:fp16|bf16)\s*="),),
    ),
    Switch(
        "Accelerator(mixed_precision=...)",
        OBJECT,
        AUTOCAST,
        qualnames=("accelerate.Accelerator", "accelerate.accelerator.Accelerator"),
        dtype=(None, "mixed_precision"),
        default=None,
        reader="accelerate",
        words=(("mixed_precision", r"mixed_precision\s*="),),
    ),
)

# Layers given a reduced ``dtype=`` (any layer constructor): one layer.
LAYER_DTYPE = Switch(
    "dtype=",
    LAYER,
    WEIGHTS,
    dtype=(None, "dtype"),
    default=None,
    reader="policy",
    words=(("float16", r"dtype\s*=\s*[\w.]*['\"]?(?:mixed_)?b?float16"),),
    framework=None,
)

# Calls that make a PyTorch GradScaler (or an object with its API), and where they take
# ``init_scale`` and ``enabled`` by position (AMP305 and AMP307 read scalers, see
# amplint.rules.amp307_grad_scaler_bypassed).
GRAD_SCALERS: dict[str, tuple[int | None, int | None]] = {
    "torch.cuda.amp.GradScaler": (0, 4),
    "torch.cuda.amp.grad_scaler.GradScaler": (0, 4),
    "torch.cpu.amp.GradScaler": (0, 4),
    "torch.amp.GradScaler": (1, 5),
    "torch.amp.grad_scaler.GradScaler": (1, 5),
    "torch.GradScaler": (1, 5),
    "torch.distributed.fsdp.sharded_grad_scaler.ShardedGradScaler": (1, 5),
    "fairscale.optim.grad_scaler.ShardedGradScaler": (0, 4),
    "accelerate.utils.get_grad_scaler": (None, None),
}
# A scaler's own call on an object named like one, also one a helper receives as a parameter
# (``grad_scaler.scale(loss)``): rules check those without any precision switch in the file.
SCALER_CALL = r"[Ss]caler\w*\s*\.\s*(?:scale|step|unscale_)\s*\("

# What scales losses or wraps backward (words for the pre-filter; amplint.scaling reads calls),
# and contrib.amp calls rules check without any switch (AMP302-AMP304).
SCALING_WORDS = (
    ("scale_loss", None),
    ("init_trainer", None),
    ("LossScaleOptimizer", None),
    *((name.rsplit(".", 1)[1], None) for name in GRAD_SCALERS),
    ("caler", SCALER_CALL),
)
# Options that choose a precision (``--fp16``, ``--amp``, ``--dtype``, ``--precision``...).
OPTION_WORDS = (
    ("fp16", r"\bfp16\b"),
    ("bf16", r"\bbf16\b"),
    ("float16", None),
    ("amp", r"\bamp\b"),
    ("precision", r"(?:mixed|multi)[-_]precision"),
    ("half", r"--(?:use[-_])?half\b"),
    ("add_argument", r"add_argument\([^)]*dtype"),
)


@functools.lru_cache(maxsize=1)
def _words() -> tuple[tuple[str, re.Pattern[str] | None], ...]:
    words = [w for switch in (*SWITCHES, LAYER_DTYPE) for w in switch.words]
    return tuple(
        (needle, re.compile(regex) if regex else None)
        for needle, regex in dict.fromkeys([*words, *SCALING_WORDS, *OPTION_WORDS])
    )


def mentioned(text: str) -> bool:
    """Whether ``text`` holds a word of any switch, loss-scaling call or precision option of
    the table (a plain substring search first, the word's expression only where it is found):
    files without one need no parse."""
    return any(
        needle in text and (pattern is None or pattern.search(text) is not None)
        for needle, pattern in _words()
    )


@functools.lru_cache(maxsize=32)
def in_code(source: str) -> bool:
    """:func:`mentioned` in the code itself: a word only in comments or string literals
    ("# clip to float16.max") does not count. Only sources it matches are tokenized; the
    project pass and the check ask about the same text, so the answer is remembered."""
    if not mentioned(source):
        return False
    from amplint.project import code_only

    code = code_only(source)
    return code is None or mentioned(code)


def recognise(qualname: str | None, method: str | None) -> tuple[Switch, ...]:
    """The switches a call may be, by its resolved name or its method."""
    found = []
    for switch in SWITCHES:
        if qualname is not None and (
            qualname in switch.qualnames or qualname.endswith(switch.suffixes or ("\0",))
        ):
            found.append(switch)
        elif switch.method is not None and method == switch.method:
            found.append(switch)
    return tuple(found)
