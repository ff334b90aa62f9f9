"""The compare stage on hand-built run directories (synthetic feature tables, no images)."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import pytest

from leukoscope.classifiers.errors import EvaluationError
from leukoscope.classifiers.metrics import METRICS
from leukoscope.features.surround import SURROUND_COLUMNS
from leukoscope.features.univariate import CELL_LEVEL_NOTE
from leukoscope.pipeline import cli, graph
from leukoscope.pipeline.config import Config, load_config
from leukoscope.pipeline.datasets import load_dataset
from leukoscope.pipeline.demo import generate_demo
from leukoscope.pipeline.evaluation import COMPARE_PREDICTION_COLUMNS, RESULT_COLUMNS
from leukoscope.pipeline.graph import run_stages
from leukoscope.pipeline.layout import PREDICTION_COLUMNS
from leukoscope.pipeline.rundir import RunDir
from leukoscope.pipeline.stages.compare import run_compare

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


def write_features(run: RunDir, samples: pd.DataFrame, *, seed=0, backbone="vgg16", surround=0.0) -> None:
    """Handcrafted, CNN and surround tables; ``surround`` shifts the ALL cells' surround colour."""
    rng = np.random.default_rng(seed)
    y = (samples["label"] == "ALL").to_numpy(float)
    subject_shift = samples["subject"].map({s: rng.normal(0, 0.3) for s in samples["subject"].unique()}).to_numpy()
    ids = samples[["sample_id", "subject", "label", "split"]]
    hand = ids.assign(**{f"morph_{k}": rng.normal(size=len(y)) + 2.0 * y * (k < 2) + subject_shift for k in range(5)},
                      qc_flag="")
    cnn = ids.assign(weights="random", **{f"cnn_{backbone}_{k:04d}": rng.normal(size=len(y)) + 1.5 * y * (k < 3)
                                          for k in range(8)})
    around = ids.assign(**{c: rng.normal(size=len(y)) + surround * y for c in SURROUND_COLUMNS})
    folder = run.stage_dir("handcrafted")
    hand.to_csv(folder / "handcrafted.csv", index=False)
    cnn.to_csv(folder / f"cnn_{backbone}.csv", index=False)
    around.to_csv(folder / "surround.csv", index=False)


def config(run: RunDir, **overrides) -> Config:
    return Config().with_overrides({"run.out": str(run.path), "features.backbones": "vgg16", **FAST, **overrides})


