"""Paired comparisons: exact McNemar, Holm, paired bootstrap difference, the comparison table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from leukoscope.classifiers.comparison import holm, mcnemar_exact, paired_comparisons, paired_difference


def reference_mcnemar_p(only_a: int, only_b: int) -> float:
    """statsmodels' exact McNemar when installed, else the binomial test it reduces to."""
    try:
        from statsmodels.stats.contingency_tables import mcnemar
    except ImportError:
        return binomtest(only_a, only_a + only_b, 0.5).pvalue
    return mcnemar(np.array([[10, only_a], [only_b, 3]]), exact=True).pvalue


def reference_holm(p: np.ndarray) -> np.ndarray:
    try:
        from statsmodels.stats.multitest import multipletests
    except ImportError:
        pytest.skip("statsmodels not installed; the hand-worked Holm case covers it")
    return multipletests(p, method="holm")[1]


def outcome(only_a: int, only_b: int, both: int = 10, neither: int = 3) -> tuple[np.ndarray, np.ndarray]:
    a = np.array([True] * only_a + [False] * only_b + [True] * both + [False] * neither)
    b = np.array([False] * only_a + [True] * only_b + [True] * both + [False] * neither)
    return a, b


@pytest.mark.parametrize("only_a,only_b", [(1, 0), (7, 1), (0, 9), (5, 5), (12, 3)])
def test_mcnemar_matches_statsmodels_exact(only_a, only_b):
    test = mcnemar_exact(*outcome(only_a, only_b))
    assert (test.only_a, test.only_b) == (only_a, only_b)
    assert test.p_value == pytest.approx(reference_mcnemar_p(only_a, only_b), rel=1e-12)


def test_mcnemar_hand_values():
    # one discordant cell (the kNN-vs-SVM case): p = 1; 0 discordant: 1 as well
    assert mcnemar_exact(*outcome(1, 0)).p_value == 1.0
    assert mcnemar_exact(*outcome(0, 0)).p_value == 1.0
    # 6 against 0: two-sided 2 * 0.5**6
    assert mcnemar_exact(*outcome(6, 0)).p_value == pytest.approx(2 / 64)


def test_holm_hand_worked_and_against_statsmodels():
    p = np.array([0.01, 0.04, 0.03, 0.20])
    # sorted 0.01, 0.03, 0.04, 0.20 -> 4*0.01, 3*0.03, 2*0.04, 1*0.20, running max
    np.testing.assert_allclose(holm(p), [0.04, 0.09, 0.09, 0.20])
    np.testing.assert_allclose(holm([0.5, np.nan, 0.01]), [0.5, np.nan, 0.02])
    rng = np.random.default_rng(1)
    p = rng.random(12) ** 3
    np.testing.assert_allclose(holm(p), reference_holm(p))


def test_paired_difference_of_identical_predictors_is_exactly_zero():
    rng = np.random.default_rng(0)
    y = np.repeat([1, 0], 50)
    pred = np.where(rng.random(100) < 0.8, y, 1 - y)
    assert paired_difference(y, pred, pred, n_boot=300) == (0.0, 0.0, 0.0)


def test_paired_difference_hand_value_and_subject_resampling():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    a = np.array([1, 1, 1, 1, 0, 0, 0, 0])  # balanced accuracy 1
    b = np.array([1, 1, 0, 0, 0, 0, 0, 1])  # (1/2 + 3/4) / 2 = 0.625
    diff, low, high = paired_difference(y, a, b, n_boot=500, seed=0)
    assert diff == pytest.approx(0.375)
    assert 0 <= low <= diff <= high <= 1
    # clustered errors: resampling 20 subjects is wider than resampling 1000 cells
    subjects = np.repeat([f"s{k}" for k in range(20)], 50)
    y = np.repeat(np.arange(20) % 2, 50)
    wrong = np.repeat(np.isin(np.arange(20), [0, 1, 2, 3]), 50)
    b = np.where(wrong, 1 - y, y)
    by_cell = paired_difference(y, y, b, n_boot=500, seed=1)
    by_subject = paired_difference(y, y, b, groups=subjects, n_boot=500, seed=1)
    assert by_subject[2] - by_subject[1] > 4 * (by_cell[2] - by_cell[1])
    with pytest.raises(ValueError, match="roc_auc difference needs score_a and score_b"):
        paired_difference(y, y, b, metric="roc_auc")


def predictions_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n_subjects, per = 24, 20
    subjects = np.repeat([f"s{k}" for k in range(n_subjects)], per)
    y = np.repeat(np.arange(n_subjects) % 2, per)
    rows = []
    for model, accuracy in (("best", 0.95), ("close", 0.94), ("poor", 0.6)):
        pred = np.where(rng.random(len(y)) < accuracy, y, 1 - y)
        rows.append(pd.DataFrame({"sample_id": [f"c{k}" for k in range(len(y))], "subject": subjects,
                                  "protocol": "group-cv", "model": model, "feature_set": "handcrafted",
                                  "y_true": y, "y_score": pred.astype(float), "y_pred": pred}))
    return pd.concat(rows, ignore_index=True)


def test_comparison_table_flags_rows_indistinguishable_from_the_reference():
    table = paired_comparisons(predictions_frame(), ("best", "handcrafted"), n_boot=300, seed=0)
    assert table["model"].tolist() == ["close", "poor"]
    assert table.columns.tolist() == [
        "model", "feature_set", "n_paired", "balanced_accuracy", "reference_balanced_accuracy", "difference",
        "difference_ci_low", "difference_ci_high", "difference_ci_note", "only_row_right", "only_reference_right",
        "mcnemar_p", "holm_p", "indistinguishable"]
    close, poor = table.iloc[0], table.iloc[1]
    assert close["n_paired"] == 480 and close["indistinguishable"]
    assert not poor["indistinguishable"] and poor["difference_ci_high"] < 0
    assert poor["holm_p"] == pytest.approx(min(1.0, 2 * min(table["mcnemar_p"])))
    assert close["difference"] == pytest.approx(close["balanced_accuracy"] - close["reference_balanced_accuracy"])


def test_comparison_with_few_subjects_is_not_estimable_and_indistinguishable():
    frame = predictions_frame()
    frame = frame[frame["subject"].isin(["s0", "s1", "s2", "s3", "s4", "s5"])]  # 3 subjects per class
    table = paired_comparisons(frame, ("best", "handcrafted"), n_boot=100)
    assert (table["difference_ci_note"] == "not estimable (3 ALL subjects); not estimable (3 HEM subjects)").all()
    assert table["indistinguishable"].all() and table["difference_ci_low"].isna().all()


def test_comparison_errors_name_the_fix():
    frame = predictions_frame()
    with pytest.raises(ValueError, match=r"reference \('svm', 'handcrafted'\) has no predictions"):
        paired_comparisons(frame, ("svm", "handcrafted"))
    mixed = frame.assign(protocol=np.where(frame.index % 2, "group-cv", "official"))
    with pytest.raises(ValueError, match="mix protocols"):
        paired_comparisons(mixed, ("best", "handcrafted"))
