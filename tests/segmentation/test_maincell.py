"""The main cell of a cut-out: smear surround, fragments, red cells and neighbours cut away."""

from __future__ import annotations

import numpy as np
import pytest

from leukoscope.segmentation.cell import segment_cell
from leukoscope.segmentation.metrics import label_scores

from .drawn_cells import MAIN_CELL, SCENE_COLOURS, on_black, scene

TRUTH = scene(*MAIN_CELL)
NECK = (77, 112, 83, 122)  # a 6-pixel-wide bar from the cell's right edge


@pytest.mark.parametrize(("name", "paint", "flag"), [
    ("smear ring", scene((80, 80, 46, 4), *MAIN_CELL), ""),
    ("fragment on a neck", scene(*MAIN_CELL, (80, 136, 14, 6), bars=((*NECK, 6),)), "debris_removed"),
    ("red cell on a neck", scene(*MAIN_CELL, (80, 134, 16, 5), bars=((*NECK, 5),)), "debris_removed"),
    ("white cell on a neck", scene(*MAIN_CELL, (80, 136, 20, 1), (80, 138, 9, 2), bars=((*NECK, 1),)),
     "multiple_cells"),
    ("separate fragment", scene(*MAIN_CELL, (20, 20, 10, 6)), "debris_removed"),
])
def test_only_the_main_cell_is_kept(name, paint, flag):
    image = on_black(paint, SCENE_COLOURS)
    result = segment_cell(image)
    scores = label_scores(result.labels, TRUTH)
    assert scores["dice_cell"] > 0.99 and scores["dice_nucleus"] > 0.99, name
    assert result.qc_flag == flag
    cut_away = np.count_nonzero(paint) - np.count_nonzero(TRUTH)
    assert abs(result.excluded_area - cut_away) <= 0.1 * cut_away  # a neck is cut part way along
    assert result.measurements()["excluded_area"] == result.excluded_area


def test_the_cell_holding_the_central_nucleus_wins_over_debris_at_the_centre():
    truth = scene((80, 36, 30, 1), (80, 38, 14, 2))
    paint = scene((80, 36, 30, 1), (80, 38, 14, 2), (80, 80, 10, 6))  # debris round the image centre
    result = segment_cell(on_black(paint, SCENE_COLOURS))
    assert label_scores(result.labels, truth)["dice_cell"] > 0.99
    assert result.qc_flag == "debris_removed"


def test_a_clean_cut_out_is_untouched():
    image = on_black(TRUTH, SCENE_COLOURS)
    result = segment_cell(image)
    np.testing.assert_array_equal(result.labels > 0, image.any(axis=2))
    assert result.excluded_area == 0 and result.qc_flag == "" and result.qc_score == 0.0
