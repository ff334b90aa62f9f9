"""Box IoU, one-to-one matching, recall/precision/F1 and centroid hits, with values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from leukoscope.segmentation.detection_metrics import (
    DetectionCounts,
    box_iou,
    centroid_hits,
    detection_counts,
    match_boxes,
)
from leukoscope.segmentation.fields import Detection
from leukoscope.segmentation.metrics import iou as mask_iou


def _strip(x0: int, x1: int) -> list[int]:
    """A box 10 rows high: IoU of two strips is overlap / union of their column ranges."""
    return [x0, 0, x1, 10]


def test_box_iou_by_hand():
    iou = box_iou([[0, 0, 10, 10]], [[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30], [2, 2, 4, 4]])
    np.testing.assert_allclose(iou, [[50 / 150, 1.0, 0.0, 4 / 100]])
    assert box_iou([], [[0, 0, 1, 1]]).shape == (0, 1)
    assert box_iou([[3, 3, 3, 3]], [[3, 3, 3, 3]])[0, 0] == 0.0  # empty boxes


def test_box_iou_equals_the_iou_of_the_rasterised_boxes():
    rng = np.random.default_rng(1)
    for _ in range(20):
        corners = rng.integers(0, 30, (2, 4))
        low, high = np.minimum(corners[:, :2], corners[:, 2:]), np.maximum(corners[:, :2], corners[:, 2:]) + 1
        boxes = np.column_stack([low, high])
        masks = np.zeros((2, 32, 32), bool)
        for mask, (x0, y0, x1, y1) in zip(masks, boxes):
            mask[y0:y1, x0:x1] = True
        assert box_iou(boxes[:1], boxes[1:])[0, 0] == pytest.approx(mask_iou(masks[0], masks[1]))


def test_an_inverted_box_is_refused():
    with pytest.raises(ValueError, match=r"\(x0, y0, x1, y1\)"):
        box_iou([[10, 0, 0, 10]], [[0, 0, 1, 1]])


def test_the_assignment_finds_two_matches_where_the_best_pair_first_finds_one():
    # D1 = [10, 19] overlaps T2 = [10, 20] (IoU 9/10) and T1 = [14, 22] (5/12); D2 = [7, 15]
    # overlaps T2 (5/13) and T1 (1/15). Taking D1-T2 first leaves D2 unmatched at 0.3.
    detected = [_strip(10, 19), _strip(7, 15)]
    truth = [_strip(14, 22), _strip(10, 20)]
    np.testing.assert_allclose(box_iou(detected, truth), [[5 / 12, 9 / 10], [1 / 15, 5 / 13]])
    np.testing.assert_array_equal(match_boxes(detected, truth, min_iou=0.3), [[0, 0], [1, 1]])
    np.testing.assert_array_equal(match_boxes(detected, truth, min_iou=0.5), [[0, 1]])


def test_among_equally_many_matches_the_larger_total_iou_wins():
    # both one-to-one assignments match twice at 0.3: D1-T1 + D2-T2 = 1 + 9/11 beats 6/14 + 5/15
    detected, truth = [_strip(0, 10), _strip(5, 15)], [_strip(0, 10), _strip(4, 14)]
    np.testing.assert_allclose(box_iou(detected, truth), [[1.0, 6 / 14], [5 / 15, 9 / 11]])
    np.testing.assert_array_equal(match_boxes(detected, truth, min_iou=0.3), [[0, 0], [1, 1]])
    np.testing.assert_array_equal(match_boxes(detected[::-1], truth, min_iou=0.3), [[0, 1], [1, 0]])


def test_min_iou_outside_its_range_is_refused():
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        match_boxes([_strip(0, 1)], [_strip(0, 1)], min_iou=0)


def test_counts_add_up_over_fields_into_recall_precision_and_f1():
    first = detection_counts([_strip(0, 10), _strip(50, 60)], [_strip(1, 10)], min_iou=0.5)  # 1 match, 1 false
    second = detection_counts([_strip(0, 10)], [_strip(0, 10), _strip(30, 40)], min_iou=0.5)  # 1 match, 1 missed
    empty = detection_counts([], [], min_iou=0.5)
    total = first + second + empty
    assert (first, second, empty) == (DetectionCounts(1, 2, 1), DetectionCounts(1, 1, 2), DetectionCounts(0, 0, 0))
    assert (total.recall, total.precision, total.f1) == (2 / 3, 2 / 3, pytest.approx(4 / 6))
    assert DetectionCounts(3, 4, 5).f1 == pytest.approx(2 * 0.75 * 0.6 / (0.75 + 0.6))
    assert math.isnan(empty.recall) and math.isnan(empty.precision) and math.isnan(empty.f1)


def _square(x0: int, y0: int, side: int) -> Detection:
    return Detection(box=(x0, y0, x0 + side, y0 + side), labels=np.ones((side, side), np.uint8), touches_edge=False)


def test_a_point_is_found_in_the_mask_that_holds_it():
    ring = np.ones((10, 10), np.uint8)
    ring[3:7, 3:7] = 0  # a hole: a point there lies in the box but not in the mask
    cells = [Detection(box=(0, 0, 10, 10), labels=ring, touches_edge=True), _square(8, 0, 10), _square(40, 40, 5)]
    points = [(1, 1), (5, 5), (9, 5), (16, 2), (42, 44), (100, 100)]
    # (9, 5) lies in both of the first two masks: the second's centroid (12.5, 4.5) is nearer
    np.testing.assert_array_equal(centroid_hits(points, cells), [0, -1, 1, 1, 2, -1])
    assert centroid_hits(np.zeros((0, 2)), cells).shape == (0,)
    np.testing.assert_array_equal(centroid_hits([(3, 3)], []), [-1])
