"""Cut red cells that touch the white cell off its thresholded mask.

On a smear, red cells pressed against the leukocyte pass the same threshold as its pale
cytoplasm, and the mask becomes a cluster. Such a cluster is not convex: when its solidity
(area over convex-hull area) is below a limit, it is split along the necks of its distance
transform by a marker-controlled watershed (markers: the nucleus, which belongs to the white
cell, and every other h-maximum of the distance transform), and only the nucleus' basin is
kept. A round cell is left as it is.

References
----------
Vincent L, Soille P. Watersheds in digital spaces: an efficient algorithm based on
immersion simulations. IEEE Trans Pattern Anal Mach Intell 13(6):583-598, 1991.
doi:10.1109/34.87344
"""

from __future__ import annotations

import cv2
import numpy as np

from leukoscope.segmentation.cleanup import fill_holes

H_MAXIMA = 1.0  # pixels: distance-transform peaks shallower than this do not seed a basin
WORK_SIDE = 128  # the split is computed on the cell's bounding box scaled to at most this side


def solidity(mask: np.ndarray) -> float:
    """Pixel area of a mask over the pixel area of its convex hull.

    Parameters
    ----------
    mask : (H, W) bool ndarray
        The mask (all its objects together).

    Returns
    -------
    float
        In (0, 1]; NaN for an empty mask.
    """
    mask = np.asarray(mask, dtype=bool)
    area = int(np.count_nonzero(mask))
    if area == 0:
        return float("nan")
    contours, _ = cv2.findContours(mask.view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull = cv2.convexHull(np.concatenate(contours))
    filled = np.zeros(mask.shape, dtype=np.uint8)
    cv2.fillConvexPoly(filled, hull, 1)
    return area / max(int(np.count_nonzero(filled | mask)), 1)


def split_touching(cell: np.ndarray, nucleus: np.ndarray, *, min_solidity: float) -> np.ndarray:
    """Remove the parts of a non-convex cell mask that are separated from the nucleus by a neck.

    Parameters
    ----------
    cell : (H, W) bool ndarray
        The cleaned cell mask (one object).
    nucleus : (H, W) bool ndarray
        The nucleus mask, inside ``cell``.
    min_solidity : float
        Masks at least this solid are returned unchanged; 0 turns splitting off.

    Returns
    -------
    (H, W) bool ndarray
        The white cell: the watershed basin seeded by the nucleus, holes filled (always
        containing the nucleus).
    """
    cell = np.asarray(cell, dtype=bool)
    nucleus = np.asarray(nucleus, dtype=bool) & cell
    if not nucleus.any() or not solidity(cell) < min_solidity:
        return cell
    top, left = np.min(np.nonzero(cell), axis=1)
    bottom, right = np.max(np.nonzero(cell), axis=1) + 1
    box = (slice(top, bottom), slice(left, right))
    basin = _nucleus_basin(cell[box], nucleus[box])
    out = np.zeros_like(cell)
    out[box] = fill_holes(basin & cell[box] | nucleus[box])
    return out


def _nucleus_basin(cell: np.ndarray, nucleus: np.ndarray) -> np.ndarray:
    """Watershed basin of the nucleus on the distance transform, computed at most WORK_SIDE wide."""
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    height, width = cell.shape
    scale = min(1.0, WORK_SIDE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small_cell = cv2.resize(cell.view(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    small_nucleus = cv2.resize(nucleus.view(np.uint8), size, interpolation=cv2.INTER_NEAREST) & small_cell
    distance = cv2.distanceTransform(small_cell, cv2.DIST_L2, 5)
    peaks = h_maxima(distance, H_MAXIMA).astype(bool)
    count, peak_labels = cv2.connectedComponents(peaks.view(np.uint8), connectivity=8)
    joined = np.zeros(count, dtype=bool)
    joined[peak_labels[peaks & (small_nucleus > 0)]] = True  # peaks in the nucleus seed the white cell
    markers = np.where(peaks, peak_labels + 1, 0).astype(np.int32)
    markers[peaks & joined[peak_labels]] = 1
    markers[small_nucleus > 0] = 1
    basins = (watershed(-distance, markers, mask=small_cell > 0) == 1).view(np.uint8)
    return cv2.resize(basins, (width, height), interpolation=cv2.INTER_NEAREST) > 0
