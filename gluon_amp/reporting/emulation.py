"""Emulated float16 in a graph: the casts that stand in for a GPU's float16 kernel.

With ``amp.init('float16', emulate=True)`` an operator without a CPU float16 kernel computes in
float32 between float16 inputs and outputs: ``amp_cast`` to float32 before it, ``amp_cast``
back to float16 after it (``gluon_amp/emulate.py``). The report describes what a GPU would run:
such an operator ran in float16, with the float16 tensors around the emulation, and the
emulation's own casts are not casts per step (a GPU has none of them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .graph import Graph, Node, Tensor

__all__ = ["Emulated", "emulated_in"]


@dataclass
class Emulated:
    """The emulated nodes of a graph as a GPU would see them, and the emulation's casts."""

    casts: set[int] = field(default_factory=set)  # indices of the emulation's cast nodes
    # node index -> (its inputs, its outputs) in float16, outside the emulation's casts
    nodes: dict[int, tuple[list[Tensor], list[Tensor]]] = field(default_factory=dict)

    def inputs(self, graph: Graph, node: Node) -> list[Tensor]:
        """``node``'s inputs, as its GPU kernel would get them."""
        return self.nodes[node.index][0] if node.index in self.nodes else graph.inputs(node)

    def outputs(self, node: Node) -> list[Tensor]:
        """``node``'s outputs, as its GPU kernel would give them."""
        return self.nodes[node.index][1] if node.index in self.nodes else node.outputs


def _cast_to(node: Node, dtype: str) -> bool:
    return node.op == "amp_cast" and node.attrs.get("dtype") == dtype


def emulated_in(graph: Graph, ops: frozenset[str]) -> Emulated:
    """Find the nodes of operators ``ops`` that were emulated: a float16 input cast to float32
    just for them."""
    found = Emulated()
    for node in graph.nodes:
        if node.op not in ops:
            continue
        inputs, widened = [], []
        for slot in range(len(node.inputs)):
            source = graph.producer(node, slot)
            emulation = (
                _cast_to(source, "float32")
                and graph.input(source, 0).dtype == "float16"
                and all(reader.op in ops for reader in graph.consumers(source))
            )
            inputs.append(graph.input(source, 0) if emulation else graph.input(node, slot))
            if emulation:
                widened.append(source.index)
        if not widened:
            continue
        outputs = []
        for index, output in enumerate(node.outputs):
            rounded = [
                reader
                for reader in graph.consumers(node)
                if _cast_to(reader, "float16") and reader.inputs[0] == (node.index, index)
            ]
            found.casts.update(reader.index for reader in rounded)
            outputs.append(rounded[0].outputs[0] if rounded else output)
        found.casts.update(widened)
        found.nodes[node.index] = (inputs, outputs)
    return found
