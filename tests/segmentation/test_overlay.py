"""Contour overlays and the montage."""

from __future__ import annotations

import numpy as np
import pytest

from leukoscope.segmentation.overlay import (
    CELL_COLOUR,
    NUCLEUS_COLOUR,
    cell_window,
    contour_width,
    draw_overlay,
    montage,
    stretch_cell,
)


def _labels(size: int = 30) -> np.ndarray:
    labels = np.zeros((size, size), np.uint8)
    labels[5:25, 5:25] = 1
    labels[10:20, 10:20] = 2
    return labels


def test_outlines_lie_on_the_region_borders_in_two_colours():
    image = np.full((30, 30, 3), 100, np.uint8)
    out = draw_overlay(image, _labels())
    assert contour_width((30, 30)) == 1
    assert tuple(out[5, 12]) == CELL_COLOUR  # top edge of the cell
    assert tuple(out[10, 15]) == NUCLEUS_COLOUR  # top edge of the nucleus
    assert tuple(out[15, 15]) == (100, 100, 100)  # inside the nucleus: untouched
    assert tuple(out[2, 2]) == (100, 100, 100)  # background: untouched
    changed = np.any(out != image, axis=2)
    assert changed.sum() == 4 * 19 + 4 * 9  # one-pixel rings of 20x20 and 10x10 squares
    assert np.array_equal(image, np.full((30, 30, 3), 100, np.uint8))  # input not modified


def test_empty_labels_give_the_image_back():
    image = np.random.default_rng(0).integers(0, 256, (12, 12, 3)).astype(np.uint8)
    np.testing.assert_array_equal(draw_overlay(image, np.zeros((12, 12), np.uint8)), image)


def test_size_mismatch_is_refused():
    with pytest.raises(ValueError, match="must match"):
        draw_overlay(np.zeros((10, 10, 3), np.uint8), np.zeros((10, 12), np.uint8))


def test_cell_window_is_a_square_with_margin():
    rows, cols = cell_window(_labels(), margin=0.25)
    # cell 20x20 centred at 15: half side 20 * 0.75 = 15 -> rows 0..30
    assert (rows.start, rows.stop, cols.start, cols.stop) == (0, 30, 0, 30)
    assert cell_window(np.zeros((5, 5), np.uint8)) == (slice(None), slice(None))


def test_montage_grid_and_captions():
    tiles = [np.full((20, 10, 3), v, np.uint8) for v in (50, 100, 150)]
    sheet = montage(tiles, captions=["ALL", "HEM", ""], tile_size=16, columns=2)
    assert sheet.shape == (32, 32, 3)
    # second tile (8 wide after scaling 20x10 -> 16x8) is centred in the top-right square
    assert tuple(sheet[15, 16 + 4 + 3]) == (100, 100, 100)
    assert not sheet[16:, 16:].any()  # the fourth square is empty
    assert montage([], tile_size=8).shape == (8, 8, 3)
    with pytest.raises(ValueError, match="one per tile"):
        montage(tiles, captions=["x"])


def test_stretch_maps_the_cell_percentiles_to_the_full_range():
    image = np.zeros((30, 30, 3), np.uint8)
    labels = _labels()
    image[labels == 1] = (100, 110, 120)
    image[labels == 2] = (60, 70, 80)
    out = stretch_cell(image, labels)
    # one map for all channels: 60 -> 0 and 120 -> 255 (1st and 99th percentiles of all values),
    # v -> round((v - 60) * 255 / 60), halves to even: 70 -> 42.5 -> 42, 110 -> 212.5 -> 212
    assert tuple(out[15, 15]) == (0, 42, 85) and tuple(out[6, 6]) == (170, 212, 255)
    assert not out[0, 0].any()  # black stays black
    np.testing.assert_array_equal(stretch_cell(image, np.zeros_like(labels)), out)  # non-black pixels


