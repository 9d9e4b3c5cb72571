"""What a model is built from: the layer constructors behind an object, when this module shows
them all (a class of the file, a ``Sequential`` of layers, a builder function); None when the
model comes from a library (``get_model(name)``, ``create_model``) or a class defined elsewhere.

AMP202 asks whether a model is an MLP or a step-by-step RNN: the only models whose costly GEMMs
have the batch as their row dimension. A CNN (the batch multiplies the spatial positions) or a
transformer (batch x sequence) is not one, and neither is a model amplint cannot see.
"""

from __future__ import annotations

import libcst as cst

from amplint.cases import Made
from amplint.index import CALL, CallSite, dotted

MLP, RNN = "mlp", "rnn"
_DENSE = {"Dense", "Linear", "LazyLinear"}
_RECURRENT = {"LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell", "SimpleRNN"}
# Layers that change nothing about where the costly GEMMs' rows come from.
_NEUTRAL = {
    "Embedding",
    "Dropout",
    "ReLU",
    "Tanh",
    "Sigmoid",
    "GELU",
    "SiLU",
    "LeakyReLU",
    "ELU",
    "Activation",
    "Softmax",
    "LogSoftmax",
    "LayerNorm",
    "BatchNorm1d",
    "BatchNorm",
    "Flatten",
    "Identity",
    "Sequential",
    "HybridSequential",
    "ModuleList",
    "ModuleDict",
    "SequentialCell",
    "Input",
    "InputLayer",
}
_FRAMEWORKS = ("torch.", "mxnet.", "keras.", "tensorflow.", "tf_keras.")
_MAX_PARTS = 400


def model_kind(root: CallSite, model) -> str | None:
    """MLP or RNN when every layer of the model built by ``root`` is known and the model is
    one; None otherwise (a CNN, a transformer, or a model amplint cannot see)."""
    parts = layers_of(root, model)
    if not parts:
        return None
    names = {name for name in parts}
    if not names <= _DENSE | _RECURRENT | _NEUTRAL:
        return None
    if names & _RECURRENT:
        return RNN
    return MLP if names & _DENSE else None


def layers_of(root: CallSite, model) -> list[str] | None:
    """Class names of the framework layers the model built by ``root`` is made of; None when
    some part of it is not known."""
    index = model.index
    found: list[str] = []
    pending = [root]
    seen: set[int] = set()
    while pending:
        site = pending.pop()
        if id(site) in seen:
            continue
        seen.add(id(site))
        if len(seen) > _MAX_PARTS:
            return None
        qualname = site.qualname or ""
        if qualname.startswith(_FRAMEWORKS):
            found.append(qualname.rsplit(".", 1)[-1])
            pending += _arguments_built(site, index) + _added_to(site, model)
            continue
        info = index.classes.get(site.name or "")
        if info is not None:
            for method in info.methods.values():
                pending += [c for c in index.calls_in(method.node) if _constructs(c)]
            continue
        function = index.functions.get(site.name or "")
        if function is not None:
            pending += [c for c in index.calls_in(function.node) if _constructs(c)]
            continue
        return None  # a library model or a class of another module
    return found


def _constructs(site: CallSite) -> bool:
    """A call that builds a part: a framework class or a class of this module (capitalised)."""
    last = (site.name or "").rsplit(".", 1)[-1]
    if not last[:1].isupper():
        return False
    return (site.qualname or "").startswith(_FRAMEWORKS) or site.qualname is None


def _arguments_built(site: CallSite, index) -> list[CallSite]:
    """Layers passed straight to a container constructor: ``nn.Sequential(nn.Linear(...))``."""
    found = []
    for call in index.calls:
        for kind, node in reversed(call.ancestors):
            if kind == CALL:
                if node is site.node and _constructs(call):
                    found.append(call)
                break
    return found


def _added_to(site: CallSite, model) -> list[CallSite]:
    """Layers added later: ``net.add(nn.Dense(10))`` where ``net`` holds this object."""
    found = []
    for call in model.index.calls:
        if call.method not in ("add", "append", "extend", "add_module") or call.receiver is None:
            continue
        for _, value in model.cases.cases(call.receiver, call.scope, call.order):
            if isinstance(value, Made) and value.site is site:
                for argument in call.node.args:
                    inner = model.index.site(argument.value)
                    if inner is not None and _constructs(inner):
                        found.append(inner)
    return found


def fed_models(loader: CallSite, model) -> list[tuple[CallSite, CallSite]]:
    """(model call, loop) pairs: models called inside a ``for`` loop over the loader built by
    ``loader`` (through ``enumerate``, ``tqdm``, ``zip`` and function parameters)."""
    index = model.index
    found = []
    for call in index.calls:
        if call.qualname is not None or call.name is None:
            continue
        for kind, node in call.ancestors:
            if kind != "loop":
                continue
            assert isinstance(node, cst.For)
            if _iterates(node.iter, loader, call, model, 0):
                found.append((call, call))
                break
    return found


def _iterates(expr, loader: CallSite, at: CallSite, model, depth: int) -> bool:
    if depth > 3 or expr is None:
        return False
    if isinstance(expr, cst.Call) and dotted(expr.func) in (
        "enumerate",
        "tqdm",
        "tqdm.tqdm",
        "zip",
        "iter",
    ):
        return any(_iterates(a.value, loader, at, model, depth + 1) for a in expr.args)
    for _, value in model.cases.cases(expr, at.scope, None):
        if isinstance(value, Made) and value.site is loader:
            return True
    return False
