"""Classifier pipelines: fitted on training data only, tuned in the grid, no label leakage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leukoscope.classifiers.choices import ClassifierName
from leukoscope.classifiers.errors import EvaluationError
from leukoscope.classifiers.featuresets import hybrid_set, single_set
from leukoscope.classifiers.metrics import binary_metrics
from leukoscope.classifiers.models import PARAM_GRIDS, PlattSVC, build_pipeline, fit_predict, predict_labels


def blobs(n=80, p=6, shift=2.0, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(size=(n, p))
    x[:, 0] += shift * y
    x[:, 1] -= shift * y
    return x, y


@pytest.mark.parametrize("name", list(ClassifierName))
def test_every_model_learns_a_separable_problem_and_picks_from_its_grid(name):
    x, y = blobs(n=100, shift=4.0)
    y_score, best = fit_predict(name, x[:70], y[:70], x[70:], inner_folds=3, seed=0)
    assert y_score.shape == (30,) and ((0 <= y_score) & (y_score <= 1)).all()
    assert binary_metrics(y[70:], y_score, predict_labels(y_score))["accuracy"] >= 0.9
    for key, value in best.items():
        assert value in PARAM_GRIDS[name][key]


def test_preprocessing_is_fitted_on_the_training_part_only():
    x, y = blobs(n=40)
    x[3, 2] = np.nan
    train = x[:30]
    pipe = build_pipeline("logreg").fit(train, y[:30])
    np.testing.assert_allclose(pipe.named_steps["prepare"].statistics_, np.nanmedian(train, axis=0))
    imputed = np.where(np.isnan(train), np.nanmedian(train, axis=0), train)
    np.testing.assert_allclose(pipe.named_steps["scale"].mean_, np.nanmean(imputed, axis=0))


def test_pca_compresses_only_the_embedding_columns():
    x, y = blobs(n=40, p=10)
    pipe = build_pipeline("logreg", pca_columns=np.arange(4, 10), pca_components=2).fit(x[:30], y[:30])
    assert pipe.named_steps["scale"].n_features_in_ == 4 + 2
    pca = pipe.named_steps["prepare"].named_transformers_["pca"].named_steps["pca"]
    assert pca.n_samples_ == 30


def test_inner_cv_needs_enough_subjects_per_class():
    x, y = blobs(n=24)
    groups = np.where(y == 1, "a", np.where(np.arange(24) < 12, "h1", "h2"))
    with pytest.raises(EvaluationError, match="at least 3 subjects per class.*1 ALL and 2 HEM.*compare.inner_folds"):
        fit_predict("logreg", x, y, x, groups=groups, inner_folds=3)


def test_feature_sets_follow_the_missing_value_rule():
    table = pd.DataFrame(
        {
            "sample_id": ["a", "b", "c", "d"],
            "subject": "",
            "label": ["ALL", "HEM", "ALL", "HEM"],
            "split": "",
            "f1": [1.0, np.nan, np.nan, 4.0],
            "f2": [1.0, np.nan, 3.0, np.inf],
            "qc_flag": ["", "empty_nucleus", "", ""],
        }
    )
    fs = single_set("handcrafted", table, source="handcrafted.csv")
    assert fs.columns == ("f1", "f2") and fs.weights == "none"
    assert fs.sample_ids.tolist() == ["a", "c", "d"]
    assert (fs.n_dropped, fs.n_imputed) == (1, 2)
    emb = pd.DataFrame({"sample_id": ["a", "c", "e"], "weights": "random", "cnn_vgg16_0000": [0.5, 0.25, 1.0]})
    hy = hybrid_set("vgg16", table, emb, sources=("handcrafted.csv", "cnn_vgg16.csv"))
    assert hy.name == "hybrid_vgg16" and hy.weights == "random"
    assert hy.sample_ids.tolist() == ["a", "c"] and hy.pca_columns.tolist() == [2]


def test_feature_set_errors_name_the_file():
    bad = pd.DataFrame({"sample_id": ["a"], "label": ["ALL"], "notes": ["x"]})
    with pytest.raises(EvaluationError, match=r"'cnn_vgg16.csv' column\(s\) \['notes'\] are not numeric"):
        single_set("cnn_vgg16", bad, source="cnn_vgg16.csv")
    twice = pd.DataFrame({"sample_id": ["a", "a"], "f": [1.0, 2.0]})
    with pytest.raises(EvaluationError, match="'handcrafted.csv' lists sample_id 'a' more than once"):
        single_set("handcrafted", twice, source="handcrafted.csv")


def test_svm_calibration_folds_are_grouped_by_subject_when_subjects_are_known():
    x, y = blobs(n=60)
    groups = np.array([f"s{k % 12}" for k in range(60)], dtype=object)  # 6 subjects per class
    svm = PlattSVC(random_state=0).fit(x, y, groups=groups)
    assert svm.grouped_ and len(svm.calibrated_.cv) == 3
    for train, test in svm.calibrated_.cv:
        assert not set(groups[train]) & set(groups[test])
    plain = PlattSVC(random_state=0).fit(x, y)
    assert not plain.grouped_ and plain.calibrated_.cv == 3
    proba = svm.predict_proba(x)[:, 1]
    np.testing.assert_array_equal(svm.predict(x), predict_labels(proba))


def test_fit_predict_passes_the_subjects_to_the_svm_calibration():
    x, y = blobs(n=24)
    # 2 subjects per class: the 2-fold inner CV leaves 1 subject per class to calibrate on
    groups = np.where(y == 1, np.where(np.arange(24) < 12, "a1", "a2"), np.where(np.arange(24) < 12, "h1", "h2"))
    with pytest.raises(EvaluationError, match="Platt calibration is grouped by subject.*1 subject"):
        fit_predict("svm", x, y, x, groups=groups, inner_folds=2)
    scores, _ = fit_predict("svm", x, y, x, inner_folds=2)  # without subjects: folds over rows
    assert scores.shape == (24,)
