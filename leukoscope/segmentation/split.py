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
from scipy import ndimage

from leukoscope.segmentation.cleanup import fill_holes

H_MAXIMA = 1.0  # pixels: distance-transform peaks shallower than this do not seed a basin
WORK_SIDE = 128  # the split is computed on the cell's bounding box scaled to at most this side
NECK_RATIO = 0.5  # a join narrower than this fraction of the smaller part's inscribed diameter is a neck


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
    size = _work_scale(cell.shape)
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


def _work_scale(shape: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of a mask scaled to at most WORK_SIDE on its longer side."""
    height, width = shape
    scale = min(1.0, WORK_SIDE / max(height, width))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _distance_basins(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance transform of a uint8 mask and its watershed basins, one per h-maximum."""
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    distance = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    _count, markers = cv2.connectedComponents(h_maxima(distance, H_MAXIMA).astype(np.uint8), connectivity=8)
    return distance, watershed(-distance, markers, mask=mask > 0)


def _merge_wide_joins(basins: np.ndarray, distance: np.ndarray, neck_ratio: float) -> np.ndarray:
    """Join basins whose shared border is not a neck; returns the new label of every basin."""
    count = int(basins.max()) + 1
    peak = np.zeros(count)
    np.maximum.at(peak, basins.ravel(), distance.ravel())
    saddles: dict[tuple[int, int], float] = {}
    for a, b, da, db in (
        (basins[:, :-1], basins[:, 1:], distance[:, :-1], distance[:, 1:]),
        (basins[:-1, :], basins[1:, :], distance[:-1, :], distance[1:, :]),
    ):
        border = (a != b) & (a > 0) & (b > 0)
        pairs = np.stack([np.minimum(a[border], b[border]), np.maximum(a[border], b[border])], axis=1)
        for (first, second), value in zip(map(tuple, pairs), np.minimum(da[border], db[border])):
            saddles[(first, second)] = max(saddles.get((first, second), 0.0), float(value))
    parent = np.arange(count)

    def root(label: int) -> int:
        while parent[label] != label:
            label = parent[label]
        return label

    for (first, second), saddle in sorted(saddles.items(), key=lambda item: (-item[1], item[0])):
        first, second = root(first), root(second)
        if first != second and saddle >= neck_ratio * min(peak[first], peak[second]):
            parent[second] = first
            peak[first] = max(peak[first], peak[second])
    return np.array([root(label) for label in range(count)])


def neck_pieces(mask: np.ndarray, *, neck_ratio: float = NECK_RATIO) -> np.ndarray:
    """Cut a mask into the parts that thin necks join.

    The mask's distance transform is flooded from its h-maxima (a marker-controlled
    watershed, as in :func:`split_touching`); two neighbouring basins stay one piece unless
    the widest point of their shared border (the saddle of the distance transform) is
    narrower than ``neck_ratio`` times the inscribed diameter of the smaller one. Computed on
    the mask scaled to at most :data:`WORK_SIDE` pixels.

    Parameters
    ----------
    mask : (H, W) bool ndarray
        One or more objects.
    neck_ratio : float
        Saddle over the smaller basin's peak of the distance transform below which a join
        is a neck; 0 never cuts.

    Returns
    -------
    (H, W) int32 ndarray
        0 outside the mask, pieces numbered from 1 (a piece may be a few pixels where the
        scaling cut a thin sliver).
    """
    mask = np.asarray(mask, dtype=bool)
    out = np.zeros(mask.shape, dtype=np.int32)
    if not mask.any():
        return out
    top, left = np.min(np.nonzero(mask), axis=1)
    bottom, right = np.max(np.nonzero(mask), axis=1) + 1
    box = mask[top:bottom, left:right]
    small = cv2.resize(box.view(np.uint8), _work_scale(box.shape), interpolation=cv2.INTER_NEAREST)
    distance, basins = _distance_basins(small)
    pieces = _merge_wide_joins(basins, distance, neck_ratio)[basins].astype(np.int32)
    _, pieces = np.unique(pieces, return_inverse=True)  # renumber 0 (background), 1, 2, ...
    pieces = pieces.reshape(small.shape).astype(np.int32)
    full = cv2.resize(pieces, (box.shape[1], box.shape[0]), interpolation=cv2.INTER_NEAREST)
    unlabelled = box & (full == 0)  # slivers the scaling lost take the nearest piece
    if unlabelled.any():
        nearest = ndimage.distance_transform_edt(full == 0, return_distances=False, return_indices=True)
        full[unlabelled] = full[tuple(index[unlabelled] for index in nearest)]
    out[top:bottom, left:right] = np.where(box, full, 0)
    return out
