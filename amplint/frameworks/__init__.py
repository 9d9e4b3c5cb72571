"""What each framework's API means to the rules: layer dimensions, losses, loss scaling."""

from __future__ import annotations

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


def find_layer(qualname: str | None) -> Layer | None:
    """The layer (or whole model, for its class count) a resolved constructor name denotes."""
    if qualname is None:
        return None
    from amplint.frameworks import keras, mxnet, torch

    for module in (mxnet, keras, torch):
        layer = module.LAYERS.get(qualname)
        if layer is not None:
            return layer
    for module in (mxnet, keras, torch):
        for prefix, keyword in module.MODEL_FACTORIES:
            if qualname.startswith(prefix):
                name = qualname.rsplit(".", 1)[1]
                return Layer(module.__name__.rsplit(".", 1)[1], name, (Dim(None, keyword),))
    return None
