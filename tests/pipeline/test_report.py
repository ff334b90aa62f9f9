"""The comparison report: figures, Markdown and self-contained HTML, with the paper's Table 1."""

from __future__ import annotations

import base64
import re

import cv2
import numpy as np
import pandas as pd

from leukoscope.classifiers.choices import Protocol
from leukoscope.pipeline.config import Config
from leukoscope.pipeline.report import confusion_grid, paper_table, results_table, write_report
from leukoscope.pipeline.stages.compare import summarise


def fake_predictions(feature_sets=("handcrafted", "cnn_resnet50", "head_resnet50"), models=("svm", "knn"), seed=0):
    rng = np.random.default_rng(seed)
    frames = []
    y = np.repeat([1, 0], 20)
    for fs in feature_sets:
        for model in (("sigmoid_head",) if fs.startswith("head_") else models):
            score = np.clip(0.5 + 0.3 * (2 * y - 1) + rng.normal(0, 0.25, len(y)), 0, 1)
            frames.append(pd.DataFrame({
                "sample_id": [f"c{i}" for i in range(len(y))], "subject": [f"s{i // 4}" for i in range(len(y))],
                "protocol": "group-cv", "fold": "cv_0", "model": model, "feature_set": fs,
                "y_true": y, "y_score": score, "y_pred": (score >= 0.5).astype(int)}))
    return pd.concat(frames, ignore_index=True)


def fake_results(predictions):
    weights = {fs: ("none" if fs == "handcrafted" else "random") for fs in predictions["feature_set"].unique()}
    return summarise(predictions, {fs: 80 for fs in weights}, weights, n_boot=100, seed=0)


COUNTS = pd.DataFrame([{"feature_set": "handcrafted", "weights": "none", "n_features": 44, "n_labelled": 40,
                        "n_missing": 1, "n_dropped": 2, "n_imputed": 3, "pca_components": 0}])


def test_report_files_and_their_content(tmp_path):
    predictions = fake_predictions()
    results = fake_results(predictions)
    files = write_report(tmp_path, results=results, predictions=predictions, feature_sets=COUNTS,
                         protocol=Protocol.GROUP_CV, config=Config(), n_folds=5)
    assert [f.name for f in files] == ["confusion_matrices.png", "roc_curves.png", "report.md", "report.html"]
    for png in files[:2]:
        image = cv2.imread(str(png))
        assert image is not None and image.shape[0] > 200 and image.std() > 10  # drawn, not blank

    md = (tmp_path / "report.md").read_text()
    assert "Protocol: group-cv (5 folds, seed 0)" in md and "no subject has cells on both sides" in md
    assert "| ResNet50 | 0.7591 / 0.7585 / 0.7636 |" in md  # the paper's Table 1 row
    assert "not shown to be subject-disjoint" in md
    assert re.search(r"Best balanced accuracy: \w+ on [\w_]+ \(weights: (none|random)\), 0\.\d{3} \[", md)
    assert "weights 'random'" in md  # untrained CNNs are labelled so
    assert "| handcrafted | none | 44 | 40 | 1 | 2 | 3 | 0 |" in md
    assert "![" in md and "(confusion_matrices.png)" in md

    page = (tmp_path / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 2
    assert all(base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n" for data in images)
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing to fetch: opens from disk
    assert "<table" in page and "ResNet50" in page


def test_image_level_protocol_carries_the_leakage_warning(tmp_path):
    predictions = fake_predictions(feature_sets=("handcrafted",), models=("svm",))
    results = fake_results(predictions).assign(protocol="stratified-cv")
    write_report(tmp_path, results=results, predictions=predictions.assign(protocol="stratified-cv"),
                 feature_sets=COUNTS, protocol=Protocol.STRATIFIED_CV, config=Config(), n_folds=5)
    md = (tmp_path / "report.md").read_text()
    assert "image-level splits can leak" in md
    assert "weights 'random'" not in md


def test_results_table_is_ranked_with_intervals_and_paper_rows_say_not_run():
    results = fake_results(fake_predictions())
    shown = results_table(results)
    ranked = results.sort_values("balanced_accuracy", ascending=False)
    assert shown["model"].tolist() == ranked["model"].tolist()
    assert re.fullmatch(r"0\.\d{3} \[0\.\d{3}, [01]\.\d{3}\]", shown["accuracy"].iloc[0])
    paper = paper_table(results).set_index("model (paper)")
    assert paper.loc["VGG16", "ours: head acc / prec / rec"] == "not run"
    assert "sigmoid_head, random weights" in paper.loc["ResNet50", "ours: head acc / prec / rec"]


def test_many_rows_show_the_best_model_per_feature_set():
    predictions = fake_predictions()
    results = fake_results(predictions)
    image, caption = confusion_grid(results, predictions, max_panels=3)
    assert "best model" in caption
    assert image.shape[1] < confusion_grid(results, predictions)[0].shape[1]  # 3 panels in a row, not 5


def test_the_report_says_when_the_cells_were_cut_out_of_fields():
    from leukoscope.pipeline.report import fields_origin

    assert fields_origin(Config()) == ""
    text = fields_origin(Config().with_overrides({"data.dataset": "allidb1", "fields.red_cell_diameter": 60}))
    assert "cut out of whole smear fields" in text and "red-cell diameter 60 pixels" in text
    assert "subject is the field it came from" in text
