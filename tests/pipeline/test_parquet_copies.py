"""Parquet copies of the features CSVs: dictionaries, written under parquet, removed under csv."""

from __future__ import annotations

import pandas as pd
import pytest

from leukoscope.features.registry import data_dictionary
from leukoscope.pipeline.layout import META_COLUMNS, QC_COLUMN, WEIGHTS_COLUMN
from leukoscope.pipeline.parquet_copies import (
    TEXT_DESCRIPTIONS,
    embeddings_dictionary,
    handcrafted_dictionary,
    sync_copy,
    written,
)
from leukoscope.pipeline.tables import read_dictionary, read_features


def test_every_text_column_is_described():
    assert set(TEXT_DESCRIPTIONS) == {*META_COLUMNS, WEIGHTS_COLUMN, QC_COLUMN}


def test_handcrafted_dictionary_carries_the_feature_dictionary_over():
    columns = data_dictionary(["morphology"])
    described = handcrafted_dictionary(columns)
    assert described["name"].tolist() == [*META_COLUMNS, *columns["name"], QC_COLUMN]
    features = described.iloc[len(META_COLUMNS):-1].reset_index(drop=True)
    pd.testing.assert_frame_equal(features, columns)


def test_embeddings_dictionary_names_the_backbone_and_dimension():
    described = embeddings_dictionary("vgg16", ["cnn_vgg16_0000", "cnn_vgg16_0001"])
    assert described["name"].tolist() == [*META_COLUMNS, WEIGHTS_COLUMN, "cnn_vgg16_0000", "cnn_vgg16_0001"]
    assert described["description"].iloc[-1].startswith("vgg16 embedding, dimension 1:")


def test_sync_copy_writes_under_parquet_and_removes_a_stale_copy_under_csv(tmp_path):
    csv = tmp_path / "handcrafted.csv"
    frame = pd.DataFrame({"sample_id": ["1", "2"], "subject": ["", "7"], "label": ["ALL", "HEM"], "split": "",
                          "morph_area_nucleus": [1.5, float("nan")], "qc_flag": ["", "morphology:nucleus:empty"]})
    frame.to_csv(csv, index=False)
    dictionary = pd.DataFrame({"name": frame.columns, "description": "d"})
    assert not written([csv], "parquet") and written([csv], "csv")
    copy = sync_copy(csv, "parquet", dictionary=dictionary)
    assert copy == tmp_path / "handcrafted.parquet" and written([csv], "parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(copy), read_features(csv), check_exact=True)
    assert read_dictionary(copy)["name"].tolist() == list(frame.columns)
    assert sync_copy(csv, "csv", dictionary=dictionary) is None
    assert not copy.exists() and csv.exists()


def test_sync_copy_refuses_a_dictionary_that_does_not_match(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("sample_id,x\n1,2\n")
    with pytest.raises(ValueError, match=r"columns without an entry \['x'\]"):
        sync_copy(csv, "parquet", dictionary=pd.DataFrame({"name": ["sample_id"]}))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]
