"""The QC outputs of the segment stage: the gallery as a browser shows it, the flag counts."""

import numpy as np
import pandas as pd
import pytest

from leukoscope.pipeline.segmentation_qc import gallery_rows, qc_summary
from leukoscope.segmentation.gallery import gallery_html

from .test_report_html import CHROMIUM, widths


def _table(n: int = 30) -> pd.DataFrame:
    flags = ["multiple_cells" if i % 7 == 0 else "" for i in range(n)]
    return pd.DataFrame({"sample_id": [f"UID_{i}_1_1_all" for i in range(n)], "label": ["ALL", "HEM"] * (n // 2),
                         "nucleus_cell_ratio": np.linspace(0.3, 0.9, n), "qc_flag": flags,
                         "qc_score": [1.0 if f else 0.0 for f in flags]})


def test_flag_counts_and_gallery_rows():
    table = _table()
    summary = qc_summary(table)
    # flagged: cells 0, 7, 14, 21, 28 (even ones ALL, odd ones HEM)
    assert summary.set_index(["qc_flag", "label"])["cells"].to_dict() == {
        ("", "ALL"): 12, ("", "HEM"): 13, ("multiple_cells", "ALL"): 3, ("multiple_cells", "HEM"): 2}
    shown = gallery_rows(table, limit=8)
    assert len(shown) == 8 and (shown["qc_flag"].iloc[:5] == "multiple_cells").all()  # every flagged cell first


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not found (Debian: apt-get install chromium)")
def test_gallery_renders_in_chromium_at_1280_px(tmp_path):
    table = _table()
    thumbnails = {s: np.full((40, 30, 3), 120, np.uint8) for s in table["sample_id"]}
    page = gallery_html(table, thumbnails)
    scroll, client = widths(page, 1280, tmp_path)
    assert client == 1280 and scroll <= client
    assert all(s in page for s in table["sample_id"]) and "http" not in page.replace("http-equiv", "")
