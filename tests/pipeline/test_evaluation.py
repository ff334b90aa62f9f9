"""The compare stage's evaluation tables: truth and units attached, guarded intervals, the heads like the paper."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leukoscope.classifiers.choices import Protocol
from leukoscope.pipeline.evaluation import (
    COMPARE_PREDICTION_COLUMNS,
    Role,
    confound_table,
    keras_table,
    role_of,
    summarise,
    unit_name,
    with_truth,
)

SAMPLES = pd.DataFrame({"sample_id": ["a", "b", "c", "d"], "label": ["ALL", "HEM", "ALL", "HEM"],
                        "subject": ["1", "H1", "2", "H2"]})


def test_truth_units_and_protocol_come_from_the_samples():
    rows = pd.DataFrame({"sample_id": ["d", "a"], "fold": "cv_0", "model": "knn", "feature_set": "handcrafted",
                         "y_score": [0.2, 0.9], "y_pred": [0, 1]})
    got = with_truth(rows, SAMPLES, np.array(["block_0", "block_0", "block_1", "block_1"], dtype=object),
                     Protocol.BLOCKED_CV)
    assert list(got.columns) == COMPARE_PREDICTION_COLUMNS
    assert got[["subject", "unit", "y_true", "protocol"]].values.tolist() == [
        ["H2", "block_1", 0, "blocked-cv"], ["1", "block_0", 1, "blocked-cv"]]
    assert unit_name(Protocol.BLOCKED_CV) == "blocks" and unit_name(Protocol.OFFICIAL) == "subjects"


def test_roles():
    assert [role_of(*key) for key in [("nested", "selected"), ("majority", "none"), ("svm", "handcrafted"),
                                      ("sigmoid_head", "head_vgg16")]] == list(Role)


def _predictions(units: list[str]) -> pd.DataFrame:
    y = np.repeat([1, 0], len(units) // 2)
    score = np.where(np.arange(len(y)) % 5 == 0, 1 - y, y) * 0.8 + 0.1  # every fifth cell wrong
    return pd.DataFrame({"sample_id": [f"c{i}" for i in range(len(y))], "subject": units, "unit": units,
                         "protocol": "group-cv", "fold": "cv_0", "model": "knn", "feature_set": "handcrafted",
                         "y_true": y, "y_score": score, "y_pred": (score >= 0.5).astype(int)})


def test_intervals_resting_on_two_subjects_are_not_estimable():
    two = summarise(_predictions([f"s{i // 5}" for i in range(20)]), {}, {}, unit_name="subjects", n_boot=50, seed=0)
    assert two["accuracy"].iloc[0] == pytest.approx(0.8)
    assert np.isnan(two["recall_ci_low"].iloc[0]) and two["recall_ci_note"].iloc[0] == "not estimable (2 ALL subjects)"
    assert two["accuracy_ci_note"].iloc[0] == "not estimable (2 ALL subjects); not estimable (2 HEM subjects)"
    cells = summarise(_predictions([""] * 20), {}, {}, unit_name="subjects", n_boot=50, seed=0)  # 10 cells a class
    assert cells["accuracy_ci_note"].iloc[0] == "" and cells["accuracy_ci_low"].iloc[0] < 0.8
    assert (two["role"].iloc[0], two["weights"].iloc[0]) == ("candidate", "unrecorded")


def test_heads_counted_like_the_papers_keras_metrics():
    heads = pd.DataFrame({"feature_set": "head_vgg16", "y_true": [1, 1, 0, 0],
                          "out_hem": [0.9, 0.9, 0.9, 0.9], "out_all": [0.9, 0.9, 0.2, 0.2]})
    row = keras_table(heads).iloc[0]
    # ALL cells: both outputs on (one right, one wrong element); HEM cells: both elements right
    assert (row["cells"], row["keras_accuracy"], row["keras_recall"]) == (4, 0.75, 1.0)
    assert row["keras_precision"] == pytest.approx(4 / 6)
    assert keras_table(heads.drop(columns=["out_hem", "out_all"]))[["keras_accuracy"]].isna().all().all()


def test_confound_verdicts_follow_the_lower_bound():
    results = pd.DataFrame({"model": ["svm", "knn", "rf"], "n_test": 40, "balanced_accuracy": [0.9, 0.62, 0.7],
                            "balanced_accuracy_ci_low": [0.7, 0.55, np.nan],
                            "balanced_accuracy_ci_high": [0.95, 0.7, np.nan],
                            "balanced_accuracy_ci_note": ["", "", "not estimable (2 ALL subjects)"]})
    table = confound_table(results)
    assert table["confound"].tolist() == [True, False, False]
    assert [v.split(":")[0] for v in table["verdict"]] == ["Confound", "No clear confound",
                                                           "Confound check not conclusive"]
