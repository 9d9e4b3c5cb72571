"""What each framework's API means to the rules: layer dimensions, losses, loss scaling."""

from __future__ import annotations

import functools
from dataclasses import dataclass


@dataclass(frozen=True)
class Dim:
    """One dimension argument of a layer constructor: position (None: keyword-only) and keyword."""

    position: int | None
    keyword: str
    # Input channels of an image (1 grey, 3 RGB, 4 RGBA) are what the data has, not a choice.
    image_input: bool = False


@dataclass(frozen=True)
class Layer:
    """A layer constructor (or model factory): its framework, class name and dimensions."""

    framework: str
    name: str
    dims: tuple[Dim, ...]


def layer_table(
    framework: str, prefixes: tuple[str, ...], specs: dict[str, tuple[Dim, ...]]
) -> dict[str, Layer]:
    """Qualified name -> Layer for every prefix/name combination."""
    return {
        f"{prefix}.{name}": Layer(framework, name, dims)
        for prefix in prefixes
        for name, dims in specs.items()
    }


@functools.lru_cache(maxsize=1)
def _tables() -> tuple[dict[str, Layer], tuple[tuple[str, str, str], ...]]:
    """Every framework's layers by qualified name, and its model factories as (prefix, keyword,
    framework); built once per process (the framework modules import this one)."""
    from amplint.frameworks import keras, mxnet, torch

    layers: dict[str, Layer] = {}
    factories: list[tuple[str, str, str]] = []
    for module in (mxnet, keras, torch):
        for qualname, layer in module.LAYERS.items():
            layers.setdefault(qualname, layer)
        framework = module.__name__.rsplit(".", 1)[1]
        factories += [(prefix, keyword, framework) for prefix, keyword in module.MODEL_FACTORIES]
    return layers, tuple(factories)


def find_layer(qualname: str | None) -> Layer | None:
    """The layer (or whole model, for its class count) a resolved constructor name denotes."""
    if qualname is None:
        return None
    layers, factories = _tables()
    layer = layers.get(qualname)
    if layer is not None:
        return layer
    for prefix, keyword, framework in factories:
        if qualname.startswith(prefix):
            return Layer(framework, qualname.rsplit(".", 1)[1], (Dim(None, keyword),))
    return None


def pretrained_arguments(qualname: str | None) -> list[tuple[str, object]]:
    """(keyword, default) of the arguments that load pretrained weights into the model the
    factory ``qualname`` builds, fixing its class count."""
    if qualname is None:
        return []
    from amplint.frameworks import keras, mxnet, torch

    return [
        (keyword, default)
        for module in (mxnet, keras, torch)
        for prefix, keyword, default in module.PRETRAINED
        if qualname.startswith(prefix)
    ]
