"""The handcrafted stage (through the features command's stages) on hand-made masks: CSV contract, cache,
resume, backends, bad input."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leukoscope.features.registry import compute_features, data_dictionary, feature_names
from leukoscope.features.surround import SURROUND_COLUMNS, surround_features
from leukoscope.pipeline import graph
from leukoscope.pipeline.atomic import write_png
from leukoscope.pipeline.config import Config
from leukoscope.pipeline.graph import run_stages
from leukoscope.pipeline.imageio import MaskReadError, read_image, read_label_mask
from leukoscope.pipeline.layout import sha256_file
from leukoscope.pipeline.rundir import RunDir
from leukoscope.pipeline.stages import handcrafted as stage

from ..cell_table import SUBJECTS, write_cells

SIZE = 64
N_CELLS = len(SUBJECTS)  # one cell per subject


def _segmented_run(folder: Path) -> tuple[RunDir, pd.DataFrame]:
    """Cells and a run directory as the segmentation stage leaves it (masks, segmentation.csv)."""
    run = RunDir(folder / "run")
    return run, write_cells(folder / "data", cells=1, size=SIZE, run_path=run.path)


def _mask(run: RunDir, sample_id: str) -> Path:
    return run.path / "segmentation" / "masks" / f"{sample_id}.png"


def _csv(run: RunDir) -> Path:
    return run.path / "features" / "handcrafted.csv"


def _config(run: RunDir, **overrides) -> Config:
    return Config().with_overrides({"run.out": str(run.path), "run.quiet": True, **overrides})


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> RunDir:
    run, samples = _segmented_run(tmp_path_factory.mktemp("reference"))
    run_stages("features", _config(run), run, samples)
    return run


@pytest.fixture(scope="module")
def reference_csv(reference_run) -> bytes:
    return _csv(reference_run).read_bytes()


def test_csv_contract(tmp_path):
    run, samples = _segmented_run(tmp_path)
    run_stages("features", _config(run), run, samples)
    table = pd.read_csv(_csv(run))
    names = feature_names()
    assert list(table.columns) == ["sample_id", "subject", "label", "split", *names, "qc_flag"]
    assert list(table["sample_id"]) == list(samples["sample_id"])
    assert all(table[name].dtype == np.float64 for name in names)  # morph_area_* too: written as 123.0
    image = read_image(samples.path[0])
    labels = read_label_mask(_mask(run, samples.sample_id[0]), image_shape=image.shape[:2], image_name="x")
    expected = list(compute_features(image, labels).values.values())
    np.testing.assert_array_equal(table.loc[0, names].to_numpy(float), expected)  # bit for bit
    dictionary = pd.read_csv(run.path / "features" / "columns.csv", keep_default_na=False)
    pd.testing.assert_frame_equal(dictionary, data_dictionary())
    info = json.loads((run.path / "run.json").read_text())["features"]["handcrafted"]
    assert (info["samples"], info["computed"], info["from_cache"]) == (N_CELLS, N_CELLS, 0)
    assert info["haralick_levels"] == 64
    surround = pd.read_csv(run.path / "features" / "surround.csv")
    assert list(surround.columns) == ["sample_id", "subject", "label", "split", *SURROUND_COLUMNS]
    assert list(surround["sample_id"]) == list(samples["sample_id"])
    np.testing.assert_array_equal(surround.loc[0, list(SURROUND_COLUMNS)].to_numpy(float),
                                  list(surround_features(image, labels).values()))


def test_cells_measured_in_the_segmentation_workers_give_the_same_files(tmp_path, monkeypatch, reference_run):
    """Fusion: MeasureCell fills the cache while the cell is in memory; the stage only writes the CSVs."""
    run, samples = _segmented_run(tmp_path)
    measure = stage.MeasureCell(_config(run), run)
    for sample in samples.itertuples():
        image = read_image(sample.path)
        labels = read_label_mask(_mask(run, sample.sample_id), image_shape=image.shape[:2], image_name="x")
        measure(image, labels, sha256_file(sample.path), sha256_file(_mask(run, sample.sample_id)))
    monkeypatch.setattr(stage, "compute_features", lambda *a, **k: pytest.fail("measured twice"))
    run_stages("features", _config(run), run, samples)
    for name in ("handcrafted.csv", "surround.csv"):
        assert (run.path / "features" / name).read_bytes() == (reference_run.path / "features" / name).read_bytes()


def test_rows_stream_in_chunks_without_changing_the_csv(tmp_path, monkeypatch, reference_csv):
    run, samples = _segmented_run(tmp_path)
    monkeypatch.setattr(stage, "CHUNK_ROWS", 3)  # 8 rows: chunks of 3, 3 and 2
    run_stages("features", _config(run), run, samples)
    assert _csv(run).read_bytes() == reference_csv


def test_rerun_with_nothing_changed_does_no_feature_work(tmp_path, monkeypatch, reference_csv):
    run, samples = _segmented_run(tmp_path)
    run_stages("features", _config(run), run, samples)

    def forbidden(*args, **kwargs):
        raise AssertionError("features recomputed although nothing changed")

    monkeypatch.setattr(stage, "compute_features", forbidden)
    run_stages("features", _config(run), run, samples)
    assert _csv(run).read_bytes() == reference_csv
    # a changed setting is a new cache: everything is computed again
    monkeypatch.undo()
    run_stages("features", _config(run, **{"features.haralick_levels": 32}), run, samples)
    assert _csv(run).read_bytes() != reference_csv


_KILLER = """
import os, signal, sys
import pandas as pd
from leukoscope.pipeline.stages import handcrafted as stage
from leukoscope.pipeline.config import Config
from leukoscope.pipeline.graph import run_stages
from leukoscope.pipeline.rundir import RunDir
run, samples = RunDir(sys.argv[1]), pd.read_csv(sys.argv[2], dtype=str, keep_default_na=False)
real, calls = stage.compute_features, []
def dying(*args, **kwargs):
    calls.append(1)
    if len(calls) == int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)  # no clean-up, no exception handlers
    return real(*args, **kwargs)
