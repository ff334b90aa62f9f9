"""Haralick texture features of the nucleus, the cytoplasm and the whole cell.

The grey image (BT.601 luma) is quantised once, with a fixed range so that images stay
comparable: ``q = 1 + gray * levels // 256`` maps 0..255 onto 1..levels. Pixels outside a
region are set to 0 and pairs that touch a 0 are left out of the grey-level co-occurrence
matrix, which is exactly mahotas' ``haralick(q_masked, ignore_zeros=True)``: the black
background of C-NMC cells never enters the texture. The symmetric co-occurrence matrices of
the four directions (0, 45, 90, 135 degrees) at ``distance`` pixels of all three regions come
from one joint histogram of (region, level) codes per direction, and the 13 features of all twelve matrices are
computed at once, with mahotas' formulas (including its defaults: the corrected sum variance
and the difference variance as the variance of the vector ``P(|i - j|)``). The result equals
``mahotas.features.haralick(..., return_mean_ptp=True)`` on each masked crop.

Each feature is reported as its mean and its range (max - min) over the four directions.
A region that is empty, a single pixel or flat (one grey level), or that has no pixel pair
in one of the directions (e.g. a one-pixel-wide line), gives NaN for all its columns.

References
----------
Haralick, Shanmugam, Dinstein (1973). Textural features for image classification.
IEEE Trans. Syst. Man Cybern. SMC-3(6), 610-621. doi:10.1109/TSMC.1973.4309314

Coelho (2013). Mahotas: open source software for scriptable computer vision.
J. Open Res. Softw. 1(1), e3. doi:10.5334/jors.ac
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from leukoscope.features.choices import Family
from leukoscope.features.columns import Column
from leukoscope.features.regions import CYTOPLASM, NUCLEUS, CellImage, Region, joint_histogram

#: Feature name -> description, in mahotas' order.
FEATURES: dict[str, str] = {
    "angular_second_moment": "angular second moment (energy, sum of squared probabilities)",
    "contrast": "contrast (sum of (i - j)^2 p(i, j))",
    "correlation": "correlation of the grey levels of pixel pairs",
    "sum_of_squares_variance": "sum of squares: variance",
    "inverse_difference_moment": "inverse difference moment (homogeneity)",
    "sum_average": "sum average",
    "sum_variance": "sum variance",
    "sum_entropy": "sum entropy",
    "entropy": "entropy of the co-occurrence matrix",
    "difference_variance": "difference variance (variance of the vector P(|i - j|), mahotas' default)",
    "difference_entropy": "difference entropy",
    "info_correlation_1": "information measure of correlation 1",
    "info_correlation_2": "information measure of correlation 2",
}
_UNITS = {
    "contrast": "grey level^2", "sum_of_squares_variance": "grey level^2", "sum_average": "grey level",
    "sum_variance": "grey level^2", "sum_entropy": "bits", "entropy": "bits", "difference_entropy": "bits",
}
AGGREGATES = {"mean": "mean over the 4 directions", "range": "range (max - min) over the 4 directions"}
REGIONS = (Region.NUCLEUS, Region.CYTOPLASM, Region.CELL)
#: (dy, dx) of the four directions, as in mahotas: 0, 45 (down-right), 90 and 135 degrees.
DIRECTIONS = ((0, 1), (1, 1), (1, 0), (1, -1))
MAX_LEVELS = 255

COLUMNS: tuple[Column, ...] = tuple(
    Column(
        name=f"haralick_{feature}_{region.value}_{aggregate}",
        family=Family.HARALICK,
        regions=(region,),
        description=f"Haralick {description} of the quantised grey image inside the {region.value}, "
                    f"{AGGREGATES[aggregate]}",
        unit=_UNITS.get(feature, "1"),
    )
    for region in REGIONS
    for feature, description in FEATURES.items()
    for aggregate in AGGREGATES
)


def check_haralick_options(*, distance: int, levels: int) -> None:
    """Raise ``ValueError`` for a distance below 1 or grey levels outside 2..255."""
    if isinstance(distance, bool) or not isinstance(distance, int) or distance < 1:
        raise ValueError(f"haralick distance must be a whole number of pixels >= 1, got {distance!r} "
                         "(config key features.haralick_distance)")
    if isinstance(levels, bool) or not isinstance(levels, int) or not 2 <= levels <= MAX_LEVELS:
        raise ValueError(f"haralick grey levels must be between 2 and {MAX_LEVELS} (uint8 quantisation), "
                         f"got {levels!r} (config key features.haralick_levels)")


def quantize(gray: np.ndarray, *, levels: int) -> np.ndarray:
    """Map grey levels 0..255 onto 1..``levels`` with equal-width bins.

    Parameters
    ----------
    gray : (H, W) uint8 ndarray
    levels : int
        Number of grey levels, 2..255.

    Returns
    -------
    q : (H, W) uint8 ndarray
        Values in 1..levels; 0 is left free for "outside the region".
    """
    return (1 + (gray.astype(np.uint16) * levels >> 8)).astype(np.uint8)


def cooccurrence_matrices(q: np.ndarray, labels: np.ndarray, *, distance: int, levels: int) -> np.ndarray:
    """Symmetric co-occurrence counts of each region and direction, pairs inside the region only.

    Parameters
    ----------
    q : (H, W) uint8 ndarray
        Quantised grey image, values 1..levels (see :func:`quantize`).
    labels : (H, W) uint8 ndarray
        0 background, 1 cytoplasm, 2 nucleus.
    distance : int
        Pixel distance between the two pixels of a pair.
    levels : int
        Number of grey levels.

    Returns
    -------
    cmat : (3, 4, levels + 1, levels + 1) int64 ndarray
        Regions in :data:`REGIONS` order, directions in :data:`DIRECTIONS` order; row and
        column 0 are zero (mahotas' ``ignore_zeros``).
    """
    size = levels + 1
    # one code per pixel (label, level); a pair of codes indexes a (3 size)^2 count table.
    # Levels inside a region are >= 1, so row and column 0 of every region stay empty.
    # uint8 codes (up to 84 levels) take OpenCV's fast 8-bit histogram.
    code = (labels.astype(np.uint16) * size + q).astype(np.uint8 if 3 * size <= 256 else np.uint16)
    height, width = q.shape
    out = np.zeros((3, len(DIRECTIONS), size, size), np.int64)
    for d, (dy, dx) in enumerate(DIRECTIONS):
        dy, dx = dy * distance, dx * distance
        if dy >= height or abs(dx) >= width:
            continue
        x0, x1 = max(0, -dx), width - max(0, dx)
        first = code[0:height - dy, x0:x1]
        second = code[dy:height, x0 + dx:x1 + dx]
        counts = joint_histogram(first, second, bins=(3 * size, 3 * size)).reshape(3, size, 3, size)
        cyto = counts[CYTOPLASM, :, CYTOPLASM]
        nucleus = counts[NUCLEUS, :, NUCLEUS]
        mixed = counts[CYTOPLASM, :, NUCLEUS] + counts[NUCLEUS, :, CYTOPLASM].T
        out[0, d] = nucleus + nucleus.T
        out[1, d] = cyto + cyto.T
        out[2, d] = out[0, d] + out[1, d] + mixed + mixed.T
    return out


@lru_cache(maxsize=64)
def _index_tables(size: int) -> tuple[np.ndarray, ...]:
    """Offsets i + j and |i - j|, and 1 / (1 + (i - j)^2), of a size x size matrix, raveled."""
    i, j = np.mgrid[:size, :size]
    return (i + j).ravel(), np.abs(i - j).ravel(), 1.0 / (1.0 + (i - j).ravel() ** 2.0)


def _marginal(p: np.ndarray, index: np.ndarray, length: int) -> np.ndarray:
    """Sum each row of ``p`` into ``length`` bins by ``index`` (bincount, no BLAS)."""
    n = p.shape[0]
    rows = (np.arange(n)[:, None] * length + index).ravel()
    return np.bincount(rows, weights=p.ravel(), minlength=n * length).reshape(n, length)


def _entropy(p: np.ndarray) -> np.ndarray:
    """Shannon entropy in bits along the last axis (0 log 0 = 0)."""
    return -(p * np.log2(np.where(p > 0, p, 1.0))).sum(axis=-1)


def haralick_from_cooccurrence(cmat: np.ndarray, *, first_level: int = 0, max_level: np.ndarray) -> np.ndarray:
    """The 13 Haralick features of a stack of co-occurrence matrices (mahotas' formulas).

    Parameters
    ----------
    cmat : (N, M, M) integer ndarray
        Symmetric co-occurrence counts of the levels ``first_level .. first_level + M - 1``
        (a block of the full matrix outside which every count is 0, with level 0 ignored);
        every matrix non-empty.
    first_level : int
        Grey level of row and column 0 of ``cmat``.
    max_level : (N,) int ndarray
        Highest quantised level present in the region of each matrix: mahotas sizes its
        matrix by it, which only matters for the difference variance.

    Returns
    -------
    feats : (N, 13) float64 ndarray
    """
    n, size, _ = cmat.shape
    sums, diffs, inverse_diff = _index_tables(size)
    p = cmat.reshape(n, size * size) / cmat.sum(axis=(1, 2)).reshape(n, 1).astype(np.float64)
    p2 = p.reshape(n, size, size)
    k = np.arange(first_level, first_level + size, dtype=np.float64)  # the levels themselves
    tk = np.arange(2 * first_level, 2 * first_level + 2 * size, dtype=np.float64)  # i + j
    ij = np.outer(k, k).ravel()
    px, py = p2.sum(axis=1), p2.sum(axis=2)
    ux, uy = px @ k, py @ k
    vx, vy = px @ k**2 - ux**2, py @ k**2 - uy**2
    sx, sy = np.sqrt(vx), np.sqrt(vy)
    p_sum, p_diff = _marginal(p, sums, 2 * size), _marginal(p, diffs, size)
    feats = np.empty((n, 13))
    feats[:, 0] = (p * p).sum(axis=1)
    feats[:, 1] = p_diff @ np.arange(size, dtype=np.float64) ** 2  # |i - j| = 0 .. size - 1
    flat = (sx == 0) | (sy == 0)
    feats[:, 2] = np.where(flat, 1.0, (p @ ij - ux * uy) / np.where(flat, 1.0, sx * sy))
    feats[:, 3] = vx
    feats[:, 4] = p @ inverse_diff
    feats[:, 5] = p_sum @ tk
    feats[:, 7] = _entropy(p_sum)
    feats[:, 6] = p_sum @ tk**2 - feats[:, 5] ** 2
    feats[:, 8] = _entropy(p)
    length = (np.asarray(max_level) + 1).astype(np.float64)
    feats[:, 9] = (p_diff**2).sum(axis=1) / length - (p_diff.sum(axis=1) / length) ** 2
    feats[:, 10] = _entropy(p_diff)
    hx, hy = _entropy(px), _entropy(py)
    outer = px[:, :, None] * py[:, None, :]
    log_outer = np.log2(np.where(outer > 0, outer, 1.0)).reshape(n, size * size)
    hxy1 = -(p * log_outer).sum(axis=1)
    hxy2 = -(outer.reshape(n, size * size) * log_outer).sum(axis=1)
    h_max = np.maximum(hx, hy)
    feats[:, 11] = (feats[:, 8] - hxy1) / np.where(h_max == 0, 1.0, h_max)
    feats[:, 12] = np.sqrt(np.maximum(0.0, 1.0 - np.exp(-2.0 * (hxy2 - feats[:, 8]))))
    return feats


def haralick_features(
    image: np.ndarray, labels: np.ndarray, *, distance: int = 1, levels: int = 64
) -> dict[str, float]:
    """Haralick's 13 texture features inside the nucleus, the cytoplasm and the cell.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB cell image; its BT.601 grey level is quantised.
    labels : (H, W) integer or bool ndarray
        Region of every pixel (0 background, 1 cytoplasm, 2 nucleus; any form
        :func:`~leukoscope.segmentation.labels.as_label_mask` reads); pairs that leave a
        region (e.g. into the 0 background) are not counted.
    distance : int
        Pixel distance of the co-occurring pairs (>= 1).
    levels : int
        Grey levels after quantisation (2..255).

    Returns
    -------
    dict of str to float
        One value per :data:`COLUMNS` name; NaN for a degenerate region (see the module
        docstring).
    """
    return measure_haralick(CellImage(image, labels), distance=distance, levels=levels)


def measure_haralick(cell: CellImage, *, distance: int = 1, levels: int = 64) -> dict[str, float]:
    """:func:`haralick_features` of a :class:`~leukoscope.features.regions.CellImage`."""
    check_haralick_options(distance=distance, levels=levels)
    labels = cell.labels
    q = quantize(cell.gray, levels=levels)
    cmat = cooccurrence_matrices(q, labels, distance=distance, levels=levels)
    # pixels of each level per label, from the grey histogram: grey g has level quantize(g)
    region_levels = np.zeros((3, levels + 1), np.int64)
    np.add.at(region_levels.T, quantize(np.arange(256, dtype=np.uint8), levels=levels), cell.histograms("gray").T)
    present = np.stack([region_levels[NUCLEUS], region_levels[CYTOPLASM],
                        region_levels[CYTOPLASM] + region_levels[NUCLEUS]]) > 0
    # usable: pairs in every direction and at least two grey levels (not flat)
    rows = np.flatnonzero((cmat.sum(axis=(2, 3)) > 0).all(axis=1) & (present.sum(axis=1) >= 2))
    table = np.full((len(REGIONS), len(FEATURES), len(AGGREGATES)), np.nan)
    if rows.size:
        max_level = np.repeat(levels - np.argmax(present[rows, ::-1], axis=1), len(DIRECTIONS))
        # only the block of levels present in these regions holds counts: skip the rest
        used = np.flatnonzero(present[rows].any(axis=0))
        first, last = int(used[0]), int(used[-1]) + 1
        block = cmat[rows][:, :, first:last, first:last].reshape(-1, last - first, last - first)
        feats = haralick_from_cooccurrence(block, first_level=first, max_level=max_level)
        feats = feats.reshape(len(rows), len(DIRECTIONS), len(FEATURES))
        table[rows, :, 0] = feats.mean(axis=1)
        table[rows, :, 1] = np.ptp(feats, axis=1)
    # COLUMNS run region -> feature -> aggregate
    return dict(zip((c.name for c in COLUMNS), table.ravel().tolist()))
