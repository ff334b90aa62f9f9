"""C-NMC-style cut-outs: the cell on black, centred, scaled down only when it does not fit."""

from __future__ import annotations

import numpy as np
import pytest

from leukoscope.segmentation.cell import BLACK_LEVEL, CYTOPLASM, NUCLEUS, segment_cell
from leukoscope.segmentation.cutout import cut_out
from leukoscope.segmentation.fields import Detection, detect_white_cells
from tests.segmentation.drawn_fields import RED_CELL, SCATTERED_RED, WhiteCell, draw_field


def _detection(box: tuple[int, int, int, int]) -> Detection:
    x0, y0, x1, y1 = box
    labels = np.full((y1 - y0, x1 - x0), CYTOPLASM, np.uint8)
    labels[0, 0] = 0  # one corner pixel outside the cell
    labels[1:-1, 1:-1] = NUCLEUS
    return Detection(box=box, labels=labels, touches_edge=False)


def test_a_small_cell_keeps_its_pixels_and_scale_centred_on_black():
    field = np.random.default_rng(0).integers(20, 256, (60, 80, 3)).astype(np.uint8)
    detection = _detection((10, 20, 15, 27))  # 5 wide, 7 high
    cell, labels = cut_out(field, detection, size=11)
    assert cell.shape == (11, 11, 3) and labels.shape == (11, 11)
    # (11 - 7) // 2 = 2 rows and (11 - 5) // 2 = 3 columns of black before the box
    np.testing.assert_array_equal(labels[2:9, 3:8], detection.labels)
    inside = detection.labels > 0
    np.testing.assert_array_equal(cell[2:9, 3:8][inside], field[20:27, 10:15][inside])
    assert not cell[labels == 0].any()
    assert np.count_nonzero(labels) == detection.area


def test_a_cell_larger_than_the_square_is_scaled_down_to_fit_keeping_its_aspect():
    field = np.full((100, 100, 3), 150, np.uint8)
    detection = _detection((0, 10, 80, 50))  # 80 wide, 40 high
    cell, labels = cut_out(field, detection, size=20)
    rows, cols = np.nonzero(labels)
    assert (cols.min(), cols.max(), rows.min(), rows.max()) == (0, 19, 5, 14)  # 20 x 10, centred
    assert set(np.unique(cell[labels > 0])) == {150}


def test_cell_pixels_that_would_read_as_black_are_raised_just_above_it():
    field = np.zeros((10, 10, 3), np.uint8)
    cell, labels = cut_out(field, _detection((2, 2, 8, 8)), size=10)
    assert set(np.unique(cell[labels > 0])) == {BLACK_LEVEL + 1}


def test_the_black_surround_segmentation_recovers_the_cut_out_mask():
    field = draw_field(white=(WhiteCell(150, 110, 40),), red=SCATTERED_RED + ((185, 110),))
    [detection] = detect_white_cells(field, red_cell_diameter=RED_CELL)
    cell, labels = cut_out(field, detection)
    assert cell.shape == (450, 450, 3)
    result = segment_cell(cell, background="black")
    np.testing.assert_array_equal(result.labels > 0, labels > 0)


def test_bad_sizes_and_foreign_boxes_are_refused():
    field = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(ValueError, match="positive"):
        cut_out(field, _detection((0, 0, 4, 4)), size=0)
    with pytest.raises(ValueError, match="field it was detected in"):
        cut_out(field, _detection((5, 5, 15, 15)))