def test_legend_strip_and_stretched_overlay():
    image = np.full((30, 30, 3), 100, np.uint8)
    plain = draw_overlay(image, _labels(), stretch=True)
    with_legend = draw_overlay(image, _labels(), stretch=True, legend=True)
    assert with_legend.shape[0] > 30 and with_legend.shape[1] == 30
    np.testing.assert_array_equal(with_legend[:30], plain)
    strip = with_legend[30:]
    assert (strip == CELL_COLOUR).all(axis=2).any() and (strip == NUCLEUS_COLOUR).all(axis=2).any()
    assert draw_overlay(image, np.zeros((30, 30), np.uint8), legend=True).shape[0] > 30


def test_long_captions_shrink_and_break_lines():
    tiles = [np.zeros((20, 20, 3), np.uint8)] * 2
    short = montage(tiles[:1], captions=["ALL"], tile_size=64)
    long = montage(tiles[:1], captions=["UID_H10_43_1_hem\nHEM"], tile_size=64)
    assert short[20:].sum() == 0  # one line of text, at the top
    assert long[16:32].sum() > 0  # a second line under the first


def test_integer_and_boolean_masks_draw_like_uint8_labels():
    image = np.full((30, 30, 3), 100, np.uint8)
    expected = draw_overlay(image, _labels())
    np.testing.assert_array_equal(draw_overlay(image, _labels().astype(np.int32)), expected)
    assert cell_window(_labels() > 0) == cell_window(_labels())
    with pytest.raises(ValueError, match=r"labels holds values \[255\]"):
        draw_overlay(image, (_labels() > 0).astype(np.uint8) * 255)


def test_a_field_overlay_draws_truth_boxes_detection_boxes_and_outlines():
    from leukoscope.segmentation.fields import Detection
    from leukoscope.segmentation.overlay import BOX_COLOUR, TRUTH_COLOUR, draw_field_overlay

    field = np.full((40, 50, 3), 100, np.uint8)
    labels = np.zeros((20, 20), np.uint8)
    labels[2:18, 2:18] = 1
    labels[6:14, 6:14] = 2
    cell = Detection(box=(10, 5, 30, 25), labels=labels, touches_edge=False)
    out = draw_field_overlay(field, [cell], truth=[(0, 0, 40, 30)])
    assert contour_width(field.shape) == 1
    assert tuple(out[0, 20]) == TRUTH_COLOUR and tuple(out[29, 39]) == TRUTH_COLOUR  # x1, y1 exclusive
    assert tuple(out[5, 20]) == BOX_COLOUR and tuple(out[24, 29]) == BOX_COLOUR
    assert tuple(out[7, 20]) == CELL_COLOUR  # box row 2: the cell's top edge
    assert tuple(out[11, 20]) == NUCLEUS_COLOUR  # box row 6: the nucleus' top edge
    assert tuple(out[15, 20]) == (100, 100, 100) and tuple(out[35, 45]) == (100, 100, 100)
    assert np.array_equal(field, np.full((40, 50, 3), 100, np.uint8))  # input not modified


def test_a_field_overlay_marks_points_and_captions_each_detection():
    from leukoscope.segmentation.fields import Detection
    from leukoscope.segmentation.overlay import TRUTH_COLOUR, draw_field_overlay

    field = np.full((60, 80, 3), 100, np.uint8)
    cell = Detection(box=(30, 30, 50, 50), labels=np.ones((20, 20), np.uint8), touches_edge=False)
    out = draw_field_overlay(field, [cell], points=[(10.4, 20.0)], captions=["7"])
    # a cross of 8 pixels' span through the rounded point (10, 20)
    for row, col in ((20, 10), (20, 14), (16, 10)):
        assert tuple(out[row, col]) == TRUTH_COLOUR
    assert tuple(out[22, 12]) == (100, 100, 100)  # off both arms
    caption = np.any(out != 100, axis=2)
    caption[16:25, 6:15] = False  # the cross
    caption[30:50, 30:50] = False  # the box and the cell
    rows, cols = np.nonzero(caption)  # the "7" (anti-aliased), above the box, from its left side
    assert len(rows) and rows.max() < 30 and cols.min() >= 30 and cols.max() < 45
    with pytest.raises(ValueError, match="one per detection"):
        draw_field_overlay(field, [cell], captions=["1", "2"])
