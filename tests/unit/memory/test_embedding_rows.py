"""`unit_rows`: the numpy normalisation the local embedder returns its vectors with."""

from __future__ import annotations

import numpy as np

from tzurot.memory.embedding import unit, unit_rows


def test_unit_rows_equals_unit_of_each_row() -> None:
    rows = np.random.default_rng(7).normal(size=(5, 384))
    rows[2] *= 1e-3  # far from unit length
    got = unit_rows(rows.copy())
    assert all(type(x) is float for x in got[0])
    assert np.allclose(got, [unit(list(row)) for row in rows], rtol=0, atol=1e-12)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-12)


def test_a_zero_row_stays_zero_and_the_input_is_not_changed() -> None:
    rows = np.zeros((2, 4))
    rows[1] = [3.0, 4.0, 0.0, 0.0]
    before = rows.copy()
    assert unit_rows(rows) == [[0.0] * 4, [0.6, 0.8, 0.0, 0.0]]
    assert (rows == before).all()
