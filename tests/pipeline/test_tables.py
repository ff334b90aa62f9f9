"""CSV and Parquet tables read back identical, with their data dictionary, written atomically."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from leukoscope.features.subjects import (
    feature_columns,
    subject_dictionary,
    subject_table,
)
from leukoscope.features.univariate import univariate_dictionary, univariate_table
from leukoscope.pipeline import tables
from leukoscope.pipeline.tables import (
    dictionary_path,
    read_dictionary,
    read_table,
    write_table,
)
from tests.features.cell_tables import PLANTED, demo_like_cells


def mixed_types() -> pd.DataFrame:
    """Every dtype the statistics tables use, with the values CSV readers like to mangle."""
    return pd.DataFrame({
        "subject": ["1", "NA", "", "H10"],  # digits, 'NA' and empty stay text
        "n_cells": np.array([3, 0, 12, 7], dtype=np.int64),
        "value": [0.1, np.nan, 1e-300, -2.5e17 / 3],  # shortest exact repr, NaN
        "passed": [True, False, True, True],
    })


@pytest.mark.parametrize("format", ["csv", "parquet"])
def test_tables_read_back_identical(tmp_path, format):
    frame = mixed_types()
    path = write_table(frame, tmp_path / "t", format=format)
    assert path == tmp_path / f"t.{format}"
    pd.testing.assert_frame_equal(read_table(path), frame, check_exact=True)


@pytest.mark.parametrize("format", ["csv", "parquet"])
def test_statistics_tables_read_back_identical(tmp_path, format):
    cells = demo_like_cells(subjects=3, cells=4)
    subjects = subject_table(cells)
    univariate = univariate_table(cells, [PLANTED], n_boot=20)
    for name, frame, dictionary in (
        ("subjects", subjects, subject_dictionary(feature_columns(cells))),
        ("univariate", univariate, univariate_dictionary()),
    ):
        path = write_table(frame, tmp_path / name, format=format, dictionary=dictionary)
        pd.testing.assert_frame_equal(read_table(path), frame, check_exact=True)
        back = read_dictionary(path)
        assert back["name"].tolist() == list(frame.columns)
        assert back["description"].tolist() == dictionary["description"].tolist()
        assert back["dtype"].tolist() == [str(t) for t in frame.dtypes]


def test_parquet_holds_the_dictionary_in_its_metadata_and_csv_beside_it(tmp_path):
    frame = mixed_types()
    dictionary = pd.DataFrame({"name": frame.columns, "description": ["who", "how many", "what", "ok?"],
                               "unit": ["", "cells", "px", ""]})
    parquet = write_table(frame, tmp_path / "t.csv", format="parquet", dictionary=dictionary)
    stored = json.loads(pq.read_schema(parquet).metadata[tables.DICTIONARY_KEY])
    assert stored[2] == {"name": "value", "description": "what", "unit": "px", "dtype": "float64"}
    assert not dictionary_path(parquet).exists()
    csv = write_table(frame, tmp_path / "t", format="csv", dictionary=dictionary)
    assert dictionary_path(csv) == tmp_path / "t.columns.csv"
    assert pd.read_csv(dictionary_path(csv))["unit"].fillna("").tolist() == ["", "cells", "px", ""]


def test_a_dictionary_that_does_not_match_is_refused(tmp_path):
    frame = mixed_types()
    wrong = pd.DataFrame({"name": ["subject", "n_cells", "value", "extra"]})
    mismatch = r"columns without an entry \['passed'\], entries without a column \['extra'\]"
    with pytest.raises(ValueError, match=mismatch):
        write_table(frame, tmp_path / "t", dictionary=wrong)
    with pytest.raises(ValueError, match="a data dictionary needs a 'name' column"):
        write_table(frame, tmp_path / "t", dictionary=pd.DataFrame({"column": frame.columns}))
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_the_previous_table(tmp_path, monkeypatch):
    path = write_table(mixed_types(), tmp_path / "t", format="parquet")
    before = path.read_bytes()

    def broken(self, table):
        raise OSError("disk full")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", broken)
    with pytest.raises(OSError, match="disk full"):
        write_table(mixed_types().head(1), tmp_path / "t", format="parquet")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]  # no temporary file left


def test_a_csv_without_its_dictionary_is_read_with_inference(tmp_path):
    (tmp_path / "plain.csv").write_text("a,b\n1,x\n2,y\n")
    assert read_dictionary(tmp_path / "plain.csv") is None
    assert read_table(tmp_path / "plain.csv")["a"].tolist() == [1, 2]


def features_csv(path, rows: int = 50, seed: int = 0) -> pd.DataFrame:
    """A features CSV as the features stages write it (text ids, digit-only subjects, NaN, extremes)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "sample_id": [f"{k:03d}" for k in range(rows)],
        "subject": np.where(np.arange(rows) % 3 == 0, "", "7"),
        "label": np.where(np.arange(rows) % 2 == 0, "ALL", "NA"),
        "split": "",
        "morph_area_nucleus": rng.normal(size=rows) * 10.0 ** rng.integers(-300, 300, rows),
        "intensity_mean_cell_gray": np.where(np.arange(rows) % 7 == 0, np.nan, rng.normal(size=rows)),
        "qc_flag": np.where(np.arange(rows) % 7 == 0, "intensity:cell:empty", ""),
    })
    frame.loc[1, "morph_area_nucleus"] = np.inf
    frame.to_csv(path, index=False, float_format=None, lineterminator="\n")
    return frame


