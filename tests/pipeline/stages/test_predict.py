"""The predict stage: a trained model applied to new cells, streamed, checked and summarised."""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pandas as pd
import pytest

from leukoscope.classifiers.subjects import SUBJECT_COLUMNS
from leukoscope.pipeline import cli, graph
from leukoscope.pipeline.cnmc_submission import MEMBER
from leukoscope.pipeline.evaluation import RESULT_COLUMNS
from leukoscope.pipeline.layout import ModelLayout, Stage
from leukoscope.pipeline.model_card import prediction_config
from leukoscope.pipeline.model_folder import ModelFolderError, open_model_folder
from leukoscope.pipeline.rundir import RunDir
from leukoscope.pipeline.stages.predict import PREDICT_COLUMNS, STAGE, run_predict

from .model_run import trained, write_segmentation

MODEL = "logreg_handcrafted"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return trained(tmp_path_factory.mktemp("model"))


def new_run(tmp_path, model, *, samples=None, shift=0.0, edit=None):
    """A run directory holding the training run's features of ``samples`` (default: every cell)."""
    source, all_samples, _cfg = model
    samples = all_samples if samples is None else samples
    run = RunDir(tmp_path / "new")
    run.stage_dir(Stage.HANDCRAFTED)
    table = pd.read_csv(source.handcrafted_table, dtype={"sample_id": str, "subject": str, "split": str})
    table = table[table["sample_id"].isin(samples["sample_id"])]
    features = [c for c in table.columns if c.startswith("morph_")]
    table[features] += shift
    if edit:
        table = edit(table)
    table.to_csv(run.handcrafted_table, index=False)
    write_segmentation(run, samples)
    folder = open_model_folder(source.model_dir(MODEL))
    config = prediction_config(folder.card, folder.path, {"run.out": str(run.path), "run.quiet": True,
                                                          "compare.bootstrap": 50})
    return run, samples, config


def compare_scores(model, name="logreg") -> pd.Series:
    source = model[0]
    table = pd.read_csv(source.compare_file("predictions.csv"), dtype={"sample_id": str})
    rows = table[(table["model"] == name) & (table["feature_set"] == "handcrafted")]
    return rows.set_index("sample_id")["y_score"]


def test_predictions_match_compare_and_every_output_is_written(tmp_path, model):
    run, samples, config = new_run(tmp_path, model)
    assert config.features.families and not config.features.backbones and not config.heads.backbones
    run_predict(config, run, samples)
    predictions = pd.read_csv(run.predictions_table, dtype={"sample_id": str, "subject": str}, keep_default_na=False)
    assert list(predictions.columns) == PREDICT_COLUMNS and len(predictions) == len(samples)
    expected = compare_scores(model)
    got = predictions.set_index("sample_id").loc[expected.index, "p_all"].astype(float)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert set(predictions["call"]) == {"ALL", "HEM"}
    assert (predictions["call"] == np.where(predictions["p_all"].astype(float) >= 0.5, "ALL", "HEM")).all()

    subjects = pd.read_csv(run.predict_subjects_table, dtype={"subject": str})
    assert list(subjects.columns) == SUBJECT_COLUMNS and len(subjects) == 12 and (subjects["cells"] == 10).all()
    results = pd.read_csv(run.predict_file("results.csv"))
    assert list(results.columns) == RESULT_COLUMNS
    assert (results["protocol"][0], results["n_test"][0], results["n_train"][0]) == ("predict", 120, 80)
    assert not run.predict_file("warnings.txt").exists()

    with zipfile.ZipFile(run.predict_file("cnmc_prelim_test_submission.zip")) as archive:
        lines = archive.read(MEMBER).decode().splitlines()
    prelim = predictions[predictions["path"].str.startswith("/data/prelim/")]
    number = prelim["path"].str.extract(r"/(\d+)\.bmp$")[0].astype(int)
    assert lines == [{"ALL": "1", "HEM": "0"}[c] for c in prelim["call"].to_numpy()[np.argsort(number)]]
    info = run.read_info()["predict"]
    assert (info["cells"], info["scored"], info["labelled"], info["warnings"]) == (120, 120, 120, [])


