"""White cells in whole smear fields: find every nucleated cell, ignore red cells and platelets.

A field (a photograph of a blood smear, e.g. BCCD at 640x480 or ALL-IDB1 at 2592x1944) holds
many red cells, platelets and a few white cells. :func:`detect_white_cells` finds the white
cells in five steps, all sizes in units of the red-cell diameter ``d`` (a parameter, so one
setting serves any camera once ``d`` is given in its pixels):

1. **Work resolution.** The field is scaled (area interpolation) so that ``d`` becomes
   :data:`WORK_RED_CELL` pixels (0.4 of the field's side for ``d`` = 100; never enlarged).
2. **Nuclei.** The ``stain`` channel (blue minus green, :mod:`~leukoscope.segmentation.channels`),
   Gaussian-smoothed, is split by a three-class Otsu threshold (background and red cells,
   pale stain, nuclei: Liao, Chen and Chung 2001), raised to at least the field's median plus
   ``min_nucleus_contrast`` so that a field without any white cell does not call its most
   violet red-cell rims nuclei. Nucleus pixels closer than ``lobe_gap`` are grouped (a
   morphological closing), so that the lobes of a neutrophil count as one nucleus; a group
   with less nucleus than ``min_nucleus_area`` red-cell discs is a platelet, a platelet clump
   or a sliver of a cell cut by the field's edge, and is dropped.
3. **Cytoplasm.** The ``lab_b`` channel (CIE b* turned so that blue is high: the pale
   blue-violet cytoplasm is bluer than the pink red cells and the grey background), smoothed,
   is thresholded at ``cytoplasm_level`` of the way from the field's median to
   the median over the nuclei found, opened (to drop the thin bluish rims of red cells) and
   kept within ``reach`` of a nucleus.
4. **Touching cells.** A marker-controlled watershed (Vincent and Soille 1991) on the
   cytoplasm channel, seeded by the nucleus groups, splits white cells that touch. Two
   touching regions whose common boundary is at least as long as the narrower of them is wide
   (no neck between them) are one cell cut in two, e.g. an eosinophil whose two lobes sit far
   apart, and are merged (each touching pair judged once, chains of such pairs joined).
5. **Full resolution.** Each cell's outline is carried back to the field's pixels (bilinear
   interpolation of its work-resolution mask), and its nucleus is re-thresholded there with
   the same nucleus threshold.

References
----------
Liao P-S, Chen T-S, Chung P-C. A fast algorithm for multilevel thresholding. J Inf Sci Eng
17(5):713-727, 2001.

Vincent L, Soille P. Watersheds in digital spaces: an efficient algorithm based on
immersion simulations. IEEE Trans Pattern Anal Mach Intell 13(6):583-598, 1991.
doi:10.1109/34.87344
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd
from scipy import ndimage

from leukoscope.segmentation.cell import CYTOPLASM, NUCLEUS
from leukoscope.segmentation.channels import check_rgb, extract_channel
from leukoscope.segmentation.choices import Channel
from leukoscope.segmentation.cleanup import fill_holes, remove_small_objects

WORK_RED_CELL = 40.0  # pixels: the red-cell diameter at which cells are searched
NUCLEUS_SIGMA = 1.0  # Gaussian smoothing of the stain channel, work pixels per 40-pixel red cell
CYTOPLASM_SIGMA = 1.5  # the same for the cytoplasm channel
RIM_WIDTH = 0.1  # red-cell diameters: bluish red-cell rims thinner than this are opened away
FULL_SIGMA = 1.0  # full-resolution pixels: smoothing of the stain channel when the nucleus is refined
DETECTION_COLUMNS = ["x0", "y0", "x1", "y1", "centroid_x", "centroid_y", "area", "nucleus_area", "touches_edge"]


@dataclass(frozen=True, eq=False)
class Detection:
    """One white cell found in a field (compared by identity: it holds an array).

    Attributes
    ----------
    box : (int, int, int, int)
        ``(x0, y0, x1, y1)``: columns ``x0 <= x < x1`` and rows ``y0 <= y < y1`` of the field,
        0-based, the tight bounding box of the cell's mask.
    labels : (y1 - y0, x1 - x0) uint8 ndarray
        The cell within its box: 0 outside it, 1 cytoplasm, 2 nucleus (the codes of
        :mod:`~leukoscope.segmentation.cell`).
    touches_edge : bool
        The cell reaches the field's border, so part of it may lie outside the photograph.
    """

    box: tuple[int, int, int, int]
    labels: np.ndarray
    touches_edge: bool

    @property
    def mask(self) -> np.ndarray:
        """(y1 - y0, x1 - x0) bool ndarray: the whole cell within its box."""
        return self.labels > 0

    @property
    def area(self) -> int:
        """Pixels of the whole cell."""
        return int(np.count_nonzero(self.labels))

    @property
    def nucleus_area(self) -> int:
        """Pixels of the nucleus."""
        return int(np.count_nonzero(self.labels == NUCLEUS))

    @property
    def centroid(self) -> tuple[float, float]:
        """``(x, y)``: mean column and row of the cell's pixels, in field pixels."""
        rows, cols = np.nonzero(self.labels)
        return float(self.box[0] + cols.mean()), float(self.box[1] + rows.mean())

    def contains(self, x: float, y: float) -> bool:
        """Whether field point ``(x, y)`` (pixel centres at integers) lies in the cell's mask."""
        col, row = int(round(x)) - self.box[0], int(round(y)) - self.box[1]
        inside = 0 <= row < self.labels.shape[0] and 0 <= col < self.labels.shape[1]
        return bool(inside and self.labels[row, col] > 0)

    def row(self) -> dict[str, float | int | bool]:
        """One table row: box, centroid, areas and edge flag (see :data:`DETECTION_COLUMNS`)."""
        x0, y0, x1, y1 = self.box
        centroid_x, centroid_y = self.centroid
        return {"x0": x0, "y0": y0, "x1": x1, "y1": y1, "centroid_x": centroid_x, "centroid_y": centroid_y,
                "area": self.area, "nucleus_area": self.nucleus_area, "touches_edge": self.touches_edge}


