"""Single-cell cut-outs in the style of C-NMC: of detected white cells, and of expert-masked crops.

C-NMC cells are 450x450 images in which the segmented cell keeps its pixels and everything
else is black (0, 0, 0). :func:`cut_out` makes the same from a field and one
:class:`~leukoscope.segmentation.fields.Detection`, so that the rest of leukoscope
(segmentation with ``background=black``, features, classifiers) reads it as it reads C-NMC.

The rule of :func:`cut_out`:

- the cell's pixels are copied, every other pixel is black;
- a cell pixel that would read as black (every channel at most
  :data:`~leukoscope.segmentation.cell.BLACK_LEVEL`) is raised to ``BLACK_LEVEL + 1`` in each
  channel, so the black surround recovers the cell's mask exactly;
- a cell whose bounding box fits in ``size`` x ``size`` keeps its scale (no magnification);
  a larger one is scaled down, keeping its aspect, until its longer side is ``size``
  (area interpolation for the colours, the mask scaled as a fraction and cut at one half);
- the cell's bounding box is centred in the square (an odd leftover pixel goes right/below).

A cell cut by the field's edge is cut out as it is seen (its ``touches_edge`` flag says so).

The mask C-NMC's cells were cut with is seldom exact: a ring of the surrounding smear
(plasma, red cells, pieces of neighbours) often stays round the cell. :func:`expert_cutout`
makes such cut-outs from an expert-masked crop (ALL-IDB2, Zheng), for benchmarks and tests:
everything farther than ``margin`` pixels from the expert's cell mask is blacked out, and the
expert labels stay the ground truth of the cut-out.
"""

from __future__ import annotations

import cv2
import numpy as np

from leukoscope.segmentation.cell import BLACK_LEVEL, CYTOPLASM, NUCLEUS
from leukoscope.segmentation.channels import check_rgb
from leukoscope.segmentation.fields import Detection

CUTOUT_SIZE = 450  # pixels: the side of a C-NMC cell image


def cut_out(image: np.ndarray, detection: Detection, *, size: int = CUTOUT_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """One detected cell on black, centred in a ``size`` x ``size`` square.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        The RGB field the cell was detected in.
    detection : Detection
        The cell (its box must lie inside ``image``).
    size : int
        Side of the square, pixels (C-NMC: 450).

    Returns
    -------
    cell : (size, size, 3) uint8 ndarray
        The cell's pixels on black, scaled down only when its box is larger than the square.
    labels : (size, size) uint8 ndarray
        Its labels at the same place and scale: 0 black surround, 1 cytoplasm, 2 nucleus.

    Raises
    ------
    ValueError
        ``size`` is not positive, or the detection's box is not inside the image.
    """
    image = check_rgb(image)
    if size < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size}")
    x0, y0, x1, y1 = detection.box
    if x0 < 0 or y0 < 0 or x1 > image.shape[1] or y1 > image.shape[0]:
        raise ValueError(
            f"the detection's box {detection.box} does not lie in the {image.shape[1]}x{image.shape[0]} "
            "image; cut a cell out of the field it was detected in"
        )
    pixels = image[y0:y1, x0:x1]
    labels = detection.labels
    height, width = labels.shape
    factor = min(1.0, size / max(height, width))
    if factor < 1.0:
        target = (max(1, min(size, round(width * factor))), max(1, min(size, round(height * factor))))
        pixels = cv2.resize(pixels, target, interpolation=cv2.INTER_AREA)
        labels = _resize_labels(labels, target)
    cell = labels > 0
    pixels = np.where(cell[..., None], pixels, 0).astype(np.uint8)
    dark = cell & np.all(pixels <= BLACK_LEVEL, axis=2)
    pixels[dark] = BLACK_LEVEL + 1
    out = np.zeros((size, size, 3), dtype=np.uint8)
    out_labels = np.zeros((size, size), dtype=np.uint8)
    top, left = (size - labels.shape[0]) // 2, (size - labels.shape[1]) // 2
    out[top : top + labels.shape[0], left : left + labels.shape[1]] = pixels
    out_labels[top : top + labels.shape[0], left : left + labels.shape[1]] = labels
    return out, out_labels


def _resize_labels(labels: np.ndarray, target: tuple[int, int]) -> np.ndarray:
    """Scale a 0/1/2 label mask: each region's fraction by area interpolation, cut at one half."""
    cell = cv2.resize((labels > 0).astype(np.float32), target, interpolation=cv2.INTER_AREA) >= 0.5
    nucleus = cv2.resize((labels == NUCLEUS).astype(np.float32), target, interpolation=cv2.INTER_AREA) >= 0.5
    return np.where(cell & nucleus, NUCLEUS, np.where(cell, CYTOPLASM, 0)).astype(np.uint8)


def expert_cutout(image: np.ndarray, labels: np.ndarray, *, margin: int) -> np.ndarray:
    """Black out everything outside the expert cell mask dilated by ``margin`` pixels.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB crop.
    labels : (H, W) uint8 ndarray
        Expert labels, 0 background, 1 cytoplasm, 2 nucleus (any non-zero pixel is cell).
    margin : int
        Radius in pixels of the disc the cell mask is dilated with (0: the cell exactly).

    Returns
    -------
    (H, W, 3) uint8 ndarray
        A copy of ``image``, (0, 0, 0) wherever the Euclidean distance to the nearest cell
        pixel is more than ``margin`` (a dilation by the disc of pixel offsets
        ``dx**2 + dy**2 <= margin**2``).

    Raises
    ------
    ValueError
        Sizes differ, ``margin`` is negative, or the image is not RGB uint8.
    """
    image = check_rgb(image)
    labels = np.asarray(labels)
    if labels.shape != image.shape[:2]:
        raise ValueError(f"labels are {labels.shape} but the image is {image.shape[:2]}; they must match")
    if margin < 0:
        raise ValueError(f"margin must be 0 or more pixels, got {margin}")
    keep = (labels > 0).astype(np.uint8)
    if margin:
        offsets = np.arange(-margin, margin + 1)
        disc = (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= margin**2).astype(np.uint8)
        keep = cv2.dilate(keep, disc, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    out = image.copy()
    out[keep == 0] = 0
    return out
