"""Dice and IoU on hand-made masks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from leukoscope.segmentation.metrics import dice, iou, label_scores


def test_hand_computed_overlap():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[0, :4] = True  # 4 pixels
    b[0, 2:4] = True
    b[1, 2:4] = True  # 4 pixels, 2 shared
    assert dice(a, b) == pytest.approx(2 * 2 / 8)
    assert iou(a, b) == pytest.approx(2 / 6)


def test_identical_and_disjoint():
    a = np.eye(3, dtype=bool)
    assert dice(a, a) == 1.0 and iou(a, a) == 1.0
    assert dice(a, ~a) == 0.0 and iou(a, ~a) == 0.0


def test_one_empty_mask_scores_zero_both_empty_is_undefined():
    empty = np.zeros((3, 3), bool)
    full = np.ones((3, 3), bool)
    assert dice(empty, full) == 0.0 and iou(full, empty) == 0.0
    assert math.isnan(dice(empty, empty)) and math.isnan(iou(empty, empty))


def test_size_mismatch_is_refused():
    with pytest.raises(ValueError, match="same size"):
        dice(np.zeros((3, 3), bool), np.zeros((3, 4), bool))


def test_label_scores_of_cell_and_nucleus():
    truth = np.array([[0, 1, 1, 2]], np.uint8)
    predicted = np.array([[0, 1, 2, 2]], np.uint8)
    scores = label_scores(predicted, truth)
    assert scores["dice_cell"] == 1.0 and scores["iou_cell"] == 1.0
    assert scores["dice_nucleus"] == pytest.approx(2 * 1 / 3)
    assert scores["iou_nucleus"] == pytest.approx(1 / 2)


def test_label_scores_read_any_integer_labels_and_refuse_other_values():
    predicted = np.array([[0, 1, 2, 2]], np.int64)
    expected = np.array([[0, 2, 2, 0]], np.int32)
    scores = label_scores(predicted, expected)
    # cell: 3 and 2 pixels, 2 shared; nucleus: 2 and 2 pixels, 1 shared
    assert scores == {"dice_cell": pytest.approx(4 / 5), "dice_nucleus": pytest.approx(2 / 4),
                      "iou_cell": pytest.approx(2 / 3), "iou_nucleus": pytest.approx(1 / 3)}
    with pytest.raises(ValueError, match=r"labels holds values \[255\]"):
        label_scores(predicted * 0 + 255, expected)  # a raw 0/255 expert mask must be decoded first
