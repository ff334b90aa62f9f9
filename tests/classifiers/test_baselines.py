"""Majority-class baseline, class counts per split, and the clear-margin rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leukoscope.classifiers.baselines import (
    beats_baseline,
    class_counts,
    confound_verdict,
    majority_predictions,
)
from leukoscope.classifiers.metrics import binary_metrics
from leukoscope.classifiers.splits import Split, iter_splits


def table() -> pd.DataFrame:
    # 6 ALL cells of subjects a, a, b, c, c, c; 4 HEM cells of h, h, i, j
    return pd.DataFrame({
        "sample_id": [f"s{k}" for k in range(10)],
        "label": ["ALL"] * 6 + ["HEM"] * 4,
        "subject": ["a", "a", "b", "c", "c", "c", "h", "h", "i", "j"],
    })


def test_majority_calls_the_commoner_training_class_with_its_share_as_score():
    splits = [Split("f0", np.array([0, 1, 2, 6, 7]), np.array([3, 4, 5, 8, 9])),  # 3 ALL of 5: ALL
              Split("f1", np.array([3, 6, 7, 8]), np.array([0, 1, 2, 9]))]        # 1 ALL of 4: HEM
    pred = majority_predictions(table(), splits)
    assert pred.columns.tolist() == [
        "sample_id", "subject", "fold", "model", "feature_set", "y_true", "y_score", "y_pred"]
    assert pred["y_pred"].tolist() == [1] * 5 + [0] * 4
    np.testing.assert_allclose(pred["y_score"], [0.6] * 5 + [0.25] * 4)
    assert pred["sample_id"].tolist() == ["s3", "s4", "s5", "s8", "s9", "s0", "s1", "s2", "s9"]
    assert set(pred["model"]) == {"majority"} and set(pred["feature_set"]) == {"none"}


def test_a_tied_training_part_is_called_all_by_the_threshold_rule():
    pred = majority_predictions(table(), [Split("f", np.array([0, 1, 6, 7]), np.array([2, 8]))])
    assert pred["y_pred"].tolist() == [1, 1] and pred["y_score"].tolist() == [0.5, 0.5]


def test_majority_baseline_balanced_accuracy_is_one_half_per_fold_under_every_protocol():
    rng = np.random.default_rng(0)
    labels = np.where(rng.random(90) < 0.7, "ALL", "HEM")
    grouped = [f"p{k % 15}" if label == "ALL" else f"h{k % 9}" for k, label in enumerate(labels)]
    for protocol, subjects in (("group-cv", grouped), ("stratified-cv", [""] * 90), ("blocked-cv", [""] * 90)):
        t = pd.DataFrame({"sample_id": [f"Im{k:03d}" for k in range(90)], "label": labels, "subject": subjects})
        pred = majority_predictions(t, iter_splits(t, protocol=protocol, folds=3, seed=0, block_size=3))
        for _, fold in pred.groupby("fold"):
            assert binary_metrics(fold["y_true"], fold["y_score"], fold["y_pred"])["balanced_accuracy"] == 0.5
        if protocol == "stratified-cv":  # equal class shares in every fold: pooled 0.5 too
            m = binary_metrics(pred["y_true"], pred["y_score"], pred["y_pred"])
            assert m["balanced_accuracy"] == 0.5
            assert m["accuracy"] == pytest.approx((labels == "ALL").mean())


def test_class_counts_per_split_and_part():
    splits = [Split("f0", np.array([0, 1, 2, 6, 7]), np.array([3, 4, 5, 8, 9]))]
    counts = class_counts(table(), splits)
    assert counts.to_dict("records") == [
        {"fold": "f0", "part": "train", "ALL_cells": 3, "HEM_cells": 2, "ALL_subjects": 2, "HEM_subjects": 1},
        {"fold": "f0", "part": "test", "ALL_cells": 3, "HEM_cells": 2, "ALL_subjects": 1, "HEM_subjects": 2},
    ]
    blocks = class_counts(table(), splits, groups=np.array(["x"] * 5 + ["y"] * 5), unit_name="blocks")
    assert blocks.columns.tolist()[-2:] == ["ALL_blocks", "HEM_blocks"]
    assert blocks["ALL_blocks"].tolist() == [1, 2]


def test_clear_margin_rule_and_verdicts():
    assert beats_baseline(0.61) and not beats_baseline(0.6) and not beats_baseline(float("nan"))
    assert confound_verdict(0.8, 0.7, 0.9).startswith("Confound: the pixels outside the cell alone")
    assert confound_verdict(0.62, 0.45, 0.78).startswith("No clear confound")
    assert "not estimable" in confound_verdict(0.9, float("nan"), float("nan"))
