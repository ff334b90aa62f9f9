"""Scores of white-cell detection in whole fields against annotated boxes or centroids.

Boxes are ``(x0, y0, x1, y1)`` with ``x1``/``y1`` exclusive (pixel ``x`` is inside when
``x0 <= x < x1``), the convention of :class:`~leukoscope.segmentation.fields.Detection`.

A detection matches an annotated box when their intersection over union (IoU, the Pascal VOC
criterion, Everingham et al. 2010) is at least ``min_iou``; each detection and each box is
matched at most once, by an optimal assignment (Hungarian algorithm, Kuhn 1955) that
maximises the number of matches and, among equally many, their total IoU. Recall is matched
over annotated, precision matched over detected, F1 their harmonic mean.

A point annotation (e.g. an ALL-IDB1 blast centroid) is found when it lies inside a detected
cell's mask.

References
----------
Everingham M, Van Gool L, Williams CKI, Winn J, Zisserman A. The Pascal Visual Object Classes
(VOC) challenge. Int J Comput Vis 88(2):303-338, 2010. doi:10.1007/s11263-009-0275-4

Kuhn HW. The Hungarian method for the assignment problem. Nav Res Logist Q 2(1-2):83-97, 1955.
doi:10.1002/nav.3800020109
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from leukoscope.segmentation.fields import Detection

Table = np.ndarray | Sequence[Sequence[float]]  # (N, 4) boxes or (N, 2) points, one row each


def _boxes(boxes: Table, name: str) -> np.ndarray:
    array = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) if len(boxes) else np.zeros((0, 4))
    if np.any(array[:, 2] < array[:, 0]) or np.any(array[:, 3] < array[:, 1]):
        raise ValueError(f"{name} holds a box with x1 < x0 or y1 < y0; give boxes as (x0, y0, x1, y1)")
    return array


def box_iou(first: Table, second: Table) -> np.ndarray:
    """Intersection over union of every box of ``first`` with every box of ``second``.

    Parameters
    ----------
    first : (N, 4) array-like
        Boxes ``(x0, y0, x1, y1)``, ``x1``/``y1`` exclusive.
    second : (M, 4) array-like
        Boxes in the same convention.

    Returns
    -------
    (N, M) float64 ndarray
        IoU in [0, 1]; 0 for two empty boxes.
    """
    first, second = _boxes(first, "first"), _boxes(second, "second")
    left = np.maximum(first[:, None, 0], second[None, :, 0])
    top = np.maximum(first[:, None, 1], second[None, :, 1])
    right = np.minimum(first[:, None, 2], second[None, :, 2])
    bottom = np.minimum(first[:, None, 3], second[None, :, 3])
    inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    area_first = (first[:, 2] - first[:, 0]) * (first[:, 3] - first[:, 1])
    area_second = (second[:, 2] - second[:, 0]) * (second[:, 3] - second[:, 1])
    union = area_first[:, None] + area_second[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def match_boxes(
    detected: Table, truth: Table, *, min_iou: float = 0.5
) -> np.ndarray:
    """One-to-one matches of detected to annotated boxes with IoU at least ``min_iou``.

    Parameters
    ----------
    detected : (N, 4) array-like
        Detected boxes.
    truth : (M, 4) array-like
        Annotated boxes.
    min_iou : float
        Least IoU of a match, in (0, 1].

    Returns
    -------
    (K, 2) int64 ndarray
        Rows ``(detected index, truth index)``, sorted by detected index; K is the largest
        possible number of matches, and their total IoU the largest among such sets.
    """
    if not 0.0 < min_iou <= 1.0:
        raise ValueError(f"min_iou must be in (0, 1], got {min_iou}")
    iou = box_iou(detected, truth)
    if iou.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    allowed = iou >= min_iou
    # every match is worth more than any sum of IoU over the others: count first, then IoU
    weight = np.where(allowed, 1.0 + iou / (min(iou.shape) + 1.0), 0.0)
    rows, cols = linear_sum_assignment(weight, maximize=True)
    keep = allowed[rows, cols]
    return np.stack([rows[keep], cols[keep]], axis=1).astype(np.int64)


@dataclass(frozen=True)
class DetectionCounts:
    """Matched, detected and annotated cells; add the counts of fields to score a data set.

    Attributes
    ----------
    matched : int
        Detections matched to an annotation (true positives).
    detected : int
        All detections.
    truth : int
        All annotated cells.
    """

    matched: int
    detected: int
    truth: int

    def __add__(self, other: DetectionCounts) -> DetectionCounts:
        return DetectionCounts(self.matched + other.matched, self.detected + other.detected, self.truth + other.truth)

    @property
    def recall(self) -> float:
        """Matched over annotated; NaN without annotations."""
        return self.matched / self.truth if self.truth else float("nan")

    @property
    def precision(self) -> float:
        """Matched over detected; NaN without detections."""
        return self.matched / self.detected if self.detected else float("nan")

    @property
    def f1(self) -> float:
        """2 matched / (detected + annotated); NaN when both are zero."""
        total = self.detected + self.truth
        return 2.0 * self.matched / total if total else float("nan")


def detection_counts(
    detected: Table, truth: Table, *, min_iou: float = 0.5
) -> DetectionCounts:
    """Counts of one field (see :func:`match_boxes` for the matching).

    Parameters
    ----------
    detected, truth : (N, 4), (M, 4) array-like
        Detected and annotated boxes.
    min_iou : float
        Least IoU of a match.

    Returns
    -------
    DetectionCounts
        Sum them over fields, then read ``recall``, ``precision`` and ``f1``.
    """
    pairs = match_boxes(detected, truth, min_iou=min_iou)
    detected_count, truth_count = len(_boxes(detected, "detected")), len(_boxes(truth, "truth"))
    return DetectionCounts(matched=len(pairs), detected=detected_count, truth=truth_count)


def centroid_hits(points: Table, detections: Sequence[Detection]) -> np.ndarray:
    """Which detected cell each annotated point lies in.

    Parameters
    ----------
    points : (N, 2) array-like
        ``(x, y)`` field coordinates (pixel centres at integers), e.g. blast centroids.
    detections : sequence of Detection
        The cells detected in the same field.

    Returns
    -------
    (N,) int64 ndarray
        Index of the detection whose mask holds the point, -1 when none does; a point in two
        masks goes to the one whose centroid is nearer (the lower index on a tie).
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    hits = np.full(len(points), -1, dtype=np.int64)
    centroids = np.array([detection.centroid for detection in detections]).reshape(-1, 2)
    for index, (x, y) in enumerate(points):
        inside = [k for k, detection in enumerate(detections) if detection.contains(x, y)]
        if inside:
            distance = np.hypot(centroids[inside, 0] - x, centroids[inside, 1] - y)
            hits[index] = inside[int(np.argmin(distance))]
    return hits
