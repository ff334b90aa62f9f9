"""Calibration: Brier score and reliability bins against scikit-learn, subject-level AUC."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, roc_auc_score

from leukoscope.classifiers.calibration import (
    brier_score,
    calibration_table,
    reliability_bins,
    subject_auc,
    subject_scores,
)


def test_brier_hand_values_and_scikit_learn():
    assert brier_score([1, 0], [1.0, 0.0]) == 0.0
    assert brier_score([1, 0, 1, 0], [0.5] * 4) == 0.25
    # always the prevalence p = 0.25 scores p (1 - p)
    assert brier_score([1, 0, 0, 0], [0.25] * 4) == pytest.approx(0.25 * 0.75)
    rng = np.random.default_rng(0)
    y, s = rng.integers(0, 2, 200), rng.random(200)
    assert brier_score(y, s) == pytest.approx(brier_score_loss(y, s))


def test_reliability_bins_hand_values_and_scikit_learn():
    bins = reliability_bins([0, 1, 1, 1], [0.1, 0.3, 0.7, 1.0], n_bins=2)
    assert bins["cells"].tolist() == [2, 2]
    np.testing.assert_allclose(bins["mean_score"], [0.2, 0.85])
    np.testing.assert_allclose(bins["fraction_all"], [0.5, 1.0])
    rng = np.random.default_rng(1)
    s = rng.random(500)
    y = (rng.random(500) < s**2).astype(int)
    bins = reliability_bins(y, s, n_bins=10)
    full = bins[bins["cells"] > 0]
    prob_true, prob_pred = calibration_curve(y, s, n_bins=10, strategy="uniform")
    np.testing.assert_allclose(full["fraction_all"], prob_true)
    np.testing.assert_allclose(full["mean_score"], prob_pred)
    assert bins["cells"].sum() == 500 and np.isnan(reliability_bins([1], [0.95], n_bins=2)["mean_score"][0])


def subject_cells(n_per_class, seed=0):
    rng = np.random.default_rng(seed)
    subjects = np.repeat([f"a{k}" for k in range(n_per_class)] + [f"h{k}" for k in range(n_per_class)], 4)
    y = np.repeat([1] * n_per_class + [0] * n_per_class, 4)
    score = np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.2, len(y)), 0, 1)
    return y, score, subjects


def test_subject_auc_ranks_subject_means():
    # subjects a (ALL, mean 0.8), b (ALL, 0.3), c (HEM, 0.4), d (HEM, 0.1): 3 of 4 pairs right
    y = [1, 1, 1, 1, 0, 0, 0, 0]
    s = [0.7, 0.9, 0.2, 0.4, 0.5, 0.3, 0.0, 0.2]
    subjects = ["a", "a", "b", "b", "c", "c", "d", "d"]
    table = subject_scores(y, s, subjects)
    assert table.loc["b"].tolist() == pytest.approx([1, 0.3, 2])
    result = subject_auc(y, s, subjects)
    assert result.auc == pytest.approx(0.75)
    assert (result.n_all, result.n_hem) == (2, 2) and np.isnan(result.low)
    assert result.reason == "not estimable (2 ALL subjects); not estimable (2 HEM subjects)"


def test_subject_auc_interval_with_enough_subjects():
    y, s, subjects = subject_cells(8)
    result = subject_auc(y, s, subjects, n_boot=500, seed=0)
    means = pd.DataFrame({"y": y, "s": s, "g": subjects}).groupby("g").mean()
    assert result.auc == pytest.approx(roc_auc_score(means["y"], means["s"]))
    assert result.reason == "" and result.low <= result.auc <= result.high


def test_calibration_table_has_one_row_per_model_and_feature_set():
    y, s, subjects = subject_cells(6)
    frame = pd.DataFrame({"subject": subjects, "y_true": y, "y_score": s, "y_pred": (s >= 0.5).astype(int),
                          "model": "svm", "feature_set": "handcrafted"})
    table = calibration_table(pd.concat([frame, frame.assign(model="knn")]), n_boot=200)
    assert table["model"].tolist() == ["svm", "knn"]
    assert table["brier"].iloc[0] == pytest.approx(brier_score(y, s))
    assert table["subject_auc_ci_note"].tolist() == ["", ""]
    assert table[["n_all_subjects", "n_hem_subjects"]].iloc[0].tolist() == [6, 6]
