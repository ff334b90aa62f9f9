"""The subject table by hand: medians, IQRs, counts, qc rules, unknown subjects, its dictionary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leukoscope.features.subjects import (
    QcRule,
    feature_columns,
    subject_dictionary,
    subject_ids,
    subject_table,
)

NAN = float("nan")


@pytest.fixture()
def cells() -> pd.DataFrame:
    """Subject A (ALL): 4 cells, one flagged with its nucleus area undefined; subject H1 (HEM): 2 cells."""
    return pd.DataFrame({
        "sample_id": ["a1", "a2", "a3", "a4", "h1", "h2"],
        "subject": ["A", "A", "A", "A", "H1", "H1"],
        "label": ["ALL"] * 4 + ["HEM"] * 2,
        "split": "fold_0",
        "morph_area_nucleus": [10.0, 20.0, 30.0, NAN, 5.0, 7.0],
        "morph_area_cell": [100.0, 110.0, 130.0, 170.0, 50.0, 60.0],
        "qc_flag": ["", "", "", "morphology:nucleus:empty", "", ""],
    })


def test_medians_iqrs_and_counts_by_hand(cells):
    table = subject_table(cells)
    assert list(table.columns) == ["subject", "label", "n_cells", "n_cells_flagged",
                                   "morph_area_nucleus__median", "morph_area_nucleus__iqr",
                                   "morph_area_cell__median", "morph_area_cell__iqr"]
    a, h = table.iloc[0], table.iloc[1]
    assert (a["subject"], a["label"], a["n_cells"], a["n_cells_flagged"]) == ("A", "ALL", 4, 1)
    # nucleus area of A: 10, 20, 30 (the NaN skipped): median 20, quartiles 15 and 25
    assert (a["morph_area_nucleus__median"], a["morph_area_nucleus__iqr"]) == (20.0, 10.0)
    # cell area of A: 100, 110, 130, 170: median 120, quartiles 107.5 and 140
    assert (a["morph_area_cell__median"], a["morph_area_cell__iqr"]) == (120.0, 32.5)
    assert (h["n_cells"], h["morph_area_nucleus__median"], h["morph_area_nucleus__iqr"]) == (2, 6.0, 1.0)
    assert table["n_cells"].dtype == np.int64 and table["morph_area_cell__iqr"].dtype == np.float64


def test_drop_flagged_leaves_the_flagged_cells_out(cells):
    table = subject_table(cells, qc=QcRule.DROP_FLAGGED)
    a = table.iloc[0]
    assert (a["n_cells"], a["n_cells_flagged"]) == (3, 1)
    assert (a["morph_area_cell__median"], a["morph_area_cell__iqr"]) == (110.0, 15.0)  # 100, 110, 130
    assert table.equals(subject_table(cells, qc="drop_flagged"))


def test_a_subject_with_every_cell_dropped_keeps_its_row_with_nan():
    cells = pd.DataFrame({"sample_id": ["a", "b"], "subject": ["S1", "S2"], "label": ["ALL", "HEM"],
                          "x_value": [1.0, 2.0], "qc_flag": ["x:cell:flat", ""]})
    table = subject_table(cells, qc="drop_flagged")
    assert table["n_cells"].tolist() == [0, 1]
    assert np.isnan(table.loc[0, "x_value__median"]) and table.loc[1, "x_value__median"] == 2.0


def test_cells_without_a_subject_are_subjects_of_their_own():
    cells = pd.DataFrame({"sample_id": ["Im001_1", "Im002_0", "Im003_0"], "subject": ["", np.nan, "P7"],
                          "label": ["ALL", "HEM", "HEM"], "x_value": [1.0, 2.0, 3.0]})
    assert subject_ids(cells).tolist() == ["Im001_1", "Im002_0", "P7"]
    table = subject_table(cells.drop(columns="subject").assign(subject=""))
    assert table["subject"].tolist() == ["Im001_1", "Im002_0", "Im003_0"]
    assert (table["n_cells"] == 1).all() and (table["x_value__iqr"] == 0).all()


def test_feature_columns_are_the_numeric_non_metadata_columns(cells):
    assert feature_columns(cells) == ["morph_area_nucleus", "morph_area_cell"]
    assert list(subject_table(cells, ["morph_area_cell"]).columns[-2:]) == ["morph_area_cell__median",
                                                                             "morph_area_cell__iqr"]


def test_invariant_to_the_order_of_the_cells(cells):
    shuffled = cells.iloc[[5, 2, 0, 4, 3, 1]]
    table = subject_table(shuffled).sort_values("subject").reset_index(drop=True)
    pd.testing.assert_frame_equal(table, subject_table(cells))


def test_a_subject_with_two_diagnoses_is_refused(cells):
    cells.loc[1, "label"] = "HEM"
    with pytest.raises(ValueError, match=r"1 subjects have cells with different labels: 'A' \(ALL/HEM\)"):
        subject_table(cells)


def test_missing_or_text_features_are_refused(cells):
    with pytest.raises(ValueError, match=r"feature columns \['morph_lobes_nucleus'\] are not in the cell table"):
        subject_table(cells, ["morph_lobes_nucleus"])
    with pytest.raises(ValueError, match=r"feature columns \['split'\] are not numeric"):
        subject_table(cells, ["split"])


def test_unnamed_cells_need_a_sample_id():
    with pytest.raises(ValueError, match="2 cells have no subject and the table has no 'sample_id'"):
        subject_ids(pd.DataFrame({"subject": ["", ""], "x": [1.0, 2.0]}))


def test_dictionary_describes_every_column_and_states_the_qc_rule(cells):
    columns = pd.DataFrame({"name": ["morph_area_nucleus", "morph_area_cell"],
                            "description": ["number of pixels of the nucleus", "number of pixels of the cell"],
                            "unit": ["px^2", "px^2"]})
    dictionary = subject_dictionary(feature_columns(cells), qc="drop_flagged", columns=columns)
    assert dictionary["name"].tolist() == list(subject_table(cells).columns)
    row = dictionary.set_index("name").loc["morph_area_nucleus__iqr"]
    assert "number of pixels of the nucleus" in row["description"] and row["unit"] == "px^2"
    assert "qc rule 'drop_flagged'" in dictionary.set_index("name").loc["n_cells", "description"]
    assert subject_dictionary(["x"]).set_index("name").loc["x__median", "unit"] == ""