def test_read_features_keeps_ids_as_text_and_values_exact(tmp_path):
    frame = features_csv(tmp_path / "handcrafted.csv")
    back = tables.read_features(tmp_path / "handcrafted.csv")
    pd.testing.assert_frame_equal(back, frame, check_exact=True, check_dtype=False)
    assert back["sample_id"].iloc[0] == "000" and back["label"].iloc[1] == "NA" and back["subject"].iloc[0] == ""


def test_csv_to_parquet_streams_blocks_into_a_typed_copy(tmp_path):
    csv = tmp_path / "handcrafted.csv"
    features_csv(csv, rows=400)
    dictionary = pd.DataFrame({"name": pd.read_csv(csv, nrows=0).columns, "description": "d", "unit": ""})
    parquet = tables.csv_to_parquet(csv, dictionary=dictionary, block_bytes=4096)
    assert parquet == tmp_path / "handcrafted.parquet"
    assert pq.ParquetFile(parquet).metadata.num_row_groups > 3  # one per block: never the whole CSV at once
    back = pd.read_parquet(parquet)
    pd.testing.assert_frame_equal(back, tables.read_features(csv), check_exact=True)
    assert [str(t) for t in back.dtypes] == ["str"] * 4 + ["float64"] * 2 + ["str"]
    described = read_dictionary(parquet)
    assert described["dtype"].tolist() == [str(t) for t in back.dtypes]
    assert described["description"].tolist() == ["d"] * 7


def test_csv_to_parquet_float32_and_header_only(tmp_path):
    values = np.random.default_rng(1).normal(size=(20, 3)).astype(np.float32)
    csv = tmp_path / "cnn_vgg16.csv"
    with open(csv, "w") as handle:
        handle.write("sample_id,weights,cnn_vgg16_0000,cnn_vgg16_0001,cnn_vgg16_0002\n")
        for k, row in enumerate(values):
            handle.write(f"{k},random," + ",".join(f"{v:.9g}" for v in row) + "\n")
    back = pd.read_parquet(tables.csv_to_parquet(csv, float_type=pa.float32()))
    assert (back.dtypes.iloc[2:] == np.float32).all()
    np.testing.assert_array_equal(back.iloc[:, 2:].to_numpy(), values)  # %.9g digits give the float32 back
    empty = tmp_path / "empty.csv"
    empty.write_text("sample_id,x\n")
    assert pd.read_parquet(tables.csv_to_parquet(empty)).columns.tolist() == ["sample_id", "x"]
