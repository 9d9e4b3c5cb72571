"""The pairwise generator and the matrix it samples: every pair covered, nothing MXNet rejects."""

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st
from matrix_cells import CELLS, DEFECTS, FACTORS, PRECISIONS, SAMPLED, SEED, allowed
from matrix_pairwise import pairs_of, pairwise, required_pairs


def covered(cells, names):
    return set().union(*(pairs_of(cell, names) for cell in cells))


def test_the_matrix_covers_every_pair_of_levels_mxnet_accepts():
    names = list(FACTORS)
    required = required_pairs(FACTORS, allowed)
    assert covered(SAMPLED, names) >= required
    everything = {
        ((a, x), (b, y))
        for a, b in itertools.combinations(names, 2)
        for x, y in itertools.product(FACTORS[a], FACTORS[b])
    }
    left_out = {(a, b) for (a, b) in everything - required}
    assert left_out == {
        (("build", build), ("output", "dict"))
        for build in ("hybridized", "static_alloc", "imports")
    }
    assert all(allowed(cell) for cell in SAMPLED)
    # near the lower bound: 4 builds x 5 outputs, less the 3 rejected pairs
    assert 17 <= len(SAMPLED) <= 24


def test_each_bfloat16_cell_is_its_float16_twin():
    """Both precisions run the same sampled cells, so each pair is covered in each precision."""
    assert len(CELLS) == len(PRECISIONS) * len(SAMPLED)
    by_precision = {p: [c for c in CELLS if c.precision == p] for p in PRECISIONS}
    for f16, bf16 in zip(by_precision["float16"], by_precision["bfloat16"]):
        assert {**vars(f16), "precision": None} == {**vars(bf16), "precision": None}


def test_the_sampling_is_seeded():
    assert pairwise(FACTORS, allowed, seed=SEED) == SAMPLED
    assert pairwise(FACTORS, allowed, seed=SEED + 1) != SAMPLED


def test_each_known_defect_names_some_cells_not_the_matrix():
    for defect in DEFECTS:
        hit = [c for c in CELLS if defect.hits(c)]
        assert 0 < len(hit) < len(CELLS) // 4, defect.name


factor_sets = st.dictionaries(
    st.sampled_from("abcdef"), st.integers(1, 4), min_size=2, max_size=6
).map(lambda sizes: {name: list(range(n)) for name, n in sizes.items()})


@settings(max_examples=40, deadline=None)
@given(factor_sets, st.integers(0, 2**16), st.booleans())
def test_any_factors_get_every_pair_covered(factors, seed, constrained):
    names = list(factors)
    first, second = names[0], names[1]

    def rule(cell):  # a constraint like the matrix's: one pair of levels excluded
        return not (constrained and cell[first] == 0 and cell[second] == 0)

    cells = pairwise(factors, rule, seed=seed)
    assert covered(cells, names) >= required_pairs(factors, rule)
    assert all(rule(cell) and set(cell) == set(names) for cell in cells)
    assert all(cell[n] in factors[n] for cell in cells for n in names)
    largest = max(len(factors[a]) * len(factors[b]) for a, b in itertools.combinations(names, 2))
    assert len(cells) <= 2 * largest  # greedy: never far above the lower bound
