"""The one-to-one assignment: our Hungarian method against scipy's, and the engine's use of it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from snapmap_pipeline.core.mapping.assign import LIST_SLOTS, assign, best_assignment


@pytest.mark.parametrize("seed", range(6))
def test_best_assignment_reaches_scipys_optimum(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(40):
        n = int(rng.integers(1, 35))
        m = n + int(rng.integers(0, 120))
        value = rng.random((n, m))
        if seed % 2:  # coarse values: many exact ties
            value = np.round(value, 1)
        rows, cols = linear_sum_assignment(value, maximize=True)
        chosen = best_assignment(value)
        assert len(chosen) == n and len(set(chosen)) == n  # one column per row, none shared
        assert value[np.arange(n), chosen].sum() == pytest.approx(value[rows, cols].sum(), abs=1e-9)


def test_best_assignment_needs_enough_columns() -> None:
    with pytest.raises(ValueError):
        best_assignment(np.zeros((3, 2)))


def test_contested_field_goes_where_the_total_is_best() -> None:
    # Both columns like field 0 best; column 1 has a good second choice, column 0 has none.
    scores = np.array([[0.9, 0.1], [0.95, 0.8]], dtype=np.float32)
    assert assign(scores, is_list=[False, False]) == [0, 1]


def test_a_list_field_takes_several_columns_but_no_more_than_its_slots() -> None:
    n = LIST_SLOTS + 1
    scores = np.full((n, 1), 0.9, dtype=np.float32)
    scores[-1, 0] = 0.85
    picks = assign(scores, is_list=[True])
    assert picks.count(0) == LIST_SLOTS
    assert picks[-1] is None  # the weakest column is left out, not forced
