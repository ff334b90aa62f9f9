"""The segment stage on a tiny hand-made C-NMC-like folder with expert masks and bad files."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from leukoscope.pipeline.config import Config
from leukoscope.pipeline.groundtruth import ExpertMaskError
from leukoscope.pipeline.rundir import RunDir
from leukoscope.pipeline.segmentation_qc import pick_montage
from leukoscope.pipeline.stages import segment
from leukoscope.pipeline.stages.segment import SCORE_COLUMNS, run_segment
from leukoscope.segmentation.cell import segment_cell
from leukoscope.segmentation.overlay import CELL_COLOUR, cell_window

from ...segmentation.drawn_cells import black_cell

ZHENG_LEVELS = np.array([0, 128, 255], np.uint8)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Six drawn cells (3 ALL, 3 HEM), a blank and a broken image; masks: one missing, one wrong size."""
    root = tmp_path_factory.mktemp("cells")
    images, masks = root / "images", root / "masks"
    images.mkdir()
    masks.mkdir()
    rows = []
    for index in range(6):
        label = "ALL" if index < 3 else "HEM"
        image, labels = black_cell(64 + 8 * (index % 2), seed=index)
        path = images / f"cell{index}.bmp"
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if index == 4:  # no expert mask
            pass
        elif index == 5:  # a mask of the wrong size
            Image.fromarray(ZHENG_LEVELS[labels[:, :-4]]).save(masks / f"cell{index}.png")
        else:
            Image.fromarray(ZHENG_LEVELS[labels]).save(masks / f"cell{index}.png")
        rows.append({"sample_id": f"cell{index}", "path": str(path), "label": label,
                     "subject": f"s{index % 2}", "split": "fold_0"})
    cv2.imwrite(str(images / "black.bmp"), np.zeros((64, 64, 3), np.uint8))
    (images / "broken.bmp").write_bytes(b"BM not really")
    rows.append({"sample_id": "black", "path": str(images / "black.bmp"), "label": "HEM", "subject": "s1", "split": ""})
    rows.append({"sample_id": "broken", "path": str(images / "broken.bmp"), "label": "ALL", "subject": "s0",
                 "split": ""})
    samples = pd.DataFrame(rows).assign(sha256="")
    return samples, masks


def _run(tmp_path, samples, masks="", jobs=1) -> RunDir:
    config = Config().with_overrides({"data.masks": str(masks), "run.jobs": jobs, "run.quiet": True})
    run = RunDir(tmp_path)
    run_segment(config, run, samples)
    return run


def test_outputs_scores_and_bad_input(tmp_path, dataset, capsys):
    samples, masks = dataset
    run = _run(tmp_path, samples, masks)
    folder = run.path / "segmentation"
    table = pd.read_csv(folder / "segmentation.csv")
    assert list(table["sample_id"]) == [f"cell{i}" for i in range(6)]
    assert list(table.columns[:4]) == ["sample_id", "subject", "label", "split"]
    assert set(SCORE_COLUMNS) <= set(table.columns)
    for sample_id in table["sample_id"]:
        labels = cv2.imread(str(folder / "masks" / f"{sample_id}.png"), cv2.IMREAD_UNCHANGED)
        assert labels.dtype == np.uint8 and set(np.unique(labels)) == {0, 1, 2}
        overlay = cv2.imread(str(folder / "overlays" / f"{sample_id}.png"))
        rows, cols = cell_window(labels)
        window = labels[rows, cols].shape  # the window round the cell, and the legend below it
        assert overlay.shape[1] == window[1] and window[0] < overlay.shape[0] <= window[0] + 16
        assert np.all(overlay == CELL_COLOUR[::-1], axis=2).any()  # cyan outline (BGR on disk)
    assert not (folder / "masks" / "black.png").exists()
    for name in ("montage.png", "montage_qc.png", "gallery.html", "qc_summary.csv"):
        assert (folder / name).stat().st_size > 0
    assert "cell0" in (folder / "gallery.html").read_text()
    assert cv2.imread(str(folder / "montage.png")).shape == (128, 6 * 128, 3)

    status = dict(zip(table["sample_id"], table["mask_status"]))
    assert status == {"cell0": "ok", "cell1": "ok", "cell2": "ok", "cell3": "ok",
                      "cell4": "missing", "cell5": "unusable"}
    scored = table[table["mask_status"] == "ok"]
    assert (scored["dice_cell"] == 1.0).all() and (scored["dice_nucleus"] > 0.97).all()
    assert table.loc[table["mask_status"] != "ok", SCORE_COLUMNS[1:]].isna().all().all()  # never a number

    rejected = run.read_rejected()
    reasons = dict(zip(rejected["path"].str.rsplit("/", n=1).str[-1], rejected["reason"]))
    assert set(rejected["stage"]) == {"segmentation"}
    assert "is blank" in reasons["black.bmp"]
    assert "broken.bmp" in reasons["broken.bmp"]
    assert "mask 'cell5.png' is 72x68 but its image is 72x72" in reasons["cell5.png"]

    summary = pd.read_csv(folder / "summary.csv")
    assert list(summary["class"]) == ["ALL", "HEM", "all"]
    total = summary.iloc[-1]
    assert (total["samples"], total["scored"], total["missing_mask"], total["unusable_mask"]) == (6, 4, 1, 1)
    assert total["dice_cell_mean"] == 1.0
    printed = capsys.readouterr().out
    assert "dice_nucleus_mean" in printed and "1 of 6 images had no expert mask" in printed
    info = run.read_info()["segmentation"]
    assert (info["segmented"], info["rejected"], info["scored"]) == (6, 2, 4)