def detections_frame(detections: list[Detection]) -> pd.DataFrame:
    """The detections of one field as a table, one row each, columns :data:`DETECTION_COLUMNS`."""
    return pd.DataFrame([detection.row() for detection in detections], columns=DETECTION_COLUMNS)


def _disc(radius: float) -> np.ndarray:
    radius = max(1, int(round(radius)))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _smoothed(image: np.ndarray, channel: Channel, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(extract_channel(image, channel), (0, 0), sigma)


def _median(values: np.ndarray) -> float:
    """Median of uint8 values from their histogram (the lower middle value of an even count)."""
    counts = np.cumsum(np.bincount(values.ravel(), minlength=256))
    return float(np.searchsorted(counts, (int(counts[-1]) + 1) // 2))


def nucleus_threshold(stain: np.ndarray, *, min_contrast: float) -> float:
    """Upper threshold of a three-class Otsu split, at least ``min_contrast`` over the median.

    Parameters
    ----------
    stain : (H, W) uint8 ndarray
        The (smoothed) stain channel of a whole field.
    min_contrast : float
        Least height of a nucleus over the field's median, in channel units.

    Returns
    -------
    float
        Nucleus pixels are those above it. A field of fewer than three distinct values gets
        its median plus ``min_contrast``.
    """
    from skimage.filters import threshold_multiotsu

    floor = _median(stain) + min_contrast
    try:
        return max(float(threshold_multiotsu(stain, classes=3)[1]), floor)
    except ValueError:  # skimage: fewer distinct values than classes
        return floor


def _nucleus_groups(nucleus: np.ndarray, *, gap: float, min_area: float) -> np.ndarray:
    """Markers (int32, 1..n) of nucleus pixel groups with at least ``min_area`` nucleus pixels."""
    grouped = nucleus.view(np.uint8)
    if round(gap / 2.0) >= 1:
        grouped = cv2.morphologyEx(grouped, cv2.MORPH_CLOSE, _disc(gap / 2.0))
    count, groups = cv2.connectedComponents(grouped, connectivity=8)
    area = np.bincount(groups[nucleus], minlength=count)
    keep = area >= min_area
    keep[0] = False
    new_id = np.cumsum(keep).astype(np.int32) * keep
    return np.where(nucleus, new_id[groups], 0).astype(np.int32)


def _cell_regions(cytoplasm: np.ndarray, markers: np.ndarray, *, level: float, reach: float, rim: float) -> np.ndarray:
    """Watershed of the cytoplasm channel seeded by the nuclei, within the cytoplasm mask.

    The watershed runs on each connected piece of the mask in its bounding box, so its cost
    follows the area of the cells rather than that of the field.
    """
    from skimage.segmentation import watershed

    nuclei = markers > 0
    background = _median(cytoplasm)
    threshold = background + level * (_median(cytoplasm[nuclei]) - background)
    stained = cv2.morphologyEx((cytoplasm > threshold).view(np.uint8), cv2.MORPH_OPEN, _disc(rim))
    to_nucleus = cv2.distanceTransform((~nuclei).view(np.uint8), cv2.DIST_L2, 5)
    region = (stained > 0) & (to_nucleus <= reach) | nuclei
    regions = np.zeros(markers.shape, dtype=np.int32)
    count, pieces, stats, _ = cv2.connectedComponentsWithStats(region.view(np.uint8), connectivity=8)
    for piece in range(1, count):
        left, top, width, height = stats[piece, :4]
        window = (slice(top, top + height), slice(left, left + width))
        inside = pieces[window] == piece
        basins = watershed(-cytoplasm[window].astype(np.float32), np.where(inside, markers[window], 0), mask=inside)
        regions[window][inside] = basins[inside]
    return regions


def _padded(window: tuple[slice, slice], pad: int, shape: tuple[int, ...]) -> tuple[slice, slice]:
    rows, cols = window
    return (slice(max(0, rows.start - pad), min(shape[0], rows.stop + pad)),
            slice(max(0, cols.start - pad), min(shape[1], cols.stop + pad)))


def _width(mask: np.ndarray) -> float:
    """Diameter of the largest disc inside a mask."""
    padded = cv2.copyMakeBorder(mask.view(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    return 2.0 * float(cv2.distanceTransform(padded, cv2.DIST_L2, 5).max())


def _merge_without_neck(regions: np.ndarray) -> np.ndarray:
    """Merge touching regions whose contact is at least as long as the narrower one is wide.

    Every touching pair is judged on the regions as the watershed left them; regions joined
    through a chain of such pairs become one (the lowest label).
    """
    windows = ndimage.find_objects(regions)
    widths = [_width(regions[w] == label) if w is not None else 0.0 for label, w in enumerate(windows, start=1)]
    parent = np.arange(len(windows) + 1)
    for label, window in enumerate(windows, start=1):
        if window is None:
            continue
        local = regions[_padded(window, 1, regions.shape)]
        here = local == label
        ring = (cv2.dilate(here.view(np.uint8), np.ones((3, 3), np.uint8)) > 0) & ~here
        for other in np.unique(local[ring]):
            if other <= label:  # the background, or a pair already judged from the other side
                continue
            rows, cols = np.nonzero(ring & (local == other))
            contact = math.hypot(np.ptp(rows), np.ptp(cols)) + 1.0
            if contact >= min(widths[label - 1], widths[other - 1]):
                low, high = sorted((_root(parent, label), _root(parent, other)))
                parent[high] = low
    roots = np.array([_root(parent, label) for label in range(len(parent))], dtype=np.int32)
    return roots[regions]


def _root(parent: np.ndarray, label: int) -> int:
    while parent[label] != label:
        label = parent[label]
    return int(label)


def _full_resolution(
    image: np.ndarray, region: np.ndarray, offset: tuple[int, int], scale: tuple[float, float], threshold: float
) -> Detection | None:
    """A cell's work-resolution mask (``region``, its top-left corner at work pixel ``offset``
    = (row, col)) as a field-resolution detection with its nucleus."""
    height, width = image.shape[:2]
    scale_x, scale_y = scale
    top, left = offset
    bottom, right = top + region.shape[0], left + region.shape[1]
    x0, x1 = max(0, int(left / scale_x)), min(width, int(math.ceil(right / scale_x)))
    y0, y1 = max(0, int(top / scale_y)), min(height, int(math.ceil(bottom / scale_y)))
    # field pixel centre (x + 0.5) sits at work coordinate (x + 0.5) * scale - 0.5
    warp = np.array([[scale_x, 0.0, (x0 + 0.5) * scale_x - 0.5 - left],
                     [0.0, scale_y, (y0 + 0.5) * scale_y - 0.5 - top]])
    cell = cv2.warpAffine(region.astype(np.float32), warp, (x1 - x0, y1 - y0),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT) > 0.5
    cell = fill_holes(cell)
    if not cell.any():
        return None
    stain = cv2.GaussianBlur(extract_channel(image[y0:y1, x0:x1], Channel.STAIN), (0, 0), FULL_SIGMA)
    min_size = max(1, int(round(1.0 / (scale_x * scale_y))))  # one work pixel
    nucleus = fill_holes(remove_small_objects((stain > threshold) & cell, min_size=min_size)) & cell
    box_left, box_top, box_width, box_height = cv2.boundingRect(cell.view(np.uint8))
    labels = np.where(nucleus, NUCLEUS, np.where(cell, CYTOPLASM, 0)).astype(np.uint8)
    labels = labels[box_top : box_top + box_height, box_left : box_left + box_width]
    box = (x0 + box_left, y0 + box_top, x0 + box_left + box_width, y0 + box_top + box_height)
    touches_edge = box[0] == 0 or box[1] == 0 or box[2] == width or box[3] == height
    return Detection(box=box, labels=labels, touches_edge=bool(touches_edge))


def detect_white_cells(
    image: np.ndarray,
    *,
    red_cell_diameter: float = 100.0,
    min_nucleus_area: float = 0.4,
    min_nucleus_contrast: float = 40.0,
    lobe_gap: float = 0.05,
    cytoplasm_level: float = 0.12,
    reach: float = 0.6,
) -> list[Detection]:
    """Every nucleated white cell of a smear field, red cells and platelets left out.

    The method is in the module docstring; docs/fields.md gives its BCCD scores.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB field (Giemsa/Wright-type stain: pink red cells, violet nuclei).
    red_cell_diameter : float
        Typical red-cell diameter in the field's pixels; every size below is a multiple of
        it. The default suits BCCD's 640x480 fields (the median side of its 3,350 red-cell
        boxes is 104 pixels, ``bench/fields.py``); for ALL-IDB1's fields use 60
        (docs/fields.md); for another camera measure a few red cells and pass their mean.
    min_nucleus_area : float
        Least nucleus area of a white cell, in red-cell discs (pi d^2 / 4). Smaller groups of
        stained pixels are platelets, platelet clumps or slivers of cells at the field's edge.
    min_nucleus_contrast : float
        Least height of nucleus pixels over the field's median ``stain`` value (blue minus
        green, 0-255 units).
    lobe_gap : float
        Nucleus pieces closer than this (red-cell diameters) belong to one nucleus; lobes
        farther apart are joined by the neck rule (step 4).
    cytoplasm_level : float
        The cytoplasm threshold, as a fraction of the way from the field's median ``lab_b``
        value to the median over the nuclei.
    reach : float
        Farthest a cell extends from its nucleus, in red-cell diameters.

    Returns
    -------
    list of Detection
        In the order of their nuclei's first pixel (row by row); empty when none is found.

    Raises
    ------
    ValueError
        ``image`` is not an (H, W, 3) uint8 array, or a size is not positive.
    """
    image = check_rgb(image)
    if not red_cell_diameter > 0 or not reach > 0 or not lobe_gap >= 0:
        raise ValueError(
            f"red_cell_diameter ({red_cell_diameter}) and reach ({reach}) must be positive and lobe_gap "
            f"({lobe_gap}) not negative; give the red-cell diameter in the field's pixels"
        )
    height, width = image.shape[:2]
    factor = min(1.0, WORK_RED_CELL / red_cell_diameter)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA) if factor < 1.0 else image
    scale = (size[0] / width, size[1] / height)
    diameter = red_cell_diameter * factor  # of a red cell at work resolution, pixels
    smoothing = diameter / WORK_RED_CELL

    stain = _smoothed(small, Channel.STAIN, NUCLEUS_SIGMA * smoothing)
    threshold = nucleus_threshold(stain, min_contrast=min_nucleus_contrast)
    disc_area = math.pi / 4.0 * diameter**2
    markers = _nucleus_groups(stain > threshold, gap=lobe_gap * diameter, min_area=min_nucleus_area * disc_area)
    if not markers.any():
        return []
    cytoplasm = _smoothed(small, Channel.LAB_B, CYTOPLASM_SIGMA * smoothing)
    regions = _cell_regions(cytoplasm, markers, level=cytoplasm_level, reach=reach * diameter, rim=RIM_WIDTH * diameter)
    regions = _merge_without_neck(regions)
    detections = []
    for label, window in enumerate(ndimage.find_objects(regions), start=1):
        if window is not None:
            window = _padded(window, 2, regions.shape)
            offset = (window[0].start, window[1].start)
            detection = _full_resolution(image, regions[window] == label, offset, scale, threshold)
            detections += [detection] if detection is not None else []
    return detections
