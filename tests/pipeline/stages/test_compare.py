"""The compare stage on hand-built run directories (synthetic feature tables, no images)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from leukoscope.classifiers.errors import EvaluationError
from leukoscope.classifiers.metrics import METRICS
from leukoscope.features.univariate import CELL_LEVEL_NOTE
from leukoscope.pipeline import graph
from leukoscope.pipeline.config import Config, load_config
from leukoscope.pipeline.datasets import load_dataset
from leukoscope.pipeline.graph import run_stages
from leukoscope.pipeline.rundir import RunDir
from leukoscope.pipeline.stages.compare import PREDICTION_COLUMNS, RESULT_COLUMNS, run_compare

FAST = {"compare.models": "knn", "compare.bootstrap": 200, "compare.folds": 3, "compare.inner_folds": 2,
        "run.quiet": True}


def make_samples(n_subjects=12, cells=10, seed=0, splits=None) -> pd.DataFrame:
    rows = []
    for s in range(n_subjects):
        blast = s < n_subjects // 2
        subject = str(s + 1) if blast else f"H{s + 1}"
        for c in range(cells):
            rows.append({"sample_id": f"{subject}_{c}", "path": f"/data/{subject}_{c}.bmp",
                         "label": "ALL" if blast else "HEM", "subject": subject,
                         "split": splits[s] if splits else "", "sha256": "0" * 64})
    return pd.DataFrame(rows)


def write_features(run: RunDir, samples: pd.DataFrame, *, seed=0, backbone="vgg16") -> None:
    rng = np.random.default_rng(seed)
    y = (samples["label"] == "ALL").to_numpy(float)
    subject_shift = samples["subject"].map({s: rng.normal(0, 0.3) for s in samples["subject"].unique()}).to_numpy()
    ids = samples[["sample_id", "subject", "label", "split"]]
    hand = ids.assign(**{f"morph_{k}": rng.normal(size=len(y)) + 2.0 * y * (k < 2) + subject_shift for k in range(5)},
                      qc_flag="")
    cnn = ids.assign(weights="random", **{f"cnn_{backbone}_{k:04d}": rng.normal(size=len(y)) + 1.5 * y * (k < 3)
                                          for k in range(8)})
    folder = run.stage_dir("handcrafted")
    hand.to_csv(folder / "handcrafted.csv", index=False)
    cnn.to_csv(folder / f"cnn_{backbone}.csv", index=False)


def config(run: RunDir, **overrides) -> Config:
    return Config().with_overrides({"run.out": str(run.path), "features.backbones": "vgg16", **FAST, **overrides})


def test_compare_writes_results_predictions_and_report(tmp_path):
    run = RunDir(tmp_path / "run")
    samples = make_samples()
    write_features(run, samples)
    run_compare(config(run), run, samples)
    out = run.path / "compare"
    results = pd.read_csv(out / "results.csv")
    assert list(results.columns) == RESULT_COLUMNS
    assert sorted(results["feature_set"].unique()) == ["cnn_vgg16", "handcrafted", "hybrid_vgg16"]
    assert len(results) == 3 and set(results["protocol"]) == {"group-cv"}
    assert results[list(METRICS)].notna().all().all()
    assert (results["n_test"] == 120).all() and (results["n_test_subjects"] == 12).all()
    weights = dict(zip(results["feature_set"], results["weights"]))
    assert weights == {"handcrafted": "none", "cnn_vgg16": "random", "hybrid_vgg16": "random"}
    assert (results["balanced_accuracy"] > 0.8).all()
    assert (results["accuracy_ci_low"] <= results["accuracy"]).all()
    assert (results["accuracy"] <= results["accuracy_ci_high"]).all()

    predictions = pd.read_csv(out / "predictions.csv", dtype={"subject": str})
    assert list(predictions.columns) == PREDICTION_COLUMNS
    one = predictions[(predictions["model"] == "knn") & (predictions["feature_set"] == "handcrafted")]
    assert sorted(one["sample_id"]) == sorted(samples["sample_id"])
    assert one.groupby("subject")["fold"].nunique().max() == 1  # a subject lives in one fold
    assert ((predictions["y_score"] >= 0.5).astype(int) == predictions["y_pred"]).all()

    for name in ("confusion_matrices.png", "roc_curves.png", "report.md", "report.html"):
        assert (out / name).stat().st_size > 0
    assert run.read_info()["compare"]["protocol"] == "group-cv"


def test_shuffled_labels_give_chance_level_results(tmp_path):
    """Labels shuffled across subjects: no feature carries them, so nothing may beat chance."""
    run = RunDir(tmp_path / "run")
    samples = make_samples()
    write_features(run, samples)
    subjects = samples["subject"].unique()
    shuffled = dict(zip(subjects, np.random.default_rng(5).permutation(["ALL"] * 6 + ["HEM"] * 6)))
    run_compare(config(run, **{"compare.models": "logreg,knn", "compare.feature_sets": "handcrafted"}), run,
                samples.assign(label=samples["subject"].map(shuffled)))
    results = pd.read_csv(run.path / "compare" / "results.csv")
    assert (results["balanced_accuracy"] - 0.5).abs().max() <= 0.2


def test_nan_rows_are_dropped_or_imputed_and_counted(tmp_path):
    run = RunDir(tmp_path / "run")
    samples = make_samples()
    write_features(run, samples)
    path = run.path / "features" / "handcrafted.csv"
    hand = pd.read_csv(path)
    features = [c for c in hand.columns if c.startswith("morph_")]
    hand.loc[[0, 1], features] = np.nan  # rejected cells: dropped
    hand.loc[[2, 3, 4], features[0]] = np.nan  # degenerate measurement: imputed
    hand.to_csv(path, index=False)
    run_compare(config(run), run, samples)
    counts = pd.read_csv(run.path / "compare" / "feature_sets.csv").set_index("feature_set")
    assert counts.loc["handcrafted", ["n_dropped", "n_imputed", "n_missing"]].tolist() == [2, 3, 0]
    assert counts.loc["hybrid_vgg16", ["n_dropped", "n_imputed"]].tolist() == [0, 5]
    results = pd.read_csv(run.path / "compare" / "results.csv").set_index("feature_set")
    assert results.loc["handcrafted", "n_test"] == 118 and results.loc["hybrid_vgg16", "n_test"] == 120
    report = (run.path / "compare" / "report.md").read_text()
    assert "all NaN" in report and "| handcrafted | none | 5 | 120 | 0 | 2 | 3 |" in report


def test_official_protocol_and_head_predictions_are_merged(tmp_path):
    run = RunDir(tmp_path / "run")
    splits = ["fold_0", "fold_1", "fold_2", "fold_0", "prelim_test", "prelim_test"] * 2
    samples = make_samples(splits=splits)
    write_features(run, samples)
    test = samples[samples["split"] == "prelim_test"]
    heads = test.assign(protocol="official", fold="prelim_test", model="sigmoid_head", feature_set="head_vgg16",
                        y_true=0, y_score=np.linspace(0.2, 0.8, len(test)), y_pred=0, weights="random")
    heads["y_pred"] = (heads["y_score"] >= 0.5).astype(int)
    run.stage_dir("heads")
    heads[[*PREDICTION_COLUMNS, "weights"]].to_csv(run.path / "heads" / "predictions.csv", index=False)
    cfg = config(run, **{"compare.protocol": "auto", "compare.feature_sets": "handcrafted,head",
                         "heads.backbones": "vgg16"})
    for stage in ("handcrafted", "embeddings", "heads"):  # the files above are their outputs
        graph.mark_done(stage, cfg, run, samples)
    run_stages("compare", cfg, run, samples)
    results = pd.read_csv(run.path / "compare" / "results.csv").set_index("feature_set")
    assert set(results["protocol"]) == {"official"}
    head = results.loc["head_vgg16"]
    assert (head["model"], head["weights"], head["n_test"], head["n_train"]) == ("sigmoid_head", "random", 40, 80)
    predictions = pd.read_csv(run.path / "compare" / "predictions.csv")
    merged = predictions[predictions["feature_set"] == "head_vgg16"]
    assert (merged["y_true"] == (merged["sample_id"].str[0] != "H").astype(int)).all()  # truth from the manifest
    report = (run.path / "compare" / "report.md").read_text()
    assert "| VGG16 | 0.70455 / 0.5035 / 0.9886 |" in report


def test_missing_features_run_the_features_stage_then_stop_with_the_fix(tmp_path, monkeypatch):
    run = RunDir(tmp_path / "run")
    samples = make_samples()
    calls = []
    for name in ("segmentation", "handcrafted"):
        monkeypatch.setitem(graph.STAGES, name, dataclasses.replace(
            graph.STAGES[name], check=None, run=lambda config, run, samples, consumers, name=name: calls.append(name)))
    with pytest.raises(EvaluationError, match="handcrafted.csv' is missing after the features stage ran.*rejected.csv"):
        run_stages("compare", config(run, **{"compare.feature_sets": "handcrafted"}), run, samples)
    assert calls == ["segmentation", "handcrafted"]
    monkeypatch.setitem(graph.STAGES, "handcrafted", dataclasses.replace(
        graph.STAGES["handcrafted"], run=lambda config, run, samples, consumers: write_features(run, samples)))
    run_stages("compare", config(run, **{"compare.feature_sets": "handcrafted"}), run, samples)
    assert (run.path / "compare" / "results.csv").exists()


def test_one_subject_stops_before_any_work(tmp_path):
    run = RunDir(tmp_path / "run")
    samples = make_samples(n_subjects=2).assign(subject="7")
    with pytest.raises(EvaluationError, match="one subject only"):
        run_stages("compare", config(run), run, samples)
    assert not (run.path / "compare").exists() and not (run.path / "segmentation").exists()


@pytest.mark.slow
@pytest.mark.shared_data
def test_allidb2_best_handcrafted_model_reaches_the_floor(shared_data, tmp_path):
    """ALL-IDB2, stratified 5-fold, the shipped config: segmentation -> handcrafted features -> SVM;
    the report's feature statistics are cell-level (ALL-IDB2 names no patients) and say so."""
    samples = load_dataset(shared_data / "all-idb2", "allidb2").samples.assign(sha256="")
    run = RunDir(tmp_path / "run")
    cfg = load_config("allidb2").with_overrides({
        "data.path": str(shared_data / "all-idb2"), "data.masks": "", "run.out": str(run.path),
        "run.quiet": True, "features.backbones": "none", "compare.models": "svm",
        "compare.feature_sets": "handcrafted", "compare.bootstrap": 200,
    })
    assert run_stages("compare", cfg, run, samples) == ["segmentation", "handcrafted", "statistics", "compare"]
    results = pd.read_csv(run.path / "compare" / "results.csv")
    assert set(results["protocol"]) == {"stratified-cv"} and (results["n_test"] == 260).all()
    assert results["accuracy"].max() >= 0.96
    assert f"Warning: {CELL_LEVEL_NOTE}." in (run.path / "compare" / "report.md").read_text()


def test_nothing_to_compare_stops_with_the_fix(tmp_path):
    run = RunDir(tmp_path / "run")
    samples = make_samples()
    write_features(run, samples)
    with pytest.raises(EvaluationError, match="nothing to compare.*features.backbones"):
        run_compare(config(run, **{"compare.feature_sets": "cnn", "features.backbones": "none"}), run, samples)