stage.compute_features = dying
run_stages("features", Config().with_overrides({"run.out": sys.argv[1], "run.quiet": True}), run, samples)
"""


def test_killed_half_way_then_resumed_gives_the_clean_csv(tmp_path, monkeypatch, reference_csv):
    run, samples = _segmented_run(tmp_path)
    samples.to_csv(tmp_path / "samples.csv", index=False)
    done_before_kill = N_CELLS // 2
    process = subprocess.run([sys.executable, "-c", _KILLER, str(run.path), str(tmp_path / "samples.csv"),
                              str(done_before_kill + 1)], capture_output=True, text=True, timeout=120)
    assert process.returncode == -9, process.stderr
    assert not _csv(run).exists()
    calls = []
    real = stage.compute_features
    monkeypatch.setattr(stage, "compute_features", lambda *a, **k: calls.append(1) or real(*a, **k))
    run_stages("features", _config(run), run, samples)
    assert len(calls) == N_CELLS - done_before_kill  # only the unfinished samples
    assert _csv(run).read_bytes() == reference_csv
    assert not [p for p in run.path.rglob("*") if ".tmp-" in p.name]  # no half-written file left


@pytest.mark.slow
@pytest.mark.parametrize("options", [{"run.jobs": 2, "run.backend": "loky"},
                                     {"run.jobs": 2, "run.backend": "dask"}], ids=["loky-2", "dask-local"])
def test_same_csv_whatever_the_backend_and_job_count(tmp_path, reference_csv, options):
    run, samples = _segmented_run(tmp_path)
    run_stages("features", _config(run, **options), run, samples)
    assert _csv(run).read_bytes() == reference_csv


def test_unusable_samples_are_rejected_and_the_rest_go_on(tmp_path):
    run, samples = _segmented_run(tmp_path)
    ids, paths = list(samples["sample_id"]), list(samples["path"])
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    samples.loc[0, "path"] = str(empty)  # unreadable image
    write_png(np.zeros((SIZE, SIZE - 6), np.uint8), _mask(run, ids[1]))
    write_png(np.full((SIZE, SIZE), 7, np.uint8), _mask(run, ids[2]))
    _mask(run, ids[3]).unlink()
    _mask(run, ids[4]).unlink()
    run.reject([{"path": paths[4], "reason": "blank image"},  # no mask written
                {"path": paths[5], "reason": "expert mask unusable"}],  # but segmented
               stage="segmentation")
    graph.mark_done("segmentation", _config(run), run, samples)  # the damage above is the segmentation's output
    run_stages("features", _config(run), run, samples)
    assert list(pd.read_csv(_csv(run), dtype=str)["sample_id"]) == ids[5:]
    rejected = run.read_rejected()
    reasons = rejected[rejected["stage"] == "handcrafted"].set_index("path")["reason"]
    assert "is empty" in reasons[str(empty)]
    name = Path(paths[1]).name
    assert f"mask '{ids[1]}.png' is {SIZE}x{SIZE - 6} but its image '{name}' is {SIZE}x{SIZE}" in reasons[paths[1]]
    assert "label values [7]" in reasons[paths[2]]
    assert f"no segmentation mask '{ids[3]}.png'" in reasons[paths[3]]
    assert paths[4] not in reasons.index and paths[5] not in reasons.index


def test_empty_nucleus_is_nan_with_a_qc_flag_in_the_csv(tmp_path):
    run, samples = _segmented_run(tmp_path)
    mask = _mask(run, samples.sample_id[0])
    labels = read_label_mask(mask, image_shape=(SIZE, SIZE), image_name="x")
    write_png(np.where(labels == 2, 1, labels).astype(np.uint8), mask)
    run_stages("features", _config(run), run, samples)
    table = pd.read_csv(_csv(run), dtype={"qc_flag": str})
    flags = table["qc_flag"].fillna("")
    assert math.isnan(table.loc[0, "morph_nc_ratio"]) and "morphology:nucleus:empty" in flags[0]
    assert flags[1] == ""
    flagged = json.loads((run.path / "run.json").read_text())["features"]["handcrafted"]["flagged"]
    assert flagged == 1


def test_segments_first_when_the_run_has_no_segmentation(tmp_path, monkeypatch):
    run, samples = _segmented_run(tmp_path)
    run.segmentation_table.unlink()
    calls = []

    def fake_segment(config, given_run, given, consumers):
        calls.append((len(given), [type(c).__name__ for c in consumers]))
        given_run.segmentation_table.write_text("sample_id,qc_flag\n")

    fake = dataclasses.replace(graph.STAGES["segmentation"], run=fake_segment)
    monkeypatch.setitem(graph.STAGES, "segmentation", fake)
    run_stages("features", _config(run), run, samples)
    run_stages("features", _config(run), run, samples)
    # the second run finds segmentation.csv; the first handed the handcrafted per-cell work to the segmentation
    assert calls == [(N_CELLS, ["MeasureCell"])]


def _real_cells(folder: Path) -> tuple[RunDir, pd.DataFrame]:
    """Cells without masks: the features command segments them first (fused)."""
    run = RunDir(folder / "run")
    samples = write_cells(folder / "data", cells=2, size=SIZE)
    return run, samples


@pytest.fixture(scope="module")
def unfused_run(tmp_path_factory) -> RunDir:
    run, samples = _real_cells(tmp_path_factory.mktemp("unfused"))
    run_stages("segment", _config(run), run, samples)
    run_stages("features", _config(run), run, samples)  # measures from the masks on disk
    return run


@pytest.mark.parametrize("limit", [1_000, 3])
def test_fused_rows_come_back_from_the_workers_and_give_the_same_files(tmp_path, monkeypatch, unfused_run, limit):
    """Segmentation and features in one command: the rows the workers measured are written without
    reading the cache back (beyond MeasureCell.limit rows they are read from it), same bytes."""
    run, samples = _real_cells(tmp_path)
    monkeypatch.setattr(stage.MeasureCell, "limit", limit)
    reads = []
    monkeypatch.setattr(stage, "_cached", lambda *a: reads.append(a[1]) or None)  # a miss: measured again
    run_stages("features", _config(run), run, samples)
    assert len(reads) == max(0, len(samples) - limit)
    for name in ("handcrafted.csv", "surround.csv"):
        assert (run.path / "features" / name).read_bytes() == (unfused_run.path / "features" / name).read_bytes()
    info = json.loads((run.path / "run.json").read_text())["features"]["handcrafted"]
    assert (info["samples"], info["from_cache"]) == (len(samples), 0)


def test_workers_are_not_sent_the_rows_collected_so_far(tmp_path):
    import pickle

    run, _ = _segmented_run(tmp_path)
    measure = stage.MeasureCell(_config(run), run)
    measure.collect("a", ("0" * 64, stage._Outcome(np.zeros(3), np.zeros(15), "", "")))
    assert measure.rows and pickle.loads(pickle.dumps(measure)).rows == {}


def test_backbones_hand_over_to_the_embeddings_stage(tmp_path, monkeypatch):
    run, samples = _segmented_run(tmp_path)
    calls = []
    fake = dataclasses.replace(graph.STAGES["embeddings"], check=None,
                               run=lambda config, given_run, given, consumers: calls.append(config.features.backbones))
    monkeypatch.setitem(graph.STAGES, "embeddings", fake)
    run_stages("features", _config(run, **{"features.families": "none", "features.backbones": "vgg16"}), run, samples)
    assert [tuple(b.value for b in c) for c in calls] == [("vgg16",)]
    assert not _csv(run).exists()


def test_out_of_range_options_fail_before_any_work(tmp_path):
    run, samples = _segmented_run(tmp_path)
    with pytest.raises(ValueError, match="features.haralick_levels"):
        run_stages("features", _config(run, **{"features.haralick_levels": 300}), run, samples)
    assert not os.path.exists(run.path / "features" / "cache")


def test_read_label_mask_names_the_file_and_the_fix(tmp_path):
    write_png(np.full((4, 5, 3), 1, np.uint8), tmp_path / "rgb.png")
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(MaskReadError, match="mask 'rgb.png' must be one 8-bit channel"):
        read_label_mask(tmp_path / "rgb.png", image_shape=(4, 5), image_name="cell.bmp")
    with pytest.raises(MaskReadError, match="mask 'junk.png' cannot be read.*leukoscope segment"):
        read_label_mask(tmp_path / "junk.png", image_shape=(4, 5), image_name="cell.bmp")
