"""The comparison report: sections, warnings, headline, paired verdicts, the paper's Table 1, figures."""

from __future__ import annotations

import base64
import re

import cv2
import numpy as np
import pandas as pd

from leukoscope.classifiers.calibration import calibration_table
from leukoscope.classifiers.choices import Protocol
from leukoscope.pipeline.config import Config
from leukoscope.pipeline.evaluation import Evaluation, keras_table, paired_table, summarise
from leukoscope.pipeline.report import build_blocks, config_digest, paper_table, write_report
from leukoscope.pipeline.report_figures import confusion_grid, row_label
from leukoscope.pipeline.report_html import STAMP
from leukoscope.pipeline.report_tables import GLOSSARY, results_table

ROWS = [("nested", "selected"), ("majority", "none"), ("svm", "handcrafted"), ("knn", "handcrafted"),
        ("svm", "cnn_resnet50"), ("knn", "cnn_resnet50"), ("sigmoid_head", "head_resnet50")]
COUNTS = pd.DataFrame([{"feature_set": "handcrafted", "weights": "none", "n_features": 44, "n_labelled": 40,
                        "n_missing": 1, "n_dropped": 2, "n_imputed": 3, "pca_components": 0}])
INFO = {"started": "2024-05-01T10:00:00+00:00", "argv": ["/x/leukoscope", "compare", "--config", "demo"]}


def fake_predictions(rows=ROWS, seed=0, subjects_per_class=5) -> pd.DataFrame:
    """40 cells of ``2 * subjects_per_class`` subjects, scored by every row (the baseline: 0.5, all ALL)."""
    rng = np.random.default_rng(seed)
    y = np.repeat([1, 0], 20)
    subjects = [f"s{i * subjects_per_class // 20}" for i in range(len(y))]
    frames = []
    for model, fs in rows:
        score = np.full(len(y), 0.5) if model == "majority" else \
            np.clip(0.5 + 0.3 * (2 * y - 1) + rng.normal(0, 0.25, len(y)), 0, 1)
        frames.append(pd.DataFrame({
            "sample_id": [f"c{i}" for i in range(len(y))], "subject": subjects, "unit": subjects,
            "protocol": "group-cv", "fold": "cv_0", "model": model, "feature_set": fs,
            "y_true": y, "y_score": score, "y_pred": (score >= 0.5).astype(int)}))
    return pd.concat(frames, ignore_index=True)


def fake_evaluation(protocol=Protocol.GROUP_CV, rows=ROWS, subjects_per_class=5) -> Evaluation:
    predictions = fake_predictions(rows, subjects_per_class=subjects_per_class).assign(protocol=protocol.value)
    weights = {fs: ("random" if "resnet50" in fs else "none") for _, fs in rows}
    results = summarise(predictions, {fs: 80 for fs in weights}, weights, unit_name="subjects", n_boot=100, seed=0)
    heads = predictions[predictions["feature_set"].str.startswith("head_")]
    return Evaluation(
        protocol=protocol, n_folds=5, unit_name="subjects", results=results, predictions=predictions,
        feature_sets=COUNTS,
        class_counts=pd.DataFrame([{"fold": "cv_0", "part": "test", "ALL_cells": 20, "HEM_cells": 20,
                                    "ALL_subjects": 5, "HEM_subjects": 5}]),
        paired=paired_table(predictions, unit_name="subjects", n_boot=100, seed=0),
        chosen=pd.DataFrame({"fold": ["cv_0"], "model": ["svm"], "feature_set": ["handcrafted"], "inner_score": [0.9]}),
        calibration=calibration_table(predictions, n_boot=100, seed=0),
        keras=keras_table(heads.assign(out_hem=1 - heads["y_score"], out_all=heads["y_score"])),
        notes={"folds": "3 selection folds, 3 tuning folds"},
    )


