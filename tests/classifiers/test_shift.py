"""Distance from the training data: univariate AUC, key-feature ranges, shifted datasets, backgrounds."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from leukoscope.classifiers.shift import (
    InputReference,
    ShiftTally,
    background_shares,
    background_shift,
    fit_reference,
    univariate_auc,
)


def training(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(size=(n, 6))
    x[:, 0] += 2.0 * y  # the most separating column
    x[:, 1] -= 1.0 * y  # the second (AUC below 0.5)
    x[:, 5] = 3.0  # constant: never a key feature
    return x, y


def test_univariate_auc_matches_scikit_learn_and_ignores_nan():
    x, y = training()
    x[::7, 2] = np.nan
    auc = univariate_auc(x, y)
    for j in range(5):
        finite = np.isfinite(x[:, j])
        assert auc[j] == pytest.approx(roc_auc_score(y[finite], x[finite, j]))
    assert auc[5] == 0.5  # all ties


def test_univariate_auc_by_hand():
    # ALL scores 3, 4; HEM 1, 3.5: pairs (3>1), (3<3.5), (4>1), (4>3.5) -> 3/4
    assert univariate_auc(np.array([[3.0], [4.0], [1.0], [3.5]]), np.array([1, 1, 0, 0]))[0] == 0.75


def test_key_features_are_the_separating_columns_with_their_quantile_ranges():
    x, y = training()
    ref = fit_reference(x, y, [f"f{j}" for j in range(6)], n_key=2, coverage=0.9)
    assert ref.features == ("f0", "f1") and ref.indices == (0, 1)
    assert ref.low[0] == pytest.approx(np.quantile(x[:, 0], 0.05))
    assert ref.high[1] == pytest.approx(np.quantile(x[:, 1], 0.95))
    assert "f5" not in fit_reference(x, y, [f"f{j}" for j in range(6)]).features


def test_reference_survives_a_json_round_trip():
    x, y = training()
    ref = fit_reference(x, y, [f"f{j}" for j in range(6)])
    assert InputReference.from_dict(ref.to_dict()) == ref


def test_training_like_cells_are_not_far_and_shifted_ones_are():
    x, y = training()
    ref = fit_reference(x, y, [f"f{j}" for j in range(6)], n_key=4)
    same = ShiftTally(ref)
    same.add(training(seed=1)[0])
    assert not same.far() and not same.table()["shifted"].any()
    moved = training(seed=2)[0]
    moved[:, :4] += 10.0
    far = ShiftTally(ref)
    per_row = far.add(moved)
    assert far.far() and far.table()["shifted"].all() and (per_row == 4).all()


def test_counts_do_not_depend_on_the_chunking():
    x, y = training()
    ref = fit_reference(x, y, [f"f{j}" for j in range(6)])
    new = training(seed=3)[0] * 1.5
    whole, parts = ShiftTally(ref), ShiftTally(ref)
    whole.add(new)
    for start in range(0, len(new), 33):
        parts.add(new[start:start + 33])
    assert whole.table().equals(parts.table())


def test_nan_counts_as_inside():
    ref = InputReference(("a",), (0,), (0.0,), (1.0,), (0.9,))
    assert ref.outside(np.array([[np.nan], [2.0], [0.5]]))[:, 0].tolist() == [False, True, False]


def test_wrong_column_names_are_refused():
    x, y = training()
    with pytest.raises(ValueError, match="6 column names"):
        fit_reference(x[:, :3], y, [f"f{j}" for j in range(6)])


def test_background_kinds():
    assert background_shares(["black", "smear", "black", "black"]) == {"black": 0.75, "smear": 0.25}
    assert background_shift({"black": 1.0}, {"black": 0.8, "smear": 0.2}) == ""
    reason = background_shift({"black": 1.0}, {"black": 0.1, "smear": 0.9})
    assert "'smear' background (90%)" in reason and "'black' (100%)" in reason
    assert background_shift({}, {"smear": 1.0}) == ""