def test_compare_writes_results_predictions_and_report(tmp_path):
    run = RunDir(tmp_path / "run")
    samples = make_samples()
    write_features(run, samples)
    run_compare(config(run), run, samples)
    out = run.path / "compare"
    results = pd.read_csv(out / "results.csv", keep_default_na=False, na_values=[""])
    assert list(results.columns) == RESULT_COLUMNS
    assert list(zip(results["role"], results["model"], results["feature_set"])) == [
        ("headline", "nested", "selected"), ("baseline", "majority", "none"), ("candidate", "knn", "handcrafted"),
        ("candidate", "knn", "cnn_vgg16"), ("candidate", "knn", "hybrid_vgg16")]
    assert set(results["protocol"]) == {"group-cv"}
    assert results[list(METRICS)].notna().all().all()
    assert (results["n_test"] == 120).all() and (results["n_test_subjects"] == 12).all()
    weights = dict(zip(results["feature_set"], results["weights"]))
    assert weights == {"selected": "random", "none": "none", "handcrafted": "none", "cnn_vgg16": "random",
                       "hybrid_vgg16": "random"}
    learnt = results[results["role"] != "baseline"]
    assert (learnt["balanced_accuracy"] > 0.8).all()
    assert results.set_index("model").loc["majority", "balanced_accuracy"] == 0.5  # 6 + 6 subjects in every fold
    assert (learnt["accuracy_ci_low"] <= learnt["accuracy"]).all()
    assert (learnt["accuracy"] <= learnt["accuracy_ci_high"]).all()
    assert results["accuracy_ci_note"].isna().all()  # 6 subjects per class: estimable

    predictions = pd.read_csv(out / "predictions.csv", dtype={"subject": str, "unit": str})
    assert list(predictions.columns) == COMPARE_PREDICTION_COLUMNS
    assert (predictions["unit"] == predictions["subject"]).all()  # group-cv resamples subjects
    one = predictions[(predictions["model"] == "knn") & (predictions["feature_set"] == "handcrafted")]
    assert sorted(one["sample_id"]) == sorted(samples["sample_id"])
    assert one.groupby("subject")["fold"].nunique().max() == 1  # a subject lives in one fold
    assert ((predictions["y_score"] >= 0.5).astype(int) == predictions["y_pred"]).all()

    counts = pd.read_csv(out / "class_counts.csv")
    assert list(counts.columns) == ["fold", "part", "ALL_cells", "HEM_cells", "ALL_subjects", "HEM_subjects"]
    assert counts.loc[counts["part"] == "test", ["ALL_subjects", "HEM_subjects"]].sum().tolist() == [6, 6]
    chosen = pd.read_csv(out / "nested_chosen.csv")
    assert list(chosen["fold"]) == ["cv_0", "cv_1", "cv_2"] and set(chosen["model"]) == {"knn"}
    assert len(pd.read_csv(out / "nested_inner_scores.csv")) == 3 * 3  # folds x candidates
    paired = pd.read_csv(out / "paired.csv")
    assert list(zip(paired["model"], paired["feature_set"])) == [
        ("majority", "none"), ("knn", "handcrafted"), ("knn", "cnn_vgg16"), ("knn", "hybrid_vgg16")]
    assert not paired.set_index("model").loc["majority", "indistinguishable"]  # the baseline is worse
    calibration = pd.read_csv(out / "calibration.csv")
    assert len(calibration) == 5 and calibration["brier"].between(0, 1).all()
    for name in ("confusion_matrices.png", "roc_curves.png", "reliability.png", "report.md", "report.html"):
        assert (out / name).stat().st_size > 0
    assert not (out / "repeats.csv").exists()
    confound = pd.read_csv(out / "confound.csv")
    assert list(confound["model"]) == ["knn"] and not confound["confound"].any()  # noise around the cells
    report = (out / "report.md").read_text()
    assert "Selection-corrected balanced accuracy: 0." in report and "Majority-class baseline" in report
    assert "statistically indistinguishable" in report and "best" not in report.lower()
    assert "No clear confound" in report and "tell ALL from HEM" not in report
    info = run.read_info()["compare"]
    assert info["protocol"] == "group-cv" and info["nested"] == "2 selection folds, 2 tuning folds"


def test_shuffled_labels_leave_the_nested_headline_at_chance(tmp_path):
    """Labels shuffled across subjects: no feature carries them, so nothing may beat chance, and the
    selection-corrected headline's interval covers 0.5."""
    run = RunDir(tmp_path / "run")
    samples = make_samples()
    write_features(run, samples)
    subjects = samples["subject"].unique()
    shuffled = dict(zip(subjects, np.random.default_rng(5).permutation(["ALL"] * 6 + ["HEM"] * 6)))
    run_compare(config(run, **{"compare.models": "logreg,knn", "compare.feature_sets": "handcrafted"}), run,
                samples.assign(label=samples["subject"].map(shuffled)))
    results = pd.read_csv(run.path / "compare" / "results.csv").set_index("role")
    assert (results["balanced_accuracy"] - 0.5).abs().max() <= 0.2
    headline = results.loc["headline"]
    assert headline["balanced_accuracy_ci_low"] <= 0.5 <= headline["balanced_accuracy_ci_high"]


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


