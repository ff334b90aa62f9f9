"""The field step on generated ALL-IDB1 and Pascal-VOC trees: cut-outs, labels, overlays, scores,
the cache, and segment -> features -> compare on the cut-outs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leukoscope.pipeline import cli
from leukoscope.pipeline.choices import DatasetKind
from leukoscope.pipeline.config import Config
from leukoscope.pipeline.datasets import DatasetError, load_dataset
from leukoscope.pipeline.fields_run import CELL_COLUMNS, detect_field_kind, resolve_field_dataset
from leukoscope.pipeline.fields_sources import read_xyc
from leukoscope.pipeline.imageio import read_image
from leukoscope.pipeline.rundir import RunDir
from leukoscope.segmentation.cell import BLACK_LEVEL
from tests.pipeline.cnmc_tree import make_cnmc_tree
from tests.pipeline.field_trees import ALLIDB1_FIELDS, ALLIDB1_LABELS, RED, make_allidb1_tree, make_voc_tree, write_jpeg
from tests.segmentation.drawn_fields import RED_CELL, draw_field

SIZE = 160  # cut-out side: the drawn cells (boxes up to 77 pixels) keep their scale
SMALL = {"fields.red_cell_diameter": RED_CELL, "fields.cutout_size": SIZE, "run.quiet": True}


def _config(data: Path, out: Path, **more: object) -> Config:
    return Config().with_overrides({"data.path": str(data), "run.out": str(out), **SMALL, **more})


def _cells(run: RunDir) -> pd.DataFrame:
    return pd.read_csv(run.cells_table, dtype={"label": str, "sample_id": str}, keep_default_na=False)


@pytest.fixture(scope="module")
def allidb1(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunDir]:
    """The ALL-IDB1 tree (read as ``auto``) and the run directory of ``leukoscope fields`` on it."""
    base = tmp_path_factory.mktemp("allidb1")
    data = make_allidb1_tree(base)
    return data, cli.run_command("fields", _config(base, base / "run"))


def _cut_out_window(cut_out: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The part of a cut-out where ``cut_out`` put the field's box (centred, odd pixel right/below)."""
    width, height = box[2] - box[0], box[3] - box[1]
    top, left = (SIZE - height) // 2, (SIZE - width) // 2
    return cut_out[top : top + height, left : left + width]


def test_every_blast_centroid_is_in_the_cut_out_of_its_cell(allidb1):
    data, run = allidb1
    cells = _cells(run)
    assert list(cells.columns) == CELL_COLUMNS
    for field_id, (_, drawn_blasts) in ALLIDB1_FIELDS.items():
        field = read_image(data / "im" / f"{field_id}.jpg")
        rows = cells[cells["field_id"] == field_id]
        assert rows["label"].tolist() == ALLIDB1_LABELS[field_id]
        for x, y in read_xyc(data / "xyc" / f"{field_id}.xyc"):
            inside = rows[(rows["x0"] <= x) & (x < rows["x1"]) & (rows["y0"] <= y) & (y < rows["y1"])]
            assert len(inside) == 1, (field_id, x, y)
            row = inside.iloc[0]
            assert (row["label"], row["blasts"]) == ("ALL", 1)
            box = (row["x0"], row["y0"], row["x1"], row["y1"])
            window = _cut_out_window(read_image(row["path"]), box)
            cell = np.any(window > BLACK_LEVEL, axis=2)
            assert cell[int(round(y)) - box[1], int(round(x)) - box[0]]  # the centroid's pixel is cell, not black
            np.testing.assert_array_equal(window[cell], field[box[1] : box[3], box[0] : box[2]][cell])
            assert cell.sum() == row["area"]
        assert rows["blasts"].sum() == len(drawn_blasts)


