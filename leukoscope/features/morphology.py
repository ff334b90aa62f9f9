"""Shape of the nucleus and of the whole cell, and how the two relate.

Definitions (A pixel area, P perimeter):

- area: number of pixels; equivalent diameter ``sqrt(4 A / pi)``;
- perimeter: length of the outer boundaries, traced as 8-connected chains (OpenCV
  ``findContours``) and measured with Kulpa's estimator ``0.948 (n_even + sqrt(2) n_odd)``
  over the axial and diagonal steps (within 1% of ``2 pi r`` for digital discs), summed over
  the pieces;
- major/minor axis and eccentricity of the ellipse with the same second central moments
  (``4 sqrt(lambda)`` of the covariance eigenvalues, as ``skimage.measure.regionprops``);
- solidity: A over the pixel count of the digital convex hull (the pixels whose centres lie
  in the hull of the region's pixel centres, counted exactly, see
  :func:`convex_hull_measures`); convexity: perimeter of that hull over P (same estimator),
  so both are 1 for a digitally convex region and smaller for indented ones; circularity
  (form factor): ``4 pi A / P^2``, about 1 for a disc and smaller for elongated or ragged
  shapes;
- roughness: root mean square distance between the boundary points and the boundary smoothed
  by a circular moving average over 11 points, in pixels (0 for a smooth outline);
- Hu's seven moment invariants of the region (as ``skimage.measure.moments_hu``), the
  seventh as its absolute value, so that a cell and its mirror image agree;
- nucleus/cell area ratio, cytoplasm area, and the number of 8-connected nucleus pieces (lobes).

All of them are invariant to 90-degree rotations and flips of the image. A region with fewer
than two pixels gives NaN in its columns.

References
----------
Kulpa (1977). Area and perimeter measurement of blobs in discrete binary pictures.
Comput. Graph. Image Process. 6(5), 434-451. doi:10.1016/S0146-664X(77)80021-X

Pick (1899). Geometrisches zur Zahlenlehre. Sitzungsber. Lotos Prag 19, 311-319 (lattice
points of a polygon: ``A = I + B/2 - 1``).

Hu (1962). Visual pattern recognition by moment invariants. IRE Trans. Inf. Theory 8(2),
179-187. doi:10.1109/TIT.1962.1057692

Suzuki, Abe (1985). Topological structural analysis of digitized binary images by border
following. Comput. Vis. Graph. Image Process. 30(1), 32-46. doi:10.1016/0734-189X(85)90016-7
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from leukoscope.features.choices import Family
from leukoscope.features.columns import Column
from leukoscope.features.regions import CellImage, Region, region_mask

REGIONS = (Region.NUCLEUS, Region.CELL)
SMOOTHING_POINTS = 11
KULPA = np.pi / 8 * (1 + np.sqrt(2))  # Kulpa (1977): unbiased length of 8-connected chains
#: Shape feature -> (description, unit), measured on each of :data:`REGIONS`.
SHAPE: dict[str, tuple[str, str]] = {
    "area": ("number of pixels", "px^2"),
    "perimeter": ("length of the outer boundary (Kulpa's estimator on the 8-connected chain)", "px"),
    "equivalent_diameter": ("diameter of the disc of the same area, sqrt(4 area / pi)", "px"),
    "major_axis": ("major axis length of the ellipse with the same second moments", "px"),
    "minor_axis": ("minor axis length of the ellipse with the same second moments", "px"),
    "eccentricity": ("eccentricity of the ellipse with the same second moments (0 for a disc)", "1"),
    "solidity": ("area over the area of the convex hull", "1"),
    "convexity": ("perimeter of the convex hull over the perimeter", "1"),
    "circularity": ("form factor 4 pi area / perimeter^2 (about 1 for a disc)", "1"),
    "roughness": (f"RMS distance of the boundary from its {SMOOTHING_POINTS}-point moving average", "px"),
    **{f"hu_{k}": (f"Hu moment invariant {k}" + (" (absolute value)" if k == 7 else ""), "1")
       for k in range(1, 8)},
}

COLUMNS: tuple[Column, ...] = tuple(
    Column(f"morph_{feature}_{region.value}", Family.MORPHOLOGY, (region,),
           f"{description} of the {region.value}", unit)
    for region in REGIONS
    for feature, (description, unit) in SHAPE.items()
) + (
    Column("morph_area_cytoplasm", Family.MORPHOLOGY, (Region.CYTOPLASM,),
           "number of pixels of the cytoplasm", "px^2"),
    Column("morph_nc_ratio", Family.MORPHOLOGY, (Region.NUCLEUS, Region.CELL),
           "nucleus area over cell area", "1"),
    Column("morph_lobes_nucleus", Family.MORPHOLOGY, (Region.NUCLEUS,),
           "number of separate (8-connected) nucleus pieces", "count"),
)


def _kulpa(axial: int | np.ndarray, diagonal: int | np.ndarray) -> float:
    """Kulpa's length of an 8-connected chain with this many axial and diagonal steps."""
    return float(KULPA * np.sum(axial + np.sqrt(2) * diagonal))


def _chain_length(contour: np.ndarray) -> float:
    """Kulpa's perimeter of one closed 8-connected chain of points ``(K, 1, 2)``."""
    points = contour[:, 0, :]
    if len(points) < 2:
        return 0.0
    diagonal = int(np.count_nonzero(np.abs(np.diff(points, axis=0, append=points[:1])).min(axis=1)))
    return _kulpa(len(points) - diagonal, diagonal)


