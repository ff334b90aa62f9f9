"""The self-contained HTML gallery: order, content, filters' data, no network resources."""

from __future__ import annotations

import base64
import re

import cv2
import numpy as np
import pandas as pd
import pytest

from leukoscope.segmentation.gallery import gallery_html, thumbnail_png


def _rows() -> pd.DataFrame:
    return pd.DataFrame({
        "sample_id": ["a", "b", "c", "d<x>"],
        "label": ["ALL", "HEM", "", "ALL"],
        "nucleus_cell_ratio": [0.5, float("nan"), 0.97, 0.25],
        "qc_flag": ["", "no_nucleus", "nc_ratio_extreme", "multiple_cells;debris_removed"],
        "qc_score": [0.0, 1.0, 0.5, 0.75],
    })


def test_cards_are_sorted_by_score_and_escaped():
    page = gallery_html(_rows(), {"a": np.full((40, 20, 3), 200, np.uint8)})
    order = re.findall(r'<div class="id">([^<]*)</div>', page)
    assert order == ["b", "d&lt;x&gt;", "c", "a"]
    assert 'data-flags="multiple_cells;debris_removed"' in page and 'data-label="(unlabelled)"' in page
    assert "N/C -" in page and "N/C 0.97" in page and "QC 0.75" in page
    assert page.count("no image") == 3


def test_thumbnails_are_inline_pngs_and_nothing_is_fetched():
    thumbnails = {"a": np.full((300, 150, 3), 90, np.uint8), "b": thumbnail_png(np.zeros((8, 8, 3), np.uint8))}
    page = gallery_html(_rows(), thumbnails)
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == 2 and all(s.startswith("data:image/png;base64,") for s in sources)
    decoded = [cv2.imdecode(np.frombuffer(base64.b64decode(source.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
               for source in sources]
    assert sorted(image.shape for image in decoded) == [(8, 8, 3), (128, 64, 3)]  # scaled to fit 128
    assert not re.search(r"(https?:|//[a-z]|<link|@import)", page)


def test_filters_list_labels_and_flags():
    page = gallery_html(_rows(), {})
    for value in ["ALL", "HEM", "(unlabelled)", "(any flag)", "(no flag)", "multiple_cells", "no_nucleus"]:
        assert f'<option value="{value}">' in page
    assert '<span id="count">4</span> of 4 cells' in page
    assert "No segmented cells" in gallery_html(_rows().iloc[:0], {})


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="qc_score"):
        gallery_html(_rows().drop(columns="qc_score"), {})
