"""compare.qc: the flagged cells per class, and dropping them from the comparison."""

import pandas as pd

from leukoscope.pipeline.config import Config
from leukoscope.pipeline.layout import RunLayout
from leukoscope.pipeline.report_qc import apply_qc, flagged_counts


def _samples() -> pd.DataFrame:
    return pd.DataFrame({"sample_id": ["a", "b", "c", "d", "e"], "label": ["ALL", "ALL", "ALL", "HEM", "HEM"]})


def test_flagged_cells_are_counted_per_class():
    flags = pd.Series({"a": "multiple_cells", "b": "", "c": "ring_nucleus;nc_ratio_extreme", "d": "", "e": ""})
    counts = flagged_counts(_samples(), flags)
    assert counts.values.tolist() == [["ALL", 3, 2, "66.7%"], ["HEM", 2, 0, "0.0%"]]


def test_keep_uses_every_cell_and_drop_flagged_leaves_the_flagged_out(tmp_path):
    layout = RunLayout(tmp_path)
    layout.segmentation_table.parent.mkdir(parents=True)
    pd.DataFrame({"sample_id": list("abcde"), "qc_flag": ["multiple_cells", "", "", "", "ring_nucleus"]}).to_csv(
        layout.segmentation_table, index=False)
    kept, blocks, info = apply_qc(Config(), layout, _samples())
    assert list(kept["sample_id"]) == list("abcde") and info == {"qc": "keep", "dropped": 0,
                                                                   "flagged": {"ALL": 1, "HEM": 1}}
    assert blocks[0].text == "Segmentation QC" and "every segmented cell is used" in blocks[1].text
    kept, blocks, info = apply_qc(Config().with_overrides({"compare.qc": "drop_flagged"}), layout, _samples())
    assert list(kept["sample_id"]) == list("bcd") and info["dropped"] == 2
    assert "the 2 flagged cells are left out of every fold" in blocks[1].text


def test_without_a_segmentation_nothing_changes(tmp_path):
    kept, blocks, info = apply_qc(Config(), RunLayout(tmp_path), _samples())
    assert len(kept) == 5 and blocks == [] and info == {}


def test_with_the_refiner_the_cells_it_skipped_are_counted_per_class(tmp_path):
    flags = pd.Series({"a": "refiner_skipped", "b": "multiple_cells;refiner_skipped", "c": "", "d": "ring_nucleus",
                       "e": ""})
    counts = flagged_counts(_samples(), flags, refiner=True)
    assert counts.values.tolist() == [["ALL", 3, 2, "66.7%", "2 (66.7%)"], ["HEM", 2, 1, "50.0%", "0 (0.0%)"]]
    layout = RunLayout(tmp_path)
    layout.segmentation_table.parent.mkdir(parents=True)
    flags.rename("qc_flag").rename_axis("sample_id").reset_index().to_csv(layout.segmentation_table, index=False)
    _, blocks, _ = apply_qc(Config().with_overrides({"segmentation.refiner": "unet"}), layout, _samples())
    assert "refiner skipped" in blocks[2].table.columns and "U-Net refiner" in blocks[1].text
    _, blocks, _ = apply_qc(Config(), layout, _samples())
    assert "refiner skipped" not in blocks[2].table.columns and "refiner" not in blocks[1].text