def test_unlabelled_cells_get_predictions_but_no_metrics(tmp_path, model):
    run, samples, config = new_run(tmp_path, model)
    run_predict(config, run, samples)
    assert run.predict_file("results.csv").exists()
    run_predict(config, run, samples.assign(label=""))  # the earlier metrics must not stay behind
    predictions = pd.read_csv(run.predictions_table, keep_default_na=False)
    assert (predictions["label"] == "").all() and not run.predict_file("results.csv").exists()
    assert (pd.read_csv(run.predict_subjects_table, keep_default_na=False)["label"] == "").all()


def test_cells_far_from_the_training_data_are_flagged(tmp_path, model):
    run, samples, config = new_run(tmp_path, model, shift=25.0)
    run_predict(config, run, samples)
    warning = run.predict_file("warnings.txt").read_text()
    assert "far from the training data" in warning and "morph_0" in warning
    shift = pd.read_csv(run.predict_file("shift.csv"))
    assert shift["shifted"].all() and (shift["fraction_outside"] == 1.0).all()
    assert (pd.read_csv(run.predictions_table)["outside_range"] == 5).all()
    assert run.read_info()["predict"]["warnings"]


def test_cells_without_features_get_no_call(tmp_path, model):
    def blank(table):
        table.loc[table.index[:2], [c for c in table.columns if c.startswith("morph_")]] = np.nan
        return table

    run, samples, config = new_run(tmp_path, model, edit=blank)
    run_predict(config, run, samples)
    predictions = pd.read_csv(run.predictions_table, keep_default_na=False)
    assert predictions["call"][:2].tolist() == ["", ""] and predictions["p_all"][:2].tolist() == ["", ""]
    assert run.read_info()["predict"]["scored"] == len(samples) - 2


def test_features_that_no_longer_match_the_saved_columns_are_refused(tmp_path, model):
    run, samples, config = new_run(tmp_path, model, edit=lambda t: t.rename(columns={"morph_3": "morph_x"}))
    expected = "no longer match.*column 4 \\('morph_x' here, 'morph_3' in the model\\)"
    with pytest.raises(ModelFolderError, match=expected):
        run_predict(config, run, samples)


def test_an_edited_model_folder_is_refused_before_any_stage_runs(tmp_path, model):
    copy = tmp_path / "copy"
    shutil.copytree(model[0].model_dir(MODEL), copy)
    card = copy / ModelLayout.CARD_TEXT
    card.write_text(card.read_text().replace("Research use only", "Clinical use"))
    run, samples, config = new_run(tmp_path, model)
    config = config.with_overrides({"predict.model": str(copy)})
    with pytest.raises(ModelFolderError, match="'MODEL.md' differs"):
        graph.run_targets((Stage.PREDICT,), config, run, samples)
    assert not run.predictions_table.exists()


def test_predict_needs_only_the_stages_of_the_model(tmp_path, model):
    _run, _samples, config = new_run(tmp_path, model)
    assert STAGE.needs(config) == (Stage.SEGMENTATION, Stage.HANDCRAFTED)
    assert STAGE.needs(config.with_overrides({"features.families": "none"})) == (Stage.SEGMENTATION,)


def test_the_command_line_takes_the_settings_from_the_model(tmp_path, model, capsys):
    folder = model[0].model_dir(MODEL)
    argv = ["predict", "--model", str(folder), "--data", "d", "--out", "o", "--jobs", "2"]
    args = cli.build_parser().parse_args(argv)
    config = cli.resolve_config(args)
    card = json.loads((folder / ModelLayout.CARD).read_text())
    assert (config.data.path, config.run.out, config.run.jobs, config.predict.model) == ("d", "o", 2, str(folder))
    assert config.to_dict()["segmentation"] == card["segmentation"] and not config.data.demo
    assert cli.main(["predict", "--model", str(tmp_path / "none"), "--data", "d", "--out", str(tmp_path / "o")]) == 2
    assert "does not exist; pass --model" in capsys.readouterr().err