def test_the_manifest_lists_the_cut_outs_with_their_field_as_subject(allidb1):
    data, run = allidb1
    cells, manifest = _cells(run), run.read_manifest()
    assert manifest["sample_id"].tolist() == cells["sample_id"].tolist() == [
        f"{field}__{k}" for field, labels in ALLIDB1_LABELS.items() for k in range(1, len(labels) + 1)]
    assert (manifest["subject"] == cells["field_id"]).all() and (manifest["split"] == "").all()
    assert manifest["path"].map(lambda p: Path(p).is_absolute() and Path(p).is_file()).all()
    assert manifest["label"].value_counts().to_dict() == {"HEM": 9, "ALL": 5, "": 3}
    info = json.loads(run.info_path.read_text())
    assert info["dataset"]["kind"] == "allidb1"  # found by its im/ and xyc/ folders
    assert info["config"]["data"]["dataset"] == "allidb1" and info["config"]["segmentation"]["background"] == "black"
    assert info["fields"]["cells"] == 17 and info["fields"]["edge_cells"] == 1
    assert (info["stages"], info["status"]) == (["fields"], "ok")
    rejected = run.read_rejected().set_index("path")
    assert rejected.loc[str(data / "im" / "notes.jpg"), "stage"] == "load"
    assert rejected.loc[str(data / "im" / "Im009_0.jpg"), "stage"] == "fields"
    assert "truncated" in rejected.loc[str(data / "im" / "Im009_0.jpg"), "reason"]
    assert "20x4100 pixels" in rejected.loc[str(data / "im" / "Im010_0.jpg"), "reason"]


def test_a_cell_cut_by_the_field_edge_is_kept_and_flagged(allidb1):
    _, run = allidb1
    cells = _cells(run)
    edge = cells[cells["touches_edge"]]
    assert edge["sample_id"].tolist() == ["Im008_0__1"] and edge["y0"].tolist() == [0]
    assert edge["label"].tolist() == ["HEM"]


def test_overlays_montage_fields_table_and_centroid_scores(allidb1):
    _, run = allidb1
    assert sorted(p.stem for p in run.field_overlays_dir.glob("*.png")) == sorted(ALLIDB1_FIELDS)
    assert read_image(run.field_overlay_path("Im001_1")).shape == (240, 320, 3)
    assert read_image(run.fields_montage).shape == (3 * 128, 8 * 128, 3)  # 17 cut-outs, 8 per row
    fields = pd.read_csv(run.fields_table)
    assert fields["cells"].tolist() == [len(labels) for labels in ALLIDB1_LABELS.values()]
    assert fields["boxes"].isna().all()  # ALL-IDB1 has centroids, no boxes
    scores = json.loads(run.detection_scores.read_text())
    assert scores == {"centroids": {"fields": 8, "blasts": 5, "found": 5, "recall": 1.0, "fields_with_misses": []}}


def test_a_rerun_reads_no_field_and_a_changed_setting_removes_stale_cut_outs(allidb1, tmp_path):
    data, first = allidb1
    run = RunDir(tmp_path / "run")
    shutil.copytree(first.path, run.path, dirs_exist_ok=True)
    before = {p.name: p.read_bytes() for p in run.cutouts_dir.iterdir()}
    run.cutout_path("Im002_1__2").unlink()
    cli.run_command("fields", _config(data.parent, run.path))  # the folder the first run read
    info = json.loads(run.info_path.read_text())["fields"]
    assert (info["computed"], info["from_cache"]) == (1, 7)  # only the field whose cut-out was gone
    assert {p.name: p.read_bytes() for p in run.cutouts_dir.iterdir()} == before
    # 1.5 red-cell discs of nucleus: the blasts' (2.1 discs) stay, the other cells (1.0) go
    cli.run_command("fields", _config(data.parent, run.path, **{"fields.min_nucleus_area": 1.5}))
    cells = _cells(run)
    assert cells["label"].tolist() == ["ALL"] * 5
    assert sorted(p.stem for p in run.cutouts_dir.iterdir()) == sorted(cells["sample_id"])


@pytest.mark.slow
def test_compare_runs_on_the_cut_outs_with_folds_grouped_by_field(allidb1, tmp_path):
    data, _ = allidb1
    config = _config(data, tmp_path / "run", **{"compare.feature_sets": "handcrafted", "compare.models": "logreg",
                                                "compare.folds": 2, "compare.inner_folds": 2,
                                                "compare.bootstrap": 50})
    run = cli.run_command("compare", config)
    predictions = pd.read_csv(run.compare_file("predictions.csv"), dtype=str, keep_default_na=False)
    assert predictions["sample_id"].nunique() == 14  # the labelled cut-outs: 5 ALL, 9 HEM (each in every row)
    assert predictions["subject"].tolist() == predictions["sample_id"].str.split("__").str[0].tolist()
    assert (predictions.groupby("subject")["fold"].nunique() == 1).all()  # a field lies in one fold
    assert predictions.groupby("fold")["subject"].nunique().min() >= 2
    report = run.compare_file("report.md").read_text()
    assert "(dataset allidb1)" in report and "The cells were cut out of whole smear fields" in report
    assert "subject is the field it came from" in report
    stages = json.loads(run.info_path.read_text())["stages"]
    assert stages == ["fields", "segmentation", "handcrafted", "statistics", "compare"]


