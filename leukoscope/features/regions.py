"""The three cell regions read from a label image, and the input checks all families share.

A label image holds 0 (background), 1 (cytoplasm) and 2 (nucleus). Every family measures
the nucleus, the cytoplasm and the whole cell (cytoplasm or nucleus) where that makes sense,
and every family calls :func:`check_inputs` first, so any integer or boolean label mask is
read the same way (:func:`~leukoscope.segmentation.labels.as_label_mask`) and a wrong array
fails the same way everywhere.
"""

from __future__ import annotations

from enum import Enum
from functools import cached_property

import cv2
import numpy as np

from leukoscope.segmentation.channels import check_rgb
from leukoscope.segmentation.labels import BACKGROUND, CYTOPLASM, NUCLEUS, as_label_mask


class Region(str, Enum):
    """A part of the cell; the value is the name used in feature columns."""

    NUCLEUS = "nucleus"
    CYTOPLASM = "cytoplasm"
    CELL = "cell"


#: Label values that make up each region.
REGION_LABELS: dict[Region, tuple[int, ...]] = {
    Region.NUCLEUS: (NUCLEUS,),
    Region.CYTOPLASM: (CYTOPLASM,),
    Region.CELL: (CYTOPLASM, NUCLEUS),
}


class RegionStatus(str, Enum):
    """Whether a region can be measured; anything but ``OK`` is degenerate for some family."""

    OK = "ok"
    EMPTY = "empty"
    ONE_PIXEL = "one_pixel"
    FLAT = "flat"


