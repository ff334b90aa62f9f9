"""Metrics against hand-computed confusion matrices, scikit-learn, and bootstrap known cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from leukoscope.classifiers.metrics import (
    METRICS,
    THRESHOLD,
    binary_metrics,
    bootstrap_ci,
    confusion_matrix,
    predict_labels,
    replicate_weights,
    subject_vote_accuracy,
)

# 4 ALL, 6 HEM; TP=3, FN=1, FP=1, TN=5
Y_TRUE = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
Y_PRED = [1, 1, 1, 0, 1, 0, 0, 0, 0, 0]
Y_SCORE = [0.9, 0.8, 0.7, 0.3, 0.6, 0.4, 0.2, 0.1, 0.05, 0.0]


def test_confusion_matrix_layout():
    assert confusion_matrix(Y_TRUE, Y_PRED).tolist() == [[5, 1], [1, 3]]


def test_metrics_match_the_hand_computed_confusion_matrix():
    m = binary_metrics(Y_TRUE, Y_SCORE, Y_PRED)
    assert m["accuracy"] == pytest.approx(8 / 10)
    assert m["precision"] == pytest.approx(3 / 4)
    assert m["recall"] == pytest.approx(3 / 4)
    assert m["specificity"] == pytest.approx(5 / 6)
    assert m["f1"] == pytest.approx(6 / 8)
    # F1(HEM) = 10/12; weighted by support 4 and 6
    assert m["weighted_f1"] == pytest.approx((4 * 6 / 8 + 6 * 10 / 12) / 10)
    assert m["balanced_accuracy"] == pytest.approx((3 / 4 + 5 / 6) / 2)
    # 22 of the 24 (ALL, HEM) pairs are ordered right
    assert m["roc_auc"] == pytest.approx(22 / 24)
    assert list(m) == list(METRICS)


def test_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 2, 300)
    y_score = np.round(rng.random(300) * 0.7 + 0.3 * y_true, 2)  # rounded: many ties
    y_pred = (y_score >= 0.5).astype(int)
    m = binary_metrics(y_true, y_score, y_pred)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y_true, y_pred))
    assert m["recall"] == pytest.approx(skm.recall_score(y_true, y_pred))
    assert m["specificity"] == pytest.approx(skm.recall_score(y_true, y_pred, pos_label=0))
    assert m["f1"] == pytest.approx(skm.f1_score(y_true, y_pred))
    assert m["weighted_f1"] == pytest.approx(skm.f1_score(y_true, y_pred, average="weighted"))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y_true, y_score))


def test_undefined_metrics_are_nan_not_zero():
    m = binary_metrics([1, 1, 0], [0.1, 0.2, 0.3], [0, 0, 0])  # nothing predicted ALL
    assert np.isnan(m["precision"])
    assert m["recall"] == 0.0
    m = binary_metrics([1, 1], [0.6, 0.7], [1, 1])  # one class: no specificity, no AUC
    assert np.isnan(m["specificity"]) and np.isnan(m["roc_auc"])


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="lengths 2, 3 and 2"):
        binary_metrics([1, 0], [0.1, 0.2, 0.3], [1, 0])
    with pytest.raises(ValueError, match="y_true must hold 1 \\(ALL\\) and 0 \\(HEM\\)"):
        binary_metrics([2, 0], [0.1, 0.2], [1, 0])


def test_bootstrap_matches_the_binomial_interval_on_independent_samples():
    # 2000 samples, 80 % right in both classes: the 95 % interval of the accuracy is
    # 0.8 +- 1.96 sqrt(0.8 * 0.2 / 2000) = 0.8 +- 0.0175
    n = 2000
    y_true = np.repeat([1, 0], n // 2)
    right = np.tile(np.arange(10) < 8, n // 10)
    y_pred = np.where(right, y_true, 1 - y_true)
    ci = bootstrap_ci(y_true, y_pred.astype(float), y_pred, n_boot=2000, seed=0)
    half = 1.96 * np.sqrt(0.8 * 0.2 / n)
    assert ci["accuracy"][0] == pytest.approx(0.8 - half, abs=0.004)
    assert ci["accuracy"][1] == pytest.approx(0.8 + half, abs=0.004)


def test_bootstrap_by_subject_is_wider_when_errors_cluster_in_subjects():
    # 20 subjects of 50 cells; 4 subjects (2 per class) entirely wrong. Cells are not
    # independent: the subject-level interval is 0.8 +- 1.96 sqrt(0.16 / 20) ~ 0.8 +- 0.175
    subjects = np.repeat([f"s{i}" for i in range(20)], 50)
    y_true = np.repeat(np.arange(20) % 2, 50)
    wrong = np.repeat(np.isin(np.arange(20), [0, 1, 2, 3]), 50)
    y_pred = np.where(wrong, 1 - y_true, y_true)
    by_cell = bootstrap_ci(y_true, y_pred.astype(float), y_pred, n_boot=1000, seed=1)
    by_subject = bootstrap_ci(y_true, y_pred.astype(float), y_pred, groups=subjects, n_boot=1000, seed=1)
    width_cell = np.diff(by_cell["accuracy"])[0]
    width_subject = np.diff(by_subject["accuracy"])[0]
    assert 0.25 <= width_subject <= 0.45
    assert width_subject > 5 * width_cell


def test_bootstrap_is_seeded_and_perfect_predictions_give_a_point():
    y = np.array([1, 0] * 20)
    ci = bootstrap_ci(y, y.astype(float), y, n_boot=200, seed=5)
    assert all(ci[name] == (1.0, 1.0) for name in METRICS)
    rng = np.random.default_rng(0)
    y_score = rng.random(40)
    y_pred = predict_labels(y_score)
    assert bootstrap_ci(y, y_score, y_pred, seed=7) == bootstrap_ci(y, y_score, y_pred, seed=7)
    assert bootstrap_ci(y, y_score, y_pred, seed=7) != bootstrap_ci(y, y_score, y_pred, seed=8)


def test_subject_vote_accuracy():
    subjects = ["a", "a", "a", "b", "b", "c", "c", ""]
    y_true = [1, 1, 1, 0, 0, 0, 0, 1]
    y_pred = [1, 1, 0, 1, 1, 1, 0, 0]  # a: ALL (right), b: ALL (wrong), c: tie
    y_score = [0.9, 0.8, 0.2, 0.7, 0.6, 0.55, 0.1, 0.0]  # c: mean score 0.325 -> HEM (right)
    accuracy, n = subject_vote_accuracy(y_true, y_score, y_pred, subjects)
    assert (accuracy, n) == (pytest.approx(2 / 3), 3)
    accuracy, n = subject_vote_accuracy(y_true, y_score, y_pred, [""] * 8)
    assert np.isnan(accuracy) and n == 0


def test_one_threshold_rule_calls_one_half_all():
    assert predict_labels([0.0, 0.4999, 0.5, 0.51, 1.0]).tolist() == [0, 0, 1, 1, 1]
    assert THRESHOLD == 0.5


def test_replicates_keep_every_class_and_repeat_with_the_seed():
    y = np.array([1] * 6 + [0] * 4)
    groups = np.array(["a", "a", "b", "b", "c", "c", "h", "h", "i", "j"], dtype=object)
    weights = np.concatenate(list(replicate_weights(y, groups, n_boot=50, seed=3)))
    assert weights.shape == (50, 10)
    # a subject's cells share their weight; each class keeps its number of units (3 and 3)
    np.testing.assert_array_equal(weights[:, 0], weights[:, 1])
    np.testing.assert_array_equal(weights[:, 6], weights[:, 7])
    np.testing.assert_array_equal(weights[:, [0, 2, 4]].sum(axis=1), 3)
    np.testing.assert_array_equal(weights[:, [6, 8, 9]].sum(axis=1), 3)
    again = np.concatenate(list(replicate_weights(y, groups, n_boot=50, seed=3)))
    np.testing.assert_array_equal(weights, again)