def test_small_official_split_warns_and_prints_no_interval_and_counts_heads_like_the_paper(tmp_path):
    """C-NMC layout with 2 test subjects per class: the report warns and no interval is printed as an estimate;
    the heads' metrics are also counted as the paper's Keras metrics."""
    run = RunDir(tmp_path / "run")
    splits = ["fold_0", "fold_1", "fold_2", "fold_0", "prelim_test", "prelim_test"] * 2
    samples = make_samples(splits=splits)
    write_features(run, samples)
    test = samples[samples["split"] == "prelim_test"]
    blast = (test["label"] == "ALL").to_numpy()
    heads = test.assign(protocol="official", fold="prelim_test", model="sigmoid_head", feature_set="head_vgg16",
                        y_true=0, weights="random", out_hem=0.9, out_all=np.where(blast, 0.9, 0.2))
    heads["y_score"] = heads["out_all"] / (heads["out_hem"] + heads["out_all"])  # 0.5 (ALL) or 0.18 (HEM)
    heads["y_pred"] = (heads["y_score"] >= 0.5).astype(int)
    run.stage_dir("heads")
    heads[[*PREDICTION_COLUMNS, "weights", "out_hem", "out_all"]].to_csv(run.path / "heads" / "predictions.csv",
                                                                          index=False)
    cfg = config(run, **{"compare.protocol": "auto", "compare.feature_sets": "handcrafted,head",
                         "heads.backbones": "vgg16"})
    for stage in ("handcrafted", "embeddings", "heads"):  # the files above are their outputs
        graph.mark_done(stage, cfg, run, samples)
    run_stages("compare", cfg, run, samples)
    out = run.path / "compare"
    results = pd.read_csv(out / "results.csv", keep_default_na=False, na_values=[""]).set_index("feature_set")
    assert set(results["protocol"]) == {"official"}
    assert list(results["role"]) == ["headline", "baseline", "candidate", "head"]
    head = results.loc["head_vgg16"]
    assert (head["model"], head["weights"], head["n_test"], head["n_train"]) == ("sigmoid_head", "random", 40, 80)
    assert head["accuracy"] == 1.0
    for metric in METRICS:  # 2 subjects of a class: no interval anywhere
        assert results[f"{metric}_ci_low"].isna().all()
        assert results[f"{metric}_ci_note"].str.startswith("not estimable (2 ").all()
    predictions = pd.read_csv(out / "predictions.csv")
    merged = predictions[predictions["feature_set"] == "head_vgg16"]
    assert (merged["y_true"] == (merged["sample_id"].str[0] != "H").astype(int)).all()  # truth from the manifest
    counts = pd.read_csv(out / "class_counts.csv")
    assert counts[["part", "ALL_subjects", "HEM_subjects"]].values.tolist() == [["train", 4, 4], ["test", 2, 2]]
    paired = pd.read_csv(out / "paired.csv")
    assert paired["difference_ci_note"].str.startswith("not estimable").all() and paired["indistinguishable"].all()
    report = (out / "report.md").read_text()
    assert "> Warning: the test cells come from 2 ALL subjects and 2 HEM subjects" in report
    assert "Selection-corrected balanced accuracy" in report and "Majority-class baseline" in report
    assert not re.search(r"\[(\d\.\d{3}), \1\]", report)  # no degenerate interval printed as an estimate
    assert not re.search(r"\| 0\.\d{3} \[0\.\d{3}, [01]\.\d{3}\] \|", report)  # nor any interval
    assert "| VGG16 | 0.70455 / 0.5035 / 0.9886 | 0.750 / 0.667 / 1.000 | 1.000 / 1.000 / 1.000 |" in report
    assert "ResNet50" not in report  # only the backbones that ran


def test_background_that_gives_the_label_away_is_reported(tmp_path):
    run = RunDir(tmp_path / "run")
    samples = make_samples()
    write_features(run, samples, surround=3.0)
    run_compare(config(run, **{"compare.feature_sets": "handcrafted", "compare.nested": False}), run, samples)
    confound = pd.read_csv(run.path / "compare" / "confound.csv")
    assert confound["confound"].all() and confound["verdict"].str.startswith("Confound:").all()
    report = (run.path / "compare" / "report.md").read_text()
    assert "> Warning: the pixels outside the cells alone tell ALL from HEM" in report
    assert "No selection-corrected headline (not run: compare.nested = false)" in report
    # cells on black: the pixels outside them are no background, so the check does not run
    run.stage_dir("segmentation")
    pd.DataFrame({"sample_id": samples["sample_id"], "background": "black"}).to_csv(run.segmentation_table, index=False)
    run_compare(config(run, **{"compare.feature_sets": "handcrafted", "compare.nested": False}), run, samples)
    assert not (run.path / "compare" / "confound.csv").exists()
    assert "Confound check not run: the cells sit on black" in (run.path / "compare" / "report.md").read_text()


