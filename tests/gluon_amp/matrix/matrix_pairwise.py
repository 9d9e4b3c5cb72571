"""A seeded greedy pairwise (all-pairs) generator with constraints, in the manner of AETG.

Every pair of levels of two different factors that some allowed cell can hold is covered by at
least one cell. Each new cell starts from an uncovered pair and fills the other factors, in a
seeded random order, with the level covering most uncovered pairs; the best of a few such
candidates is kept. The same factors and seed always give the same cells.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Cell = dict[str, Any]
Pair = tuple[tuple[str, Any], tuple[str, Any]]


def pairs_of(cell: Mapping[str, Any], names: Sequence[str]) -> set[Pair]:
    """The pairs of (factor, level) a cell covers, factors in ``names`` order."""
    return {((a, cell[a]), (b, cell[b])) for a, b in itertools.combinations(names, 2)}


def _complete(
    partial: Cell, factors: Mapping[str, Sequence[Any]], allowed: Callable[[Cell], bool]
) -> bool:
    """Whether ``partial`` (a cell with some factors set) extends to an allowed cell."""
    free = [name for name in factors if name not in partial]
    for levels in itertools.product(*(factors[name] for name in free)):
        if allowed({**partial, **dict(zip(free, levels))}):
            return True
    return False


def required_pairs(
    factors: Mapping[str, Sequence[Any]], allowed: Callable[[Cell], bool]
) -> set[Pair]:
    """Every pair of levels that at least one allowed cell holds."""
    names = list(factors)
    required = set()
    for a, b in itertools.combinations(names, 2):
        for x, y in itertools.product(factors[a], factors[b]):
            if _complete({a: x, b: y}, factors, allowed):
                required.add(((a, x), (b, y)))
    return required


def pairwise(
    factors: Mapping[str, Sequence[Any]],
    allowed: Callable[[Cell], bool] = lambda cell: True,
    seed: int = 0,
    candidates: int = 20,
) -> list[Cell]:
    """Allowed cells (dicts factor -> level) covering every pair of :func:`required_pairs`.

    ``allowed`` is asked about complete cells and, while one is being filled, about partial
    ones through :func:`_complete`, so any constraint expressible on a whole cell works.
    """
    names = list(factors)
    rng = random.Random(seed)
    uncovered = required_pairs(factors, allowed)
    order = sorted(uncovered, key=repr)  # a set's order changes between runs: fix it
    cells: list[Cell] = []
    while uncovered:
        best, best_gain = None, -1
        for _ in range(candidates):
            (a, x), (b, y) = rng.choice([p for p in order if p in uncovered])
            cell = {a: x, b: y}
            rest = [name for name in names if name not in cell]
            rng.shuffle(rest)
            for name in rest:
                scored = []
                for level in factors[name]:
                    trial = {**cell, name: level}
                    if not _complete(trial, factors, allowed):
                        continue
                    gain = sum(
                        ((n, trial[n]), (m, trial[m])) in uncovered
                        for n, m in itertools.combinations(names, 2)
                        if n in trial and m in trial and name in (n, m)
                    )
                    scored.append((gain, rng.random(), level))
                cell[name] = max(scored)[2]
            cell = {name: cell[name] for name in names}
            gain = len(pairs_of(cell, names) & uncovered)
            if gain > best_gain:
                best, best_gain = cell, gain
        cells.append(best)
        uncovered -= pairs_of(best, names)
    return cells
