"""Nested selection: the choice is made on inner folds only; shuffled labels give chance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leukoscope.classifiers.choices import ClassifierName
from leukoscope.classifiers.errors import EvaluationError
from leukoscope.classifiers.intervals import guarded_bootstrap_ci
from leukoscope.classifiers.selection import Candidate, candidates_for, nested_select
from leukoscope.classifiers.splits import iter_splits


def subjects_data(n_per_class=8, cells=6, seed=0):
    """Two feature sets on the same cells: 'signal' separates the classes, 'noise' does not."""
    rng = np.random.default_rng(seed)
    subjects = np.array([f"{'a' if s < n_per_class else 'h'}{s}" for s in range(2 * n_per_class) for _ in range(cells)],
                        dtype=object)
    y = np.array([int(s < n_per_class) for s in range(2 * n_per_class) for _ in range(cells)])
    signal = rng.normal(size=(len(y), 3))
    signal[:, 0] += 4.0 * y
    noise = rng.normal(size=(len(y), 3))
    table = pd.DataFrame({"sample_id": [f"c{k}" for k in range(len(y))], "subject": subjects,
                          "label": np.where(y == 1, "ALL", "HEM")})
    return table, y, {"signal": signal, "noise": noise}


def test_candidates_are_every_model_on_every_set_set_first():
    assert candidates_for(["logreg", "knn"], ["a", "b"]) == [
        Candidate(ClassifierName.LOGREG, "a"), Candidate(ClassifierName.KNN, "a"),
        Candidate(ClassifierName.LOGREG, "b"), Candidate(ClassifierName.KNN, "b")]


@pytest.mark.slow
def test_nested_selection_chooses_on_inner_folds_and_tests_each_cell_once():
    table, y, sets = subjects_data()
    splits = list(iter_splits(table, protocol="group-cv", folds=3, seed=0))
    calls = []

    def recording_map(function, tasks):
        tasks = list(tasks)
        calls.append(tasks)
        return map(function, tasks)

    result = nested_select(candidates_for(["logreg"], ["noise", "signal"]), sets, y, table["subject"], splits,
                           inner_folds=2, tuning_folds=2, sample_ids=table["sample_id"], mapper=recording_map)
    # phase 1: 3 outer folds x 2 candidates x 2 inner folds; phase 2: one refit per outer fold
    assert [len(c) for c in calls] == [12, 3]
    for task in calls[0]:  # inner fits never see the outer test part of their fold
        outer = next(s for s in splits if s.fold == task.fold)
        assert not set(task.test) & set(outer.test)
        assert not set(task.groups) & set(table["subject"].to_numpy()[outer.test])
    assert sorted(result.predictions["row"]) == list(range(len(y)))
    assert (result.predictions["sample_id"] == table["sample_id"].to_numpy()[result.predictions["row"]]).all()
    assert set(result.predictions["model"]) == {"nested"} and set(result.predictions["feature_set"]) == {"selected"}
    assert result.chosen["feature_set"].tolist() == ["signal"] * 3
    assert len(result.inner_scores) == 6
    chosen = result.inner_scores.loc[result.inner_scores.groupby("fold")["inner_score"].idxmax()]
    assert chosen["feature_set"].tolist() == result.chosen["feature_set"].tolist()
    assert (result.predictions["y_pred"] == result.predictions["y_true"]).mean() >= 0.9


@pytest.mark.slow
def test_ties_go_to_the_first_candidate():
    table, y, sets = subjects_data()
    splits = list(iter_splits(table, protocol="group-cv", folds=3, seed=0))
    twins = {"first": sets["signal"], "second": sets["signal"].copy()}
    result = nested_select(candidates_for(["logreg"], ["first", "second"]), twins, y, table["subject"], splits,
                           inner_folds=2, tuning_folds=2)
    assert result.chosen["feature_set"].tolist() == ["first"] * 3


def test_nested_selection_errors_name_the_fix():
    table, y, sets = subjects_data()
    splits = list(iter_splits(table, protocol="group-cv", folds=3, seed=0))
    with pytest.raises(EvaluationError, match="at least one candidate"):
        nested_select([], sets, y, None, splits)
    with pytest.raises(EvaluationError, match="'cnn' .*x_by_set"):
        nested_select(candidates_for(["logreg"], ["cnn"]), sets, y, None, splits)
    with pytest.raises(EvaluationError, match="has 5 rows but y has 96"):
        nested_select(candidates_for(["logreg"], ["signal"]), {"signal": sets["signal"][:5]}, y, None, splits)
    with pytest.raises(EvaluationError, match="scoring 'auc' is not one of"):
        nested_select(candidates_for(["logreg"], ["signal"]), sets, y, None, splits, scoring="auc")


@pytest.mark.slow
def test_shuffled_labels_give_a_headline_interval_covering_one_half():
    table, y, sets = subjects_data(n_per_class=10, cells=6, seed=3)
    rng = np.random.default_rng(7)
    # shuffle the subjects' labels (a subject keeps one label), so nothing but chance links x and y
    labels = dict(zip(table["subject"].unique(), rng.permutation([1] * 10 + [0] * 10)))
    y = table["subject"].map(labels).to_numpy()
    table = table.assign(label=np.where(y == 1, "ALL", "HEM"))
    splits = list(iter_splits(table, protocol="group-cv", folds=3, seed=0))
    result = nested_select(candidates_for(["logreg", "knn"], ["noise", "signal"]), sets, y, table["subject"], splits,
                           inner_folds=2, tuning_folds=2)
    pred = result.predictions
    ci = guarded_bootstrap_ci(pred["y_true"], pred["y_score"], pred["y_pred"],
                              groups=table["subject"].to_numpy()[pred["row"]], n_boot=1000, seed=0)
    low, high, reason = ci["balanced_accuracy"]
    assert reason == "" and low <= 0.5 <= high