def test_repeats_give_mean_and_spread_across_fold_seeds(tmp_path):
    run = RunDir(tmp_path / "run")
    samples = make_samples()
    write_features(run, samples)
    run_compare(config(run, **{"compare.feature_sets": "handcrafted", "compare.repeats": 3, "compare.nested": False,
                               "compare.bootstrap": 0}), run, samples)
    repeats = pd.read_csv(run.path / "compare" / "repeats.csv").set_index("model")
    assert list(repeats.index) == ["majority", "knn"] and (repeats["repeats"] == 3).all()
    knn = repeats.loc["knn"]
    assert knn["balanced_accuracy_min"] <= knn["balanced_accuracy_mean"] <= knn["balanced_accuracy_max"]
    first = pd.read_csv(run.path / "compare" / "results.csv").set_index("model").loc["knn", "balanced_accuracy"]
    assert knn["balanced_accuracy_min"] <= first <= knn["balanced_accuracy_max"]  # seed 0 is one of the repeats
    assert "across repeats" in (run.path / "compare" / "report.md").read_text()


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
def test_allidb2_handcrafted_svm_reaches_the_floor_beside_headline_baseline_and_confound(shared_data, tmp_path):
    """ALL-IDB2, stratified 5-fold, the shipped config: segmentation -> handcrafted (and surround) features -> SVM,
    its nested headline, the baseline and the confound check; the report's feature statistics are cell-level
    (ALL-IDB2 names no patients) and say so."""
    samples = load_dataset(shared_data / "all-idb2", "allidb2").samples.assign(sha256="")
    run = RunDir(tmp_path / "run")
    cfg = load_config("allidb2").with_overrides({
        "data.path": str(shared_data / "all-idb2"), "data.masks": "", "run.out": str(run.path),
        "run.quiet": True, "features.backbones": "none", "compare.models": "svm",
        "compare.feature_sets": "handcrafted", "compare.bootstrap": 200,
    })
    assert run_stages("compare", cfg, run, samples) == ["segmentation", "handcrafted", "statistics", "compare"]
    out = run.path / "compare"
    results = pd.read_csv(out / "results.csv").set_index("role")
    assert set(results["protocol"]) == {"stratified-cv"} and (results["n_test"] == 260).all()
    assert results.loc["candidate", "accuracy"] >= 0.96
    assert results.loc["baseline", "balanced_accuracy"] == 0.5 and results.loc["headline", "balanced_accuracy"] >= 0.96
    assert len(pd.read_csv(out / "class_counts.csv")) == 10 and len(pd.read_csv(out / "paired.csv")) == 2
    assert pd.read_csv(out / "confound.csv")["confound"].all()  # the smear around the crops gives the label away
    assert "> Warning: the pixels outside the cells alone tell ALL from HEM" in (out / "report.md").read_text()
    assert f"Warning: {CELL_LEVEL_NOTE}." in (out / "report.md").read_text()


def test_nothing_to_compare_stops_with_the_fix(tmp_path):
    run = RunDir(tmp_path / "run")
    samples = make_samples()
    write_features(run, samples)
    with pytest.raises(EvaluationError, match="nothing to compare.*features.backbones"):
        run_compare(config(run, **{"compare.feature_sets": "cnn", "features.backbones": "none"}), run, samples)


@pytest.mark.slow
def test_demo_report_has_baseline_counts_headline_and_paired_and_warns(tmp_path):
    """The demo layout (12 subjects, 2 of each class in the preliminary test set) through the command line."""
    data = tmp_path / "demo"
    generate_demo(data, subjects=12, cells=48, seed=0)
    out = tmp_path / "run"
    assert cli.main(["compare", "--config", "demo", "--data", str(data), "--out", str(out), "--backbones", "none",
                     "--heads", "none", "--feature-sets", "handcrafted", "--models", "logreg,knn", "--quiet"]) == 0
    results = pd.read_csv(out / "compare" / "results.csv")
    assert list(results["role"]) == ["headline", "baseline", "candidate", "candidate"]
    assert len(pd.read_csv(out / "compare" / "class_counts.csv")) == 2
    assert len(pd.read_csv(out / "compare" / "paired.csv")) == 3
    report = (out / "compare" / "report.md").read_text()
    assert "> Synthetic data" in report and "> Warning: the test cells come from 2 ALL subjects and 2 HEM subjects" \
        in report
    assert not re.search(r"\[(\d\.\d{3}), (\d\.\d{3})\]", report)  # every interval rests on 2 subjects a class
