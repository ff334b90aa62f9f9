"""Overlap of a predicted mask with an expert mask: Dice and IoU (Jaccard)."""

from __future__ import annotations

import numpy as np

from leukoscope.segmentation.labels import NUCLEUS, as_label_mask


def _pair(predicted: np.ndarray, expected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    predicted = np.asarray(predicted, dtype=bool)
    expected = np.asarray(expected, dtype=bool)
    if predicted.shape != expected.shape:
        raise ValueError(
            f"predicted mask is {predicted.shape} but the expert mask is {expected.shape}; "
            "they must have the same size"
        )
    return predicted, expected


def dice(predicted: np.ndarray, expected: np.ndarray) -> float:
    """Dice coefficient 2|A and B| / (|A| + |B|).

    Parameters
    ----------
    predicted, expected : (H, W) bool ndarray
        The two masks.

    Returns
    -------
    float
        In [0, 1]; NaN when both masks are empty (the overlap is undefined, not perfect).

    References
    ----------
    Dice LR. Measures of the amount of ecologic association between species. Ecology
    26(3):297-302, 1945. doi:10.2307/1932409
    """
    predicted, expected = _pair(predicted, expected)
    total = int(predicted.sum()) + int(expected.sum())
    if total == 0:
        return float("nan")
    return 2.0 * int(np.count_nonzero(predicted & expected)) / total


def iou(predicted: np.ndarray, expected: np.ndarray) -> float:
    """Intersection over union (Jaccard index) |A and B| / |A or B|.

    Parameters
    ----------
    predicted, expected : (H, W) bool ndarray
        Prediction and expert mask, of one size.

    Returns
    -------
    float
        Between 0 and 1, or NaN if neither mask has a pixel.

    References
    ----------
    Jaccard P. The distribution of the flora in the alpine zone. New Phytologist
    11(2):37-50, 1912. doi:10.1111/j.1469-8137.1912.tb05611.x
    """
    predicted, expected = _pair(predicted, expected)
    union = int(np.count_nonzero(predicted | expected))
    if union == 0:
        return float("nan")
    return int(np.count_nonzero(predicted & expected)) / union


def label_scores(predicted: np.ndarray, expected: np.ndarray) -> dict[str, float]:
    """Dice and IoU of the whole cell (label > 0) and of the nucleus (label 2).

    Parameters
    ----------
    predicted, expected : (H, W) integer or bool ndarray
        Label masks: 0 background, 1 cytoplasm, 2 nucleus (see
        :func:`~leukoscope.segmentation.labels.as_label_mask`).

    Returns
    -------
    dict
        ``dice_cell``, ``dice_nucleus``, ``iou_cell``, ``iou_nucleus``.
    """
    predicted = as_label_mask(predicted)
    expected = as_label_mask(expected)
    scores = {}
    for name, pred, true in (
        ("cell", predicted > 0, expected > 0),
        ("nucleus", predicted == NUCLEUS, expected == NUCLEUS),
    ):
        scores[f"dice_{name}"] = dice(pred, true)
        scores[f"iou_{name}"] = iou(pred, true)
    return {key: scores[key] for key in ("dice_cell", "dice_nucleus", "iou_cell", "iou_nucleus")}