def convex_hull_measures(points: np.ndarray) -> tuple[int, float]:
    """Pixel count and perimeter of the digital convex hull of ``points``, exactly.

    The digital hull is the set of pixels whose centres lie in the convex hull polygon of
    ``points``. Its pixel count is the number of lattice points in the polygon, ``A + B/2 + 1``
    by Pick's theorem (``A`` the polygon area, ``B`` the lattice points on its edges); its
    boundary chain runs along each edge ``(dx, dy)`` in ``max(|dx|, |dy|)`` steps, of which
    ``min(|dx|, |dy|)`` are diagonal, measured with Kulpa's estimator like the region's own
    perimeter. Integer arithmetic throughout, so the result is the same in every orientation
    (filling the polygon with OpenCV is not symmetric under rotations and flips).

    Parameters
    ----------
    points : (K, 1, 2) or (K, 2) int ndarray
        ``(x, y)`` pixel coordinates (e.g. boundary points of a region).

    Returns
    -------
    pixels : int
        Pixels of the digital convex hull.
    perimeter : float
        Kulpa perimeter of its boundary.
    """
    vertices = cv2.convexHull(np.asarray(points, np.int32).reshape(-1, 1, 2))[:, 0, :].astype(np.int64)
    steps = np.roll(vertices, -1, axis=0) - vertices
    twice_area = abs(int(np.sum(vertices[:, 0] * steps[:, 1] - vertices[:, 1] * steps[:, 0])))
    on_edges = int(np.gcd(steps[:, 0], steps[:, 1]).sum())
    pixels = (twice_area + on_edges) // 2 + 1
    major, minor = np.abs(steps).max(axis=1), np.abs(steps).min(axis=1)
    return pixels, _kulpa(major - minor, minor)


def _roughness(contours: Sequence[np.ndarray]) -> float:
    """RMS distance of contour points from their circular moving average."""
    squared, count = 0.0, 0
    for contour in contours:
        points = contour[:, 0, :].astype(np.float64)
        half = min(SMOOTHING_POINTS // 2, (len(points) - 1) // 2)
        if half == 0:
            count += len(points)
            continue
        padded = np.concatenate([points[-half:], points, points[:half]])
        window = np.cumsum(np.concatenate([np.zeros((1, 2)), padded]), axis=0)
        smooth = (window[2 * half + 1:] - window[:-2 * half - 1]) / (2 * half + 1)
        squared += float(((points - smooth) ** 2).sum())
        count += len(points)
    return float(np.sqrt(squared / count))


def shape_features(mask: np.ndarray) -> dict[str, float]:
    """The :data:`SHAPE` features of one binary region.

    Parameters
    ----------
    mask : (H, W) bool or uint8 ndarray
        The region (any number of pieces).

    Returns
    -------
    dict of str to float
        Keyed by the :data:`SHAPE` names; all NaN for fewer than two pixels.
    """
    mask = np.ascontiguousarray(mask, dtype=np.uint8)
    area = int(np.count_nonzero(mask))
    if area < 2:
        return {name: float("nan") for name in SHAPE}
    moments = cv2.moments(mask, binaryImage=True)
    a, b, c = moments["mu20"] / area, moments["mu11"] / area, moments["mu02"] / area
    spread = np.sqrt(((a - c) / 2) ** 2 + b**2)
    major, minor = (a + c) / 2 + spread, max((a + c) / 2 - spread, 0.0)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    perimeter = sum(_chain_length(contour) for contour in contours)
    hull_pixels, hull_perimeter = convex_hull_measures(np.concatenate(contours))
    hu = cv2.HuMoments(moments).ravel()
    values = {
        "area": float(area),
        "perimeter": perimeter,
        "equivalent_diameter": float(np.sqrt(4.0 * area / np.pi)),
        "major_axis": 4.0 * float(np.sqrt(major)),
        "minor_axis": 4.0 * float(np.sqrt(minor)),
        "eccentricity": float(np.sqrt(1.0 - minor / major)) if major > 0 else float("nan"),
        "solidity": area / hull_pixels,
        "convexity": hull_perimeter / perimeter,
        "circularity": 4.0 * np.pi * area / perimeter**2,
        "roughness": _roughness(contours),
        **{f"hu_{k + 1}": float(hu[k]) for k in range(7)},
    }
    values["hu_7"] = abs(values["hu_7"])
    return {name: float(value) for name, value in values.items()}


def morphology_features(image: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Shape of the nucleus and of the cell, the cytoplasm area, N/C ratio and nucleus lobes.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB cell image (only its size is used).
    labels : (H, W) integer or bool ndarray
        0 background, 1 cytoplasm, 2 nucleus (any form
        :func:`~leukoscope.segmentation.labels.as_label_mask` reads).

    Returns
    -------
    dict of str to float
        One value per :data:`COLUMNS` name; NaN for regions with fewer than two pixels.
    """
    return measure_morphology(CellImage(image, labels))


def measure_morphology(cell: CellImage) -> dict[str, float]:
    """:func:`morphology_features` of a :class:`~leukoscope.features.regions.CellImage`."""
    labels = cell.labels
    out: dict[str, float] = {}
    for region in REGIONS:
        for name, value in shape_features(region_mask(labels, region)).items():
            out[f"morph_{name}_{region.value}"] = value
    nucleus = region_mask(labels, Region.NUCLEUS).astype(np.uint8)
    cytoplasm_area = float(np.count_nonzero(region_mask(labels, Region.CYTOPLASM)))
    nucleus_area, cell_area = out["morph_area_nucleus"], out["morph_area_cell"]
    out["morph_area_cytoplasm"] = cytoplasm_area if cytoplasm_area >= 2 else float("nan")
    out["morph_nc_ratio"] = nucleus_area / cell_area  # NaN when either region is degenerate
    out["morph_lobes_nucleus"] = (
        float(cv2.connectedComponents(nucleus, connectivity=8)[0] - 1) if nucleus_area >= 2 else float("nan")
    )
    return out
