"""Streaming feature tables: the join of two tables in chunks equals the whole-table join."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leukoscope.pipeline.feature_tables import iter_joined, table_columns


def tables(tmp_path, n=50):
    ids = [f"s{i:03d}" for i in range(n)]
    meta = pd.DataFrame({"sample_id": ids, "subject": "a", "label": "ALL", "split": ""})
    hand = meta.assign(h0=np.arange(n, dtype=float), h1=np.arange(n) * 2.0, qc_flag="")
    hand.loc[3, "qc_flag"] = "odd"
    cnn = meta.assign(weights="random", c0=np.arange(n) * 10.0)
    hand = hand.drop(index=[5, 6, 30])  # rejected by the handcrafted stage only
    cnn = cnn.drop(index=[0, 7, 31, 49])  # by the embeddings stage only
    hand.to_csv(tmp_path / "h.csv", index=False)
    cnn.to_csv(tmp_path / "c.csv", index=False)
    return ids, hand, cnn


def test_header_columns(tmp_path):
    tables(tmp_path)
    assert table_columns(tmp_path / "h.csv") == ["h0", "h1"]
    assert table_columns(tmp_path / "c.csv") == ["c0"]


def test_chunked_join_equals_the_whole_join_in_sample_order(tmp_path):
    ids, hand, cnn = tables(tmp_path)
    order = {s: i for i, s in enumerate(ids)}
    expected = hand[["sample_id", "qc_flag", "h0", "h1"]].merge(cnn[["sample_id", "c0"]], on="sample_id")
    expected["qc_flag"] = expected["qc_flag"].fillna("")
    for chunk_rows in (1, 4, 7, 100):
        got = pd.concat(iter_joined([tmp_path / "h.csv", tmp_path / "c.csv"], [["h0", "h1"], ["c0"]], order,
                                    chunk_rows=chunk_rows), ignore_index=True)
        pd.testing.assert_frame_equal(got, expected.reset_index(drop=True), check_dtype=False)
    assert (got["c0"] == got["h0"] * 10).all()


def test_one_table_streams_alone(tmp_path):
    ids, hand, _ = tables(tmp_path)
    got = pd.concat(iter_joined([tmp_path / "h.csv"], [["h1"]], {s: i for i, s in enumerate(ids)}, chunk_rows=8))
    assert got["sample_id"].tolist() == hand["sample_id"].tolist()
    assert list(got.columns) == ["sample_id", "qc_flag", "h1"]
