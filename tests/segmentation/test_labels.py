"""as_label_mask: every accepted form of a label mask, and the errors for the others."""

from __future__ import annotations

import numpy as np
import pytest

from leukoscope.segmentation import as_label_mask

LABELS = np.array([[0, 1, 1], [1, 2, 0]], np.uint8)
CELL = LABELS > 0
NUCLEUS = LABELS == 2


def test_uint8_labels_are_returned_unchanged_and_not_copied():
    assert as_label_mask(LABELS) is LABELS


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint16, np.uint64])
def test_integer_labels_of_any_dtype_become_uint8(dtype):
    out = as_label_mask(LABELS.astype(dtype))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, LABELS)


def test_nested_lists_are_read_as_arrays():
    np.testing.assert_array_equal(as_label_mask([[0, 1, 1], [1, 2, 0]]), LABELS)


def test_a_boolean_labels_array_is_a_cell_without_nucleus():
    out = as_label_mask(CELL)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[0, 1, 1], [1, 1, 0]])


def test_cell_and_nucleus_masks_give_the_labels():
    np.testing.assert_array_equal(as_label_mask(cell=CELL, nucleus=NUCLEUS), LABELS)
    # 0/1 integer masks (QuPath, ImageJ exports) work the same
    np.testing.assert_array_equal(
        as_label_mask(cell=CELL.astype(np.int32), nucleus=NUCLEUS.astype(np.uint8)), LABELS)
    np.testing.assert_array_equal(as_label_mask(cell=CELL), CELL.astype(np.uint8))


def test_the_cell_mask_is_not_modified():
    cell = CELL.astype(np.uint8)
    as_label_mask(cell=cell, nucleus=NUCLEUS)
    np.testing.assert_array_equal(cell, CELL)


def test_round_trip_from_labels_to_masks_and_back():
    labels = np.random.default_rng(0).integers(0, 3, size=(7, 9))
    np.testing.assert_array_equal(as_label_mask(cell=labels > 0, nucleus=labels == 2), labels)


@pytest.mark.parametrize(("labels", "message"), [
    (np.array([[0, 1, 3, 255]], np.uint8), r"labels holds values \[3, 255\]; only 0 \(background\), 1 \(cytoplasm\) "
                                          r"and 2 \(nucleus\) are allowed; for a binary mask pass "
                                          r"as_label_mask\(cell=mask > 0\)"),
    (np.array([[0, -1, 2]], np.int32), r"labels holds values \[-1\]"),
    (np.arange(12).reshape(3, 4), r"labels holds values \[3, 4, 5, 6, 7 \.\.\.\]"),
    (np.zeros((2, 2), np.float64), r"labels must be an integer or boolean array, got float64; round it first, "
                                   r"e\.g\. np\.rint\(labels\)\.astype\(np\.uint8\)"),
    (np.zeros((2, 2, 1), np.uint8), r"labels must be an \(H, W\) array, got shape \(2, 2, 1\); for an \(H, W, 1\) "
                                    r"image pass its first channel"),
])
def test_bad_labels_are_refused_with_the_fix(labels, message):
    with pytest.raises(ValueError, match=message):
        as_label_mask(labels)


def test_bad_cell_and_nucleus_masks_are_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"no mask given: pass labels \(0/1/2\), or cell=\.\.\."):
        as_label_mask()
    with pytest.raises(ValueError, match="no mask given"):
        as_label_mask(nucleus=NUCLEUS)
    with pytest.raises(ValueError, match="give either labels, or cell \\(and nucleus\\) masks, not both"):
        as_label_mask(LABELS, cell=CELL)
    with pytest.raises(ValueError, match=r"cell holds values \[255\]; only 0 and 1 \(or False and True\) are "
                                         r"allowed; for a 0/255 mask pass cell=mask > 0"):
        as_label_mask(cell=CELL.astype(np.uint8) * 255)
    with pytest.raises(ValueError, match=r"nucleus holds values \[2\].*nucleus=mask > 0"):
        as_label_mask(cell=CELL, nucleus=LABELS)
    with pytest.raises(ValueError, match="nucleus mask is 2x2 but the cell mask is 2x3; they must have the same size"):
        as_label_mask(cell=CELL, nucleus=NUCLEUS[:, :2])
    with pytest.raises(ValueError, match=r"2 nucleus pixels lie outside the cell mask; the cell must contain its "
                                         r"nucleus: pass cell=cell \| nucleus"):
        as_label_mask(cell=NUCLEUS, nucleus=~CELL)
