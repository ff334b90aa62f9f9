"""The train stage: one verified model folder per pipeline, fitted on compare's training rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from leukoscope.classifiers.metrics import METRICS
from leukoscope.pipeline import graph
from leukoscope.pipeline.layout import ModelLayout, Stage
from leukoscope.pipeline.model_card import training_digest
from leukoscope.pipeline.model_folder import load_estimator, open_model_folder
from leukoscope.pipeline.stages.train import STAGE, model_names, run_train
from leukoscope.pipeline.tables import read_features

from ..test_model_folder import assert_no_pickle
from .model_run import trained


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    return trained(tmp_path_factory.mktemp("official"))


def test_one_folder_per_model_without_pickle(official):
    run, _samples, cfg = official
    assert model_names(cfg) == ["knn_handcrafted", "logreg_handcrafted"]
    assert STAGE.done(cfg, run)
    for name in model_names(cfg):
        folder = run.model_dir(name)
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            [ModelLayout.CARD, ModelLayout.CARD_TEXT, ModelLayout.ESTIMATOR, ModelLayout.DIGESTS])
        assert_no_pickle(folder)
        open_model_folder(folder)


def test_the_card_records_inputs_training_data_and_evaluation(official):
    run, samples, _cfg = official
    card = json.loads((run.model_dir("logreg_handcrafted") / ModelLayout.CARD).read_text())
    assert card["kind"] == "classifier" and card["threshold"] == 0.5
    assert card["inputs"]["tables"] == [{"table": "handcrafted", "columns": [f"morph_{k}" for k in range(5)]}]
    training = card["training"]
    fold_rows = samples[samples["split"].str.startswith("fold_")]
    assert (training["cells"], training["subjects"]) == (80, 8)
    assert training["cells_per_class"] == {"ALL": 40, "HEM": 40}
    assert training["subjects_per_class"] == {"ALL": 4, "HEM": 4}
    assert training["digest"] == training_digest(fold_rows) and training["protocol"] == "official"
    results = pd.read_csv(run.compare_file("results.csv")).set_index(["model", "feature_set"])
    row = results.loc[("logreg", "handcrafted")]
    evaluation = card["evaluation"]
    assert evaluation["protocol"] == "official" and evaluation["n_test"] == 40
    for metric in METRICS:
        recorded = evaluation["metrics"][metric]
        assert recorded["value"] == pytest.approx(row[metric])
        if pd.isna(row[f"{metric}_ci_low"]):  # not estimable on 4 test subjects: null in JSON, with the reason
            assert recorded["ci_low"] is None and recorded["ci_note"] == row[f"{metric}_ci_note"]
        else:
            assert recorded["ci_low"] == pytest.approx(row[f"{metric}_ci_low"])
    assert card["versions"]["leukoscope"] and card["created"] and card["command"].startswith("leukoscope")
    assert "Research use only" in card["intended_use"]
    text = (run.model_dir("logreg_handcrafted") / ModelLayout.CARD_TEXT).read_text()
    assert "## Intended use" in text and "| balanced_accuracy |" in text and training["digest"] in text
    assert len(card["reference"]["inputs"]["features"]) == 5


def test_a_saved_model_reproduces_compare_on_the_test_set(official):
    run, samples, _cfg = official
    compare = pd.read_csv(run.compare_file("predictions.csv"), dtype={"sample_id": str})
    features = read_features(run.handcrafted_table).set_index("sample_id")
    for model in ("knn", "logreg"):
        rows = compare[(compare["model"] == model) & (compare["feature_set"] == "handcrafted")]
        estimator = load_estimator(open_model_folder(run.model_dir(f"{model}_handcrafted")))
        x = features.loc[rows["sample_id"], [f"morph_{k}" for k in range(5)]].to_numpy()
        np.testing.assert_allclose(estimator.predict_proba(x)[:, 1], rows["y_score"], atol=1e-9)


def test_cross_validation_trains_on_every_labelled_cell(tmp_path):
    run, samples, _cfg = trained(tmp_path, **{"compare.protocol": "group-cv", "compare.models": "logreg"})
    card = json.loads((run.model_dir("logreg_handcrafted") / ModelLayout.CARD).read_text())
    assert card["training"]["cells"] == len(samples) and card["training"]["protocol"] == "group-cv"


def test_train_runs_compare_first_and_warns_without_a_results_row(tmp_path, caplog):
    run, samples, cfg = trained(tmp_path)
    results = pd.read_csv(run.compare_file("results.csv"))
    results[results["model"] != "knn"].to_csv(run.compare_file("results.csv"), index=False)
    run_train(cfg, run, samples)
    card = json.loads((run.model_dir("knn_handcrafted") / ModelLayout.CARD).read_text())
    assert card["evaluation"] is None and "knn_handcrafted have no row" in caplog.text
    assert "Not evaluated" in (run.model_dir("knn_handcrafted") / ModelLayout.CARD_TEXT).read_text()
    assert Stage.COMPARE in STAGE.needs(cfg)
    planned = [s.name for s in graph.plan((Stage.TRAIN,), cfg, run, samples)]
    assert planned[-2:] == [Stage.COMPARE, Stage.TRAIN]  # hand-made compare outputs carry no record: rerun