def test_report_files_and_their_content(tmp_path):
    evaluation = fake_evaluation()
    files = write_report(tmp_path, evaluation=evaluation, config=Config(), info=INFO)
    assert [f.name for f in files] == ["confusion_matrices.png", "roc_curves.png", "reliability.png", "report.md",
                                       "report.html"]
    for png in files[:3]:
        image = cv2.imread(str(png))
        assert image is not None and image.shape[0] > 200 and image.std() > 10  # drawn, not blank

    md = (tmp_path / "report.md").read_text()
    assert "Run stamp: started 2024-05-01T10:00:00+00:00; command: leukoscope compare --config demo" in md
    assert f"config digest {config_digest(Config())}" in md
    assert "Protocol: group-cv (5 folds, seed 0)" in md and "no subject has cells on both sides" in md
    assert re.search(r"Selection-corrected balanced accuracy: 0\.\d{3} \[0\.\d{3}, [01]\.\d{3}\] \(95 % interval "
                     r"resampling subjects\)", md)
    assert "chosen per fold: cv_0: svm on handcrafted" in md
    assert ("Majority-class baseline (every test cell called its training part's commoner class): balanced "
            "accuracy 0.500") in md
    assert "Paired with the headline on the same cells: statistically indistinguishable: " in md
    assert "best" not in md.lower()
    assert "| ResNet50 | 0.7591 / 0.7585 / 0.7636 |" in md and "VGG16" not in md  # only the heads that ran
    assert "Keras' element-wise counting" in md and "sigmoid heads trained on frozen backbones" in md
    assert "> Warning: rows with weights 'random'" in md  # untrained CNNs are labelled so
    assert "Synthetic data" not in md
    assert "| handcrafted | none | 44 | 40 | 1 | 2 | 3 | 0 |" in md
    assert "(confusion_matrices.png)" in md and "(reliability.png)" in md

    page = (tmp_path / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 3
    assert all(base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n" for data in images)
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing to fetch: opens from disk
    assert page.count('<tr class="highlight">') == 1 and '<div class="scroll"><table>' in page


def test_warnings_for_demo_data_image_level_splits_and_few_subjects(tmp_path):
    evaluation = fake_evaluation(Protocol.STRATIFIED_CV, rows=[("nested", "selected"), ("svm", "handcrafted")],
                                 subjects_per_class=2)
    config = Config().with_overrides({"data.demo": True})
    warning = "Warning: the test cells come from 2 ALL subjects and 2 HEM subjects."
    write_report(tmp_path, evaluation=Evaluation(**{**evaluation.__dict__, "warning": warning}), config=config,
                 info={})
    md = (tmp_path / "report.md").read_text()
    assert "> Synthetic data: these cells were drawn by leukoscope's demo generator" in md
    assert "> Warning: image-level splits can leak" in md and f"> {warning}" in md
    assert "weights 'random'" not in md and "Run stamp: started not recorded; command: not recorded" in md


def test_results_in_fixed_order_with_intervals_on_a_second_line_and_the_headline_shaded():
    evaluation = fake_evaluation()
    table, highlight = results_table(evaluation)
    assert list(zip(table["model"], table["feature set"])) == ROWS  # not ranked by score
    assert highlight == (0,) and table["role"].iloc[0] == "headline (selection-corrected)"
    assert (table["role"].iloc[2:6] == "not selection-corrected").all()
    assert re.fullmatch(r"0\.\d{3}\n\[0\.\d{3}, [01]\.\d{3}\]", table["balanced accuracy"].iloc[2])
    assert table["balanced accuracy"].iloc[1] == "0.500\nno spread in the bootstrap"  # the constant baseline
    assert table["subject accuracy"].iloc[2].endswith("(10)")


def test_no_headline_says_why_and_ranks_nothing():
    evaluation = fake_evaluation(rows=ROWS[1:])
    evaluation = Evaluation(**{**evaluation.__dict__, "paired": pd.DataFrame(), "chosen": pd.DataFrame(),
                               "notes": {"nested": "not run: compare.nested = false"}})
    captions = {"confusion_matrices.png": "", "roc_curves.png": ""}
    text = " ".join(b.text for b in build_blocks(evaluation=evaluation, config=Config(), info={}, captions=captions))
    assert "No selection-corrected headline (not run: compare.nested = false)" in text
    assert "Paired with the headline" not in text and "best" not in text.lower()


def test_glossary_explains_every_column_shown():
    evaluation = fake_evaluation()
    captions = {"confusion_matrices.png": "", "roc_curves.png": "", "reliability.png": ""}
    blocks = build_blocks(evaluation=evaluation, config=Config(), info={}, captions=captions)
    glossary = blocks[-1].table
    shown = {c for b in blocks[:-1] if b.kind == "table" for c in b.table.columns}
    assert shown <= set(glossary["column"]) and (glossary["meaning"] != "").all()
    assert set(glossary["column"]) <= set(GLOSSARY)


def test_stamp_is_the_only_line_that_differs_between_runs(tmp_path):
    evaluation = fake_evaluation()
    texts = []
    for k, info in enumerate([INFO, {"started": "2030-01-01", "argv": ["leukoscope", "compare", "--out", "/x"]}]):
        write_report(tmp_path / str(k), evaluation=evaluation, config=Config(), info=info)
        texts.append([(tmp_path / str(k) / name).read_text() for name in ("report.md", "report.html")])
    assert texts[0] != texts[1]
    assert [STAMP.sub("", t) for t in texts[0]] == [STAMP.sub("", t) for t in texts[1]]


def test_paper_table_counts_both_ways_and_names_each_difference():
    evaluation = fake_evaluation()
    row = paper_table(evaluation, Config().with_overrides({"heads.epochs": 5, "heads.input_size": 96})).iloc[0]
    assert row["paper model"] == "ResNet50"
    keras = evaluation.keras.iloc[0]
    assert row["ours, Keras element-wise"] == " / ".join(f"{keras[f'keras_{m}']:.3f}"
                                                         for m in ("accuracy", "precision", "recall"))
    for part in ("data: auto data, 40 test cells", "split: group-cv (paper: not stated)",
                 "weights: random (paper: ImageNet)", "input: 96 px", "epochs: up to 5 (paper: up to 15)"):
        assert part in row["differs in"]


def test_confusion_matrices_share_one_colour_scale_and_name_random_weights():
    evaluation = fake_evaluation()
    image, caption = confusion_grid(evaluation.results, evaluation.predictions)
    assert image.shape[0] > 200 and "one colour scale for all panels (white to dark blue: 0 to 20 cells)" in caption
    assert row_label(evaluation.results.iloc[4]) == "svm / cnn_resnet50\n(random weights)"
    small, caption = confusion_grid(evaluation.results, evaluation.predictions, max_panels=3)
    assert "the first 3 rows of the results table (4 more in results.csv)" in caption
    assert small.shape[1] < image.shape[1]  # 3 panels in a row, not 5


def test_the_report_says_when_the_cells_were_cut_out_of_fields():
    from leukoscope.pipeline.report import fields_origin

    assert fields_origin(Config()) == ""
    text = fields_origin(Config().with_overrides({"data.dataset": "allidb1", "fields.red_cell_diameter": 60}))
    assert "cut out of whole smear fields" in text and "red-cell diameter 60 pixels" in text
    assert "subject is the field it came from" in text
    captions = {"confusion_matrices.png": "", "roc_curves.png": "", "reliability.png": ""}
    blocks = build_blocks(evaluation=fake_evaluation(), config=Config().with_overrides({"data.dataset": "allidb1"}),
                          info={}, captions=captions)
    assert any(b.text.startswith("The cells were cut out of whole smear fields") for b in blocks)
