"""Binary mask clean-up: fill holes, drop small objects, keep the component at the centre.

Objects are 8-connected; holes are 4-connected background regions that do not touch the
image border (the usual duality, so a diagonal gap in an object's outline does not leak).
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage


def _as_uint8(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"expected an (H, W) mask, got an array of shape {mask.shape}")
    return mask.astype(np.uint8, copy=False) if mask.dtype != bool else mask.view(np.uint8)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill background regions enclosed by the mask.

    Parameters
    ----------
    mask : (H, W) bool ndarray
        The mask.

    Returns
    -------
    (H, W) bool ndarray
        The mask with every background region that does not touch the border set.
    """
    padded = cv2.copyMakeBorder(_as_uint8(mask), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    padded = (padded != 0).astype(np.uint8)
    cv2.floodFill(padded, None, (0, 0), 1, flags=4)  # the 1-pixel frame joins all outer background
    return (padded[1:-1, 1:-1] == 0) | np.asarray(mask, dtype=bool)


def _components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    count, labels = cv2.connectedComponents(_as_uint8(mask), connectivity=8)
    return count, labels, np.bincount(labels.ravel(), minlength=count)


def remove_small_objects(mask: np.ndarray, *, min_size: int) -> np.ndarray:
    """Drop connected objects with fewer than ``min_size`` pixels.

    Parameters
    ----------
    mask : (H, W) bool ndarray
        The mask.
    min_size : int
        Smallest object kept, in pixels.

    Returns
    -------
    (H, W) bool ndarray
        The mask without the small objects.
    """
    _count, labels, area = _components(mask)
    keep = area >= min_size
    keep[0] = False
    return keep[labels]


def _central_label(labels: np.ndarray, area: np.ndarray, candidates: np.ndarray, center: tuple[float, float]) -> int:
    """Label of the candidate containing ``center``, else the nearest one (ties: larger, lower)."""
    row0, col0 = center
    at_center = int(labels[int(round(row0)), int(round(col0))])
    if at_center in candidates:
        return at_center
    rows, cols = np.indices(labels.shape, dtype=np.float64)
    distance = (rows - row0) ** 2 + (cols - col0) ** 2
    nearest = np.asarray(ndimage.minimum(distance, labels, candidates))
    return int(candidates[np.lexsort((candidates, -area[candidates], nearest))[0]])


def keep_central_component(
    mask: np.ndarray, *, min_size: int = 1, center: tuple[float, float] | None = None
) -> np.ndarray:
    """Keep the connected object that contains the centre, or the one nearest to it.

    Parameters
    ----------
    mask : (H, W) bool ndarray
        The mask.
    min_size : int
        Objects smaller than this (pixels) are not considered.
    center : (row, col), optional
        The point of interest; the image centre when omitted.

    Returns
    -------
    (H, W) bool ndarray
        Only the chosen object (empty when no object is left). Ties in distance go to the
        larger object, then the lower label, so the choice is deterministic.
    """
    count, labels, area = _components(mask)
    candidates = np.flatnonzero(area >= min_size)
    candidates = candidates[candidates > 0]
    if candidates.size == 0:
        return np.zeros(labels.shape, dtype=bool)
    if center is None:
        center = ((labels.shape[0] - 1) / 2.0, (labels.shape[1] - 1) / 2.0)
    chosen = candidates[0] if candidates.size == 1 else _central_label(labels, area, candidates, center)
    return labels == chosen


def clean_mask(mask: np.ndarray, *, min_size: int) -> np.ndarray:
    """The documented clean-up: drop objects under ``min_size``, keep the central one, fill its holes.

    Parameters
    ----------
    mask : (H, W) bool ndarray
        A thresholded mask.
    min_size : int
        Smallest object considered, in pixels.

    Returns
    -------
    (H, W) bool ndarray
        One hole-free object, or an empty mask when nothing of ``min_size`` pixels is left.
    """
    return fill_holes(keep_central_component(mask, min_size=min_size))