def check_inputs(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Raise ``ValueError`` unless ``image`` and ``labels`` form a valid cell; return the labels as uint8.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        The image to check.
    labels : (H, W) integer or bool ndarray
        The mask to check: the image's height and width, values 0, 1 and 2 only, in any form
        :func:`~leukoscope.segmentation.labels.as_label_mask` reads.

    Returns
    -------
    (H, W) uint8 ndarray
        ``labels`` as :func:`~leukoscope.segmentation.labels.as_label_mask` returns them (a
        uint8 array unchanged).
    """
    check_rgb(image)
    labels = as_label_mask(labels)
    if labels.shape != image.shape[:2]:
        raise ValueError(f"labels are {labels.shape[0]}x{labels.shape[1]} but the image is "
                         f"{image.shape[0]}x{image.shape[1]}; they must have the same size")
    return labels


def to_gray(image: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B), rounded.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray

    Returns
    -------
    gray : (H, W) uint8 ndarray
    """
    if image.size == 0:  # OpenCV rejects empty arrays
        return np.zeros(image.shape[:2], np.uint8)
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def joint_histogram(first: np.ndarray, second: np.ndarray, *, bins: tuple[int, int]) -> np.ndarray:
    """Counts of every pair of values ``(first[p], second[p])`` over the pixels ``p``.

    OpenCV's histogram, several times faster than ``np.bincount`` of combined codes. Its float32
    counts are exact up to 2**24 per bin, which no image within ``read_image``'s 4096 x 4096
    limit exceeds.

    Parameters
    ----------
    first, second : (H, W) uint8 or uint16 ndarray
        Values below ``bins[0]`` and ``bins[1]``, both of the same dtype; views with strides
        are fine.
    bins : (int, int)
        Number of values of each.

    Returns
    -------
    counts : (bins[0], bins[1]) int64 ndarray
    """
    if first.size == 0:  # OpenCV rejects empty arrays
        return np.zeros(bins, np.int64)
    counts = cv2.calcHist([first, second], [0, 1], None, list(bins), [0, bins[0], 0, bins[1]])
    return counts.astype(np.int64)


def label_histograms(labels: np.ndarray, plane: np.ndarray) -> np.ndarray:
    """256-bin histograms of an 8-bit ``plane`` over each label.

    Parameters
    ----------
    labels : (H, W) uint8 ndarray
        0 background, 1 cytoplasm, 2 nucleus.
    plane : (H, W) uint8 ndarray
        The values counted.

    Returns
    -------
    hist : (3, 256) int64 ndarray
        Row ``k`` counts the values of the pixels labelled ``k``.
    """
    return joint_histogram(labels, plane, bins=(3, 256))


class CellImage:
    """One cell's image and labels with the conversions every family shares, each made once.

    The grey, HSV and L*a*b* images, the contiguous planes of all of them and the per-label
    histogram of each plane are computed on first use and kept, so
    :func:`~leukoscope.features.registry.compute_features` converts and counts each cell once
    whatever the families. Build it from the arrays cropped to the cell
    (:func:`crop_to_cell`); the arrays are checked by :func:`check_inputs`.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB cell image.
    labels : (H, W) integer or bool ndarray
        0 background, 1 cytoplasm, 2 nucleus (see
        :func:`~leukoscope.segmentation.labels.as_label_mask`); kept as uint8.
    """

    def __init__(self, image: np.ndarray, labels: np.ndarray) -> None:
        self.image, self.labels = image, check_inputs(image, labels)
        self._histograms: dict[str, np.ndarray] = {}

    @cached_property
    def gray(self) -> np.ndarray:
        """BT.601 grey image, ``(H, W) uint8`` (see :func:`to_gray`)."""
        return to_gray(self.image)

    @cached_property
    def hsv(self) -> np.ndarray:
        """OpenCV's 8-bit HSV with the hue in 256 steps per turn (``HSV_FULL``), ``(H, W, 3) uint8``."""
        return cv2.cvtColor(self.image, cv2.COLOR_RGB2HSV_FULL) if self.image.size else self.image

    @cached_property
    def lab(self) -> np.ndarray:
        """OpenCV's 8-bit CIE L*a*b* (D65; L* * 255 / 100, a* + 128, b* + 128), ``(H, W, 3) uint8``."""
        return cv2.cvtColor(self.image, cv2.COLOR_RGB2Lab) if self.image.size else self.image

    @cached_property
    def planes(self) -> dict[str, np.ndarray]:
        """Contiguous ``(H, W) uint8`` planes, by name: ``gray`` (:attr:`gray`), ``red, green,
        blue`` of the image, ``lab_l, lab_a, lab_b`` of :attr:`lab` and ``hue, saturation,
        value`` of :attr:`hsv`."""
        names = ("red", "green", "blue", "lab_l", "lab_a", "lab_b", "hue", "saturation", "value")
        if not self.image.size:
            return {"gray": self.gray, **dict.fromkeys(names, self.labels)}
        split = (*cv2.split(self.image), *cv2.split(self.lab), *cv2.split(self.hsv))
        return {"gray": self.gray, **dict(zip(names, split))}

    def histograms(self, plane: str) -> np.ndarray:
        """Per-label histograms of one of :attr:`planes`, ``(3, 256) int64`` (see
        :func:`label_histograms`), counted once."""
        if plane not in self._histograms:
            self._histograms[plane] = label_histograms(self.labels, self.planes[plane])
        return self._histograms[plane]


def region_mask(labels: np.ndarray, region: Region) -> np.ndarray:
    """Boolean mask of ``region``: ``(H, W) bool ndarray``."""
    if region is Region.CELL:
        return labels > BACKGROUND
    return labels == REGION_LABELS[region][0]


def crop_to_cell(image: np.ndarray, labels: np.ndarray, *, pad: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Crop both arrays to the bounding box of the cell, plus ``pad`` pixels where the image allows.

    Every family is translation invariant and ignores background pixels, so its values are the
    same on the crop; only the work shrinks. An image without cell pixels gives a 0x0 crop.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
    labels : (H, W) uint8 ndarray
    pad : int
        Background margin kept around the cell (contours need one).

    Returns
    -------
    image : (h, w, 3) uint8 ndarray
    labels : (h, w) uint8 ndarray
    """
    left, top, width, height = cv2.boundingRect(labels)  # of the non-zero pixels
    if width == 0:
        return image[:0, :0], labels[:0, :0]
    bottom, right = min(top + height + pad, labels.shape[0]), min(left + width + pad, labels.shape[1])
    top, left = max(top - pad, 0), max(left - pad, 0)
    return image[top:bottom, left:right], labels[top:bottom, left:right]


def region_statuses(cell: CellImage) -> dict[Region, RegionStatus]:
    """Whether each region of ``cell`` is empty, a single pixel, flat (one grey value) or measurable."""
    hist = cell.histograms("gray")
    statuses = {}
    for region, values in REGION_LABELS.items():
        counts = hist[list(values)].sum(axis=0)
        total = int(counts.sum())
        if total == 0:
            statuses[region] = RegionStatus.EMPTY
        elif total == 1:
            statuses[region] = RegionStatus.ONE_PIXEL
        elif np.count_nonzero(counts) == 1:
            statuses[region] = RegionStatus.FLAT
        else:
            statuses[region] = RegionStatus.OK
    return statuses