@pytest.mark.slow
def test_train_then_predict_reproduces_compare_on_the_demo(tmp_path):
    """The target: for a classical model, XGBoost and a head, predict on the demo gives every
    preliminary-test cell compare's P(ALL) within 1e-6."""
    config = tmp_path / "tiny.toml"
    config.write_text(
        f'[data]\npath = "{tmp_path / "demo"}"\ndataset = "cnmc"\ndemo = true\ndemo_subjects = 8\ndemo_cells = 96\n'
        '[run]\nquiet = true\n[segmentation]\nbackground = "black"\n'
        '[features]\nbackbones = []\nweights = "random"\n'
        '[heads]\nbackbones = ["resnet50"]\nepochs = 2\ninput_size = 32\n'
        '[compare]\nprotocol = "official"\nmodels = ["logreg", "xgboost"]\nfeature_sets = ["handcrafted", "head"]\n'
        'bootstrap = 50\n')
    out = tmp_path / "run"
    assert cli.main(["train", "--config", str(config), "--out", str(out)]) == 0
    compare = pd.read_csv(out / "compare" / "predictions.csv", dtype={"sample_id": str})
    manifest = pd.read_csv(out / "manifest.csv", dtype=str).set_index("sample_id")
    for name, model, feature_set in [("logreg_handcrafted", "logreg", "handcrafted"),
                                     ("xgboost_handcrafted", "xgboost", "handcrafted"),
                                     ("head_resnet50", "sigmoid_head", "head_resnet50")]:
        folder = out / "models" / name
        target = tmp_path / f"predict_{name}"
        assert cli.main(["predict", "--model", str(folder), "--data", str(tmp_path / "demo"), "--out", str(target),
                         "--quiet"]) == 0
        rows = compare[(compare["model"] == model) & (compare["feature_set"] == feature_set)]
        predicted = pd.read_csv(target / "predict" / "predictions.csv").set_index("path")["p_all"]
        got = predicted.loc[manifest.loc[rows["sample_id"], "path"]].to_numpy()
        assert len(rows) == 24  # 2 preliminary-test subjects x 12 cells
        np.testing.assert_allclose(got, rows["y_score"].to_numpy(), atol=1e-6, rtol=0)
        assert (target / "predict" / "cnmc_prelim_test_submission.zip").exists()


def test_a_model_trained_with_another_refiner_is_refused(tmp_path, model):
    from ..test_model_folder import reseal

    copy = tmp_path / "copy"
    shutil.copytree(model[0].model_dir(MODEL), copy)
    card = json.loads((copy / ModelLayout.CARD).read_text())
    card["refiner_sha256"] = "0" * 64
    (copy / ModelLayout.CARD).write_text(json.dumps(card))
    reseal(copy)
    run, samples, config = new_run(tmp_path, model)
    with pytest.raises(ModelFolderError, match="refiner file here .* differs"):
        STAGE.check(config.with_overrides({"predict.model": str(copy)}), samples)


def test_final_test_submission_and_a_gap_that_prevents_one(tmp_path, model, caplog):
    run, samples, config = new_run(tmp_path, model)
    final = samples["split"] == "prelim_test"
    samples = samples.assign(split=np.where(final, "final_test", samples["split"]),
                             label=np.where(final, "", samples["label"]))
    run_predict(config, run, samples)
    with zipfile.ZipFile(run.predict_file("cnmc_final_test_submission.zip")) as archive:
        assert len(archive.read(MEMBER).decode().splitlines()) == int(final.sum())
    assert not run.predict_file("cnmc_prelim_test_submission.zip").exists()

    gap = samples[samples["path"] != "/data/prelim/3.bmp"]
    run_predict(config, run, gap)
    assert "no C-NMC submission for final_test: 1 image number(s) have no call (first 3)" in caplog.text
