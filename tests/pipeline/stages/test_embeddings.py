"""The embeddings stage: CSV layout, weights recorded, rejects, cache, masking, batching."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from leukoscope.pipeline import embedding_stream
from leukoscope.pipeline.atomic import write_png
from leukoscope.pipeline.config import Config
from leukoscope.pipeline.layout import sha256_file
from leukoscope.pipeline.rundir import RunDir
from leukoscope.pipeline.stages.embeddings import STAGE, run_embeddings
from leukoscope.pipeline.tables import read_dictionary, read_features

from ..cell_table import cell_image, write_cells

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _config(**overrides) -> Config:
    return Config().with_overrides({
        "features.backbones": "vgg16", "features.weights": "random", "features.input_size": 32,
        "features.mask_background": False, "features.batch_size": 4, "run.quiet": True, **overrides,
    })


def _read(run: RunDir, name: str = "vgg16") -> pd.DataFrame:
    return pd.read_csv(run.path / "features" / f"cnn_{name}.csv", dtype={"subject": str})


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """One embeddings run over 6 cells and a corrupt file (batch size 4: one padded batch)."""
    root = tmp_path_factory.mktemp("cells")
    samples = write_cells(root, cells=1).head(6)
    broken = root / "broken.png"
    broken.write_bytes(b"not an image")
    samples = pd.concat([samples, pd.DataFrame([{"sample_id": "broken", "path": str(broken), "label": "ALL",
                                                 "subject": "9", "split": "", "sha256": sha256_file(broken)}])],
                        ignore_index=True)
    run = RunDir(tmp_path_factory.mktemp("run"))
    run_embeddings(_config(), run, samples)
    return run, samples


def test_csv_layout_and_weights_recorded(first_run):
    run, samples = first_run
    table = _read(run)
    columns = [f"cnn_vgg16_{i:04d}" for i in range(512)]
    assert list(table.columns) == ["sample_id", "subject", "label", "split", "weights", *columns]
    assert list(table["sample_id"]) == list(samples["sample_id"][:6])
    assert (table["weights"] == "random").all()
    assert np.isfinite(table[columns].to_numpy()).all()
    info = json.loads(run.info_path.read_text())
    assert info["weights"]["vgg16"]["label"] == "random"
    assert info["features"]["cnn_vgg16"]["input_size"] == 32
    counts = info["features"]["cnn_vgg16"]
    assert (counts["samples"], counts["computed"], counts["from_cache"]) == (6, 6, 0)


def test_unreadable_image_is_rejected_not_fatal(first_run):
    run, samples = first_run
    rejected = run.read_rejected()
    assert list(rejected["path"]) == [samples["path"].iloc[6]]
    assert rejected["stage"].iloc[0] == "embeddings"
    assert "not a readable image" in rejected["reason"].iloc[0]


def test_rerun_reads_the_cache_without_building_the_network(first_run, monkeypatch):
    run, samples = first_run
    before = _read(run)

    def refuse(job):
        raise AssertionError("the network was built although every sample is cached")

    monkeypatch.setattr(embedding_stream, "build_network", refuse)
    run_embeddings(_config(), run, samples.head(6))
    pd.testing.assert_frame_equal(_read(run), before)
    counts = json.loads(run.info_path.read_text())["features"]["cnn_vgg16"]
    assert (counts["samples"], counts["computed"], counts["from_cache"]) == (6, 0, 6)


def test_format_parquet_adds_a_float32_copy_and_csv_removes_it(first_run, monkeypatch):
    run, samples = first_run
    monkeypatch.setattr(embedding_stream, "build_network", lambda job: pytest.fail("every sample is cached"))
    run_embeddings(_config(**{"features.format": "parquet"}), run, samples.head(6))
    csv, parquet = run.path / "features" / "cnn_vgg16.csv", run.path / "features" / "cnn_vgg16.parquet"
    copy = pd.read_parquet(parquet)
    assert (copy.dtypes.iloc[5:] == np.float32).all() and list(copy.columns) == list(_read(run).columns)
    from_csv = read_features(csv)  # float64 nearest to the 9 digits: the float32 the network computed, rounded
    columns = from_csv.columns[5:]
    pd.testing.assert_frame_equal(copy, from_csv.astype(dict.fromkeys(columns, np.float32)), check_exact=True)
    assert read_dictionary(parquet)["description"].iloc[-1].startswith("vgg16 embedding, dimension 511")
    assert STAGE.done(_config(**{"features.format": "parquet"}), run)
    run_embeddings(_config(), run, samples.head(6))
    assert not parquet.exists() and csv.exists()


def test_batch_size_does_not_change_the_embeddings(first_run, tmp_path):
    run, samples = first_run
    other = RunDir(tmp_path / "run")
    run_embeddings(_config(**{"features.batch_size": 6}), other, samples.head(6))
    columns = [c for c in _read(run).columns if c.startswith("cnn_")]
    np.testing.assert_allclose(_read(other)[columns], _read(run)[columns], rtol=1e-4, atol=1e-4)


def test_mask_background_ignores_what_lies_outside_the_cell(tmp_path):
    run = RunDir(tmp_path / "run")
    samples = write_cells(tmp_path / "cells", cells=1, run_path=run.path).head(2)
    image, labels = cell_image(0, blast=True)  # sample 0's cell, on a bright background
    noisy = np.where(labels[..., None] > 0, image, np.uint8(230))
    write_png(noisy, tmp_path / "cells" / "noisy.png")
    write_png(labels, run.path / "segmentation" / "masks" / "noisy.png")
    extra = [{"sample_id": "noisy", "path": str(tmp_path / "cells" / "noisy.png"), "label": "ALL",
              "subject": "1", "split": "fold_0", "sha256": sha256_file(tmp_path / "cells" / "noisy.png")},
             {"sample_id": "no_mask", "path": samples["path"].iloc[1], "label": "HEM", "subject": "H9",
              "split": "", "sha256": samples["sha256"].iloc[1]}]
    samples = pd.concat([samples, pd.DataFrame(extra)], ignore_index=True)
    run_embeddings(_config(**{"features.mask_background": True}), run, samples)
    table = _read(run).set_index("sample_id")
    columns = [c for c in table.columns if c.startswith("cnn_")]
    np.testing.assert_allclose(table.loc["noisy", columns], table.loc["1_0", columns], rtol=1e-5)
    assert "no_mask" not in table.index
    rejected = run.read_rejected()
    assert rejected["reason"].str.contains("no segmentation mask 'no_mask.png'").any()


def test_weights_folder_is_recorded_in_every_row(first_run, tmp_path):
    from leukoscope.features.backbones import get_backbone

    run, samples = first_run
    spec = get_backbone("vgg16")
    spec.build(input_size=32).save(tmp_path / spec.weights_file)
    other = RunDir(tmp_path / "run")
    run_embeddings(_config(**{"features.weights": str(tmp_path)}), other, samples.head(2))
    label = f"file:{(tmp_path / spec.weights_file).resolve()}"
    assert (_read(other)["weights"] == label).all()
    assert json.loads(other.info_path.read_text())["weights"]["vgg16"]["label"] == label