@pytest.mark.slow
def test_two_jobs_give_identical_files(tmp_path, dataset):
    samples, masks = dataset
    one = _run(tmp_path / "one", samples, masks, jobs=1).path / "segmentation"
    two = _run(tmp_path / "two", samples, masks, jobs=2).path / "segmentation"
    files = sorted(p.relative_to(one) for p in one.rglob("*.*"))
    assert files == sorted(p.relative_to(two) for p in two.rglob("*.*"))
    for name in files:
        assert (one / name).read_bytes() == (two / name).read_bytes(), name


def test_rerun_segments_only_samples_without_a_whole_cache_entry(tmp_path, dataset, monkeypatch):
    samples, masks = dataset
    folder = _run(tmp_path, samples, masks).path / "segmentation"
    before = {p.name: p.read_bytes() for p in folder.glob("*.csv")}
    mask = folder / "masks" / "cell1.png"
    mask.write_bytes(mask.read_bytes() + b"changed")  # no longer the file its entry was stored with
    (folder / "overlays" / "cell2.png").unlink()
    calls = []
    monkeypatch.setattr(segment, "segment_cell", lambda image, **kw: calls.append(1) or segment_cell(image, **kw))
    run = _run(tmp_path, samples, masks)
    assert len(calls) == 3  # cell1 and cell2, and the blank image (rejected, so never cached)
    assert {p.name: p.read_bytes() for p in folder.glob("*.csv")} == before
    info = run.read_info()["segmentation"]
    assert (info["computed"], info["from_cache"]) == (2, 4)


def test_without_masks_there_are_no_scores(tmp_path, dataset):
    samples, _ = dataset
    run = _run(tmp_path, samples.iloc[:2])
    table = pd.read_csv(run.path / "segmentation" / "segmentation.csv")
    assert "dice_cell" not in table.columns and len(table) == 2
    assert not (run.path / "segmentation" / "summary.csv").exists()


def test_masks_folder_matching_nothing_stops_with_a_message(tmp_path, dataset):
    samples, _ = dataset
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExpertMaskError, match="no image has an expert mask in"):
        _run(tmp_path / "run", samples, tmp_path / "empty")


def test_pick_montage_balances_classes():
    labels = ["ALL"] * 100 + ["HEM"] * 10
    picked = pick_montage(labels, limit=64)
    assert len(picked) == 64
    assert sum(labels[i] == "HEM" for i in picked) == 10
    assert picked[0] == 0 and picked[53] == 99  # ALL spread over its whole range
    assert pick_montage(["HEM", "ALL", "ALL"], limit=2) == [1, 0]
    assert pick_montage([], limit=64) == []
    assert len(pick_montage(["", "ALL", "HEM"] * 50, limit=64)) == 64


def test_zheng_layout_masks_beside_images(tmp_path):
    """Image 001.bmp and its mask 001.png in one folder; the folder loader lists both."""
    image, labels = black_cell(64, seed=9)
    cv2.imwrite(str(tmp_path / "001.bmp"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    Image.fromarray(ZHENG_LEVELS[labels]).save(tmp_path / "001.png")
    samples = pd.DataFrame({
        "sample_id": ["001_bmp", "001_png"], "path": [str(tmp_path / "001.bmp"), str(tmp_path / "001.png")],
        "label": "", "subject": "", "split": "", "sha256": "",
    })
    run = _run(tmp_path / "run", samples, tmp_path)
    table = pd.read_csv(run.path / "segmentation" / "segmentation.csv")
    assert list(table["sample_id"]) == ["001_bmp"] and table.loc[0, "mask_status"] == "ok"
    (reason,) = run.read_rejected()["reason"]
    assert reason.startswith("'001.png' is the expert mask of '001.bmp' (--masks), not a cell image")


def test_ambiguous_masks_are_named_and_the_image_still_counts(tmp_path):
    image, labels = black_cell(64, seed=2)
    cv2.imwrite(str(tmp_path / "a.bmp"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    for folder in ("m1", "m2"):
        (tmp_path / "masks" / folder).mkdir(parents=True)
        Image.fromarray(ZHENG_LEVELS[labels]).save(tmp_path / "masks" / folder / "a.png")
    samples = pd.DataFrame({"sample_id": ["a"], "path": [str(tmp_path / "a.bmp")], "label": "ALL",
                            "subject": "", "split": "", "sha256": ""})
    run = _run(tmp_path / "run", samples, tmp_path / "masks")
    table = pd.read_csv(run.path / "segmentation" / "segmentation.csv")
    assert table.loc[0, "mask_status"] == "unusable"
    rejected = run.read_rejected()
    assert sorted(Path(p).parent.name for p in rejected["path"]) == ["m1", "m2"]
    assert str(tmp_path / "a.bmp") not in set(rejected["path"])  # the image is not reported as failed
    assert rejected["reason"].str.contains("2 possible masks for 'a.bmp'").all()


def test_a_rejected_image_fixed_since_is_no_longer_listed(tmp_path, dataset):
    samples, _ = dataset
    broken = tmp_path / "broken.bmp"
    broken.write_bytes(b"BM not really")
    samples = pd.concat([samples[samples["sample_id"] == "cell0"], pd.DataFrame([{
        "sample_id": "fixed", "path": str(broken), "label": "ALL", "subject": "s0", "split": "", "sha256": ""}])])
    run = _run(tmp_path / "run", samples)
    assert list(run.read_rejected()["path"]) == [str(broken)]
    shutil.copy(samples["path"].iloc[0], broken)  # the user replaces the broken file
    run = _run(tmp_path / "run", samples)
    assert run.read_rejected().empty
    assert list(run.kept(samples)["sample_id"]) == ["cell0", "fixed"]
