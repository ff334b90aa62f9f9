"""Repeated cross-validation: other fold seeds, mean and spread across repeats."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leukoscope.classifiers.errors import EvaluationError
from leukoscope.classifiers.repeats import iter_repeats, summarise_repeats


def table(n_subjects=10, cells=3, splits=None) -> pd.DataFrame:
    rows = [{"sample_id": f"s{s}_{c}", "label": "ALL" if s % 2 else "HEM", "subject": f"p{s}",
             "split": splits[s] if splits else ""} for s in range(n_subjects) for c in range(cells)]
    return pd.DataFrame(rows)


def test_repeats_use_consecutive_seeds_and_other_folds():
    repeats = list(iter_repeats(table(), protocol="group-cv", folds=2, seed=4, repeats=3))
    assert [seed for seed, _ in repeats] == [4, 5, 6]
    folds = [tuple(tuple(s.test) for s in splits) for _, splits in repeats]
    assert len(set(folds)) > 1


def test_repeats_refuse_the_fixed_official_split_and_zero_repeats():
    official = table(splits=["fold_0"] * 6 + ["prelim_test"] * 4)
    with pytest.raises(EvaluationError, match="official protocol is one fixed split"):
        list(iter_repeats(official, protocol="official"))
    with pytest.raises(EvaluationError, match="repeats must be at least 1"):
        list(iter_repeats(table(), protocol="group-cv", repeats=0))


def test_summary_is_mean_std_min_max_of_per_repeat_metrics():
    y = np.array([1, 1, 0, 0])
    frames = []
    # balanced accuracy per repeat: 1.0, 0.75, 0.5
    for repeat, pred in enumerate(([1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1])):
        frames.append(pd.DataFrame({"repeat": repeat, "model": "knn", "feature_set": "handcrafted", "y_true": y,
                                    "y_score": np.array(pred, float), "y_pred": pred}))
    frames.append(frames[0].assign(model="svm"))
    summary = summarise_repeats(pd.concat(frames), metrics=("balanced_accuracy",))
    assert summary.columns.tolist() == ["model", "feature_set", "repeats", "balanced_accuracy_mean",
                                        "balanced_accuracy_std", "balanced_accuracy_min", "balanced_accuracy_max"]
    knn, svm = summary.iloc[0], summary.iloc[1]
    assert knn["repeats"] == 3 and knn["balanced_accuracy_mean"] == pytest.approx(0.75)
    assert knn["balanced_accuracy_std"] == pytest.approx(0.25)  # sample std of 1, 0.75, 0.5
    assert (knn["balanced_accuracy_min"], knn["balanced_accuracy_max"]) == (0.5, 1.0)
    assert svm["repeats"] == 1 and np.isnan(svm["balanced_accuracy_std"])
