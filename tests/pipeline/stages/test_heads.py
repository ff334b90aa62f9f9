"""The heads stage: subject-disjoint validation, saved model, history, predictions, weights."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from leukoscope.classifiers.errors import EvaluationError
from leukoscope.features.backbones import get_backbone
from leukoscope.features.embeddings import prepare_batch
from leukoscope.pipeline.config import Config
from leukoscope.pipeline.imageio import read_image
from leukoscope.pipeline.rundir import RunDir
from leukoscope.pipeline.stages.compare import PREDICTION_COLUMNS
from leukoscope.pipeline.stages.heads import carve_validation, run_heads

from ..cell_table import write_cells

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _config(**overrides) -> Config:
    return Config().with_overrides({
        "heads.backbones": "vgg16", "heads.input_size": 32, "heads.epochs": 3, "features.weights": "random",
        "compare.protocol": "official", "run.quiet": True, **overrides,
    })


def _table(subjects_per_class: int, cells: int = 2) -> pd.DataFrame:
    rows = [{"sample_id": f"{s}_{c}", "label": label, "subject": s, "split": "fold_0"}
            for label, prefix in (("ALL", ""), ("HEM", "H")) for i in range(subjects_per_class)
            for s in [f"{prefix}{i + 1}"] for c in range(cells)]
    return pd.DataFrame(rows)


def test_validation_part_is_subject_disjoint_and_holds_both_classes():
    table = _table(7)
    train = np.arange(len(table))
    part = carve_validation(table, train, fraction=0.15, seed=0)
    fit_subjects = set(table["subject"].iloc[part.fit])
    val_subjects = set(table["subject"].iloc[part.validation])
    assert not fit_subjects & val_subjects
    assert set(table["label"].iloc[part.validation]) == {"ALL", "HEM"}
    assert len(val_subjects) == 2  # 1 / round(1 / 0.15) = 1/7 of 7 subjects per class
    assert sorted([*part.fit, *part.validation]) == list(train)


def test_validation_part_shrinks_to_the_subjects_available():
    table = _table(3)
    part = carve_validation(table, np.arange(len(table)), fraction=0.15, seed=0)
    assert len(part.validation) == 4  # 3 folds: one subject per class
    with pytest.raises(EvaluationError, match="needs at least 2 per class"):
        carve_validation(_table(1), np.arange(4), fraction=0.15, seed=0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    samples = write_cells(tmp_path_factory.mktemp("cells"))
    run = RunDir(tmp_path_factory.mktemp("run"))
    run_heads(_config(), run, samples)
    return run, samples


def test_predictions_cover_the_test_part_and_record_the_weights(trained):
    run, samples = trained
    predictions = pd.read_csv(run.path / "heads" / "predictions.csv", dtype={"subject": str})
    assert list(predictions.columns) == [*PREDICTION_COLUMNS, "weights", "out_hem", "out_all"]
    test = samples[samples["split"] == "prelim_test"]
    assert sorted(predictions["sample_id"]) == sorted(test["sample_id"])
    assert set(predictions["fold"]) == {"prelim_test"} and set(predictions["protocol"]) == {"official"}
    assert set(predictions["model"]) == {"sigmoid_head"} and set(predictions["feature_set"]) == {"head_vgg16"}
    assert (predictions["weights"] == "random").all()
    assert predictions["y_score"].between(0, 1).all()
    np.testing.assert_array_equal(predictions["y_pred"], (predictions["y_score"] >= 0.5).astype(int))
    expected = test.set_index("sample_id").loc[predictions["sample_id"], "label"].eq("ALL").astype(int)
    np.testing.assert_array_equal(predictions["y_true"], expected)
    info = json.loads(run.info_path.read_text())
    assert info["weights"]["vgg16"]["label"] == "random"
    assert info["heads"]["splits"] == ["prelim_test"]


def test_saved_model_loads_safely_and_reproduces_the_predictions(trained):
    import keras

    run, samples = trained
    folder = run.path / "heads" / "vgg16"
    model = keras.saving.load_model(folder / "model.keras", safe_mode=True)
    assert [layer.name for layer in model.layers][-4:] == ["vgg16", "head_pool", "head_dropout", "head_dense"]
    assert isinstance(model.optimizer, keras.optimizers.Adamax)
    assert isinstance(model.loss, keras.losses.BinaryCrossentropy)
    head = json.loads((folder / "head.json").read_text())
    assert head["input_size"] == 32 and head["classes"] == ["HEM", "ALL"]
    assert head["recipe"]["batch_size"] == 40 and head["recipe"]["dropout"] == 0.5
    predictions = pd.read_csv(run.path / "heads" / "predictions.csv")
    paths = samples.set_index("sample_id").loc[predictions["sample_id"], "path"]
    spec = get_backbone("vgg16")
    x = prepare_batch([read_image(p) for p in paths], size=32, preprocess=spec.preprocess)
    outputs = model.predict_on_batch(x)
    np.testing.assert_allclose(outputs[:, 1] / outputs.sum(axis=1), predictions["y_score"], rtol=1e-4)
    np.testing.assert_allclose(outputs, predictions[["out_hem", "out_all"]], rtol=1e-4)  # both sigmoids kept


def test_history_and_learning_curve(trained):
    run, _ = trained
    history = pd.read_csv(run.path / "heads" / "vgg16" / "history.csv")
    assert list(history.columns) == ["fold", "phase", "epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
    assert list(history["epoch"]) == [1, 2, 3] and set(history["phase"]) == {"head"}  # whole epochs
    assert (run.path / "heads" / "vgg16" / "learning_curve.png").stat().st_size > 1000


def test_rerun_is_deterministic_and_keeps_other_backbones_rows(trained):
    run, samples = trained
    path = run.path / "heads" / "predictions.csv"
    before = pd.read_csv(path)
    other = before.assign(feature_set="head_resnet50")
    pd.concat([before, other]).to_csv(path, index=False)
    run_heads(_config(), run, samples)  # pooled features come from the cache
    after = pd.read_csv(path)
    pd.testing.assert_frame_equal(after[after["feature_set"] == "head_vgg16"].reset_index(drop=True), before)
    assert (after["feature_set"] == "head_resnet50").sum() == len(before)


@pytest.mark.slow
def test_cross_validation_with_a_fine_tuning_phase(tmp_path):
    samples = write_cells(tmp_path / "cells", cells=2)
    run = RunDir(tmp_path / "run")
    config = _config(**{"compare.protocol": "group-cv", "compare.folds": 2, "heads.epochs": 1,
                        "heads.unfreeze_top": 2, "heads.fine_tune_epochs": 1, "heads.class_weight": True})
    run_heads(config, run, samples)
    predictions = pd.read_csv(run.path / "heads" / "predictions.csv")
    assert set(predictions["fold"]) == {"cv_0", "cv_1"}
    assert sorted(predictions["sample_id"]) == sorted(samples["sample_id"])
    history = pd.read_csv(run.path / "heads" / "vgg16" / "history.csv")
    assert set(history["fold"]) == {"cv_0", "cv_1", "final"}
    assert (history.groupby("fold")["phase"].agg(list) == pd.Series([["head", "fine_tune"]] * 3,
                                                                    index=["cv_0", "cv_1", "final"])).all()