def test_voc_boxes_are_scored_at_both_ious(tmp_path, capsys):
    data = make_voc_tree(tmp_path)
    argv = ["fields", "--data", str(data), "--out", str(tmp_path / "run"), "--red-cell-diameter", str(RED_CELL),
            "--boxes", "--quiet"]
    assert cli.main(argv) == 0
    assert "IoU >= 0.5: recall 1.000 (2/2), precision 0.667 (2/3), F1 0.800" in capsys.readouterr().out
    run = RunDir(tmp_path / "run")
    scores = json.loads(run.detection_scores.read_text())["boxes"]
    # a: two drawn cells, both boxed; b: one drawn cell, none boxed (a false positive)
    for iou in ("0.5", "0.3"):
        assert scores[f"iou_{iou}"] == {"matched": 2, "detected": 3, "annotated": 2, "recall": 1.0,
                                        "precision": 0.666667, "f1": 0.8}
    assert scores["fields"] == 2 and scores["fields_with_errors"] == ["b"]
    assert (_cells(run)["label"] == "").all()
    assert cli.main(argv[:-2] + ["--quiet"]) == 0  # without --boxes: no scores, and none left from before
    assert not run.detection_scores.exists()


def test_a_plain_folder_of_fields_gives_unlabelled_cut_outs(tmp_path):
    data = make_voc_tree(tmp_path) / "JPEGImages"
    run = cli.run_command("fields", _config(data, tmp_path / "run"))  # auto: a folder read by `fields`
    assert json.loads(run.info_path.read_text())["dataset"]["kind"] == "fields"
    assert _cells(run)["sample_id"].tolist() == ["a__1", "a__2", "b__1"]
    assert not run.detection_scores.exists()


def test_field_datasets_say_what_is_wrong(tmp_path, capsys):
    voc, cells = make_voc_tree(tmp_path), make_cnmc_tree(tmp_path / "cnmc")
    assert cli.main(["fields", "--data", str(cells), "--dataset", "cnmc", "--out", str(tmp_path / "r")]) == 2
    assert "use --dataset allidb1, voc or fields" in capsys.readouterr().err
    argv = ["fields", "--data", str(cells), "--dataset", "allidb1", "--boxes", "--out", str(tmp_path / "r")]
    assert cli.main(argv) == 2
    assert "only a voc dataset has" in capsys.readouterr().err
    with pytest.raises(DatasetError, match="holds whole smear fields, not cells; run `leukoscope fields`"):
        load_dataset(voc, "voc")
    empty = tmp_path / "red-only"
    write_jpeg(empty / "f.jpg", draw_field(red=RED))
    assert cli.main(["fields", "--data", str(empty), "--out", str(tmp_path / "r2"), "--quiet"]) == 2
    assert "no white cell found in the 1 readable fields" in capsys.readouterr().err
    assert json.loads((tmp_path / "r2" / "run.json").read_text())["status"] == "failed"


def test_field_layouts_are_found_by_their_folders(tmp_path):
    allidb1, voc = make_allidb1_tree(tmp_path), make_voc_tree(tmp_path)
    cells = make_cnmc_tree(tmp_path / "cnmc")
    assert detect_field_kind(allidb1) is DatasetKind.ALLIDB1 and detect_field_kind(voc) is DatasetKind.VOC
    assert detect_field_kind(tmp_path) is DatasetKind.ALLIDB1  # one folder down
    assert detect_field_kind(cells) is None and detect_field_kind(tmp_path / "nothing") is None
    config = Config().with_overrides({"data.path": str(cells)})
    assert resolve_field_dataset(config, "segment") is config  # single cells: unchanged
    fields = resolve_field_dataset(config.with_overrides({"segmentation.background": "smear"}), "fields")
    assert (fields.data.dataset, fields.segmentation.background.value) == (DatasetKind.FIELDS, "smear")
