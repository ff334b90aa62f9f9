"""Whole-cell and nucleus masks of one single-cell image by global thresholds.

Two kinds of input are handled (:class:`Background`):

- ``black``: C-NMC cells, already cut out and set on black (0, 0, 0). The cell is the main
  cell of the non-black region (any channel above :data:`BLACK_LEVEL`): without a surround of
  smear, fragments, red cells or neighbouring cells (:func:`~leukoscope.segmentation.maincell.main_cell`);
  the work is done on the region's bounding box only.
- ``smear``: crops with the stained smear and red cells around the white cell (ALL-IDB2,
  Zheng). The cell is the thresholded ``cell_channel``, cleaned (the object at or nearest the
  image centre, objects under ``min_size`` pixels dropped, holes filled); a non-convex result
  is split from touching red cells (:func:`~leukoscope.segmentation.split.split_touching`).

In both, the nucleus is thresholded on the pixels of the cell only, and checked and if need
be corrected (:func:`~leukoscope.segmentation.nucleus.find_nucleus`). Cytoplasm = cell minus
nucleus. The QC flags and score are those of :mod:`~leukoscope.segmentation.qc`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

import cv2
import numpy as np

from leukoscope.segmentation.channels import check_rgb, extract_channel
from leukoscope.segmentation.choices import Background, Channel, Enhancement, QCFlag, ThresholdMethod
from leukoscope.segmentation.cleanup import clean_mask
from leukoscope.segmentation.enhance import enhance_channel
from leukoscope.segmentation.labels import CYTOPLASM, NUCLEUS
from leukoscope.segmentation.maincell import main_cell
from leukoscope.segmentation.nucleus import find_nucleus
from leukoscope.segmentation.qc import join_flags, label_flags, qc_score
from leukoscope.segmentation.split import split_touching
from leukoscope.segmentation.threshold import compute_threshold

BLACK_LEVEL = 10  # a pixel whose channels are all <= this is C-NMC's black surround
BLANK_RANGE = 8  # an image whose pixels all lie this close to its first pixel holds no cell


class _NucleusOptions(TypedDict):
    """The nucleus thresholding options :func:`main_cell` and :func:`find_nucleus` both take."""

    channel: Channel | str
    method: ThresholdMethod | str
    enhance: Enhancement | str
    min_size: int


@dataclass(frozen=True)
class SegmentationResult:
    """Label mask and measurements of one cell.

    Attributes
    ----------
    labels : (H, W) uint8 ndarray
        0 background, 1 cytoplasm, 2 nucleus.
    background : Background
        The kind of surround used (``black`` or ``smear``; never ``auto``).
    cell_threshold : float
        Threshold of the (enhanced) cell channel; :data:`BLACK_LEVEL` for black
        surrounds; NaN when not reached.
    nucleus_threshold : float
        Threshold of the (enhanced) nucleus channel within the cell; NaN when not reached.
    qc_flag : str
        The :class:`QCFlag` values that apply, ``;``-joined (:func:`~leukoscope.segmentation.qc.join_flags`);
        empty when there is nothing to check.
    excluded_area : int
        Pixels cut away from the cell region: for ``black``, non-black pixels outside the
        cell (smear, fragments, red cells, other cells); for ``smear``, the pixels of the
        thresholded cell that the red-cell split removed.
    """

    labels: np.ndarray
    background: Background
    cell_threshold: float
    nucleus_threshold: float
    qc_flag: str
    excluded_area: int = 0

    @property
    def cell_area(self) -> int:
        """Pixels of the whole cell (cytoplasm and nucleus)."""
        return int(np.count_nonzero(self.labels))

    @property
    def nucleus_area(self) -> int:
        """Pixels of the nucleus."""
        return int(np.count_nonzero(self.labels == NUCLEUS))

    @property
    def qc_score(self) -> float:
        """0 when nothing is flagged, higher when more doubtful (:func:`~leukoscope.segmentation.qc.qc_score`)."""
        return qc_score(self.qc_flag)

    def measurements(self) -> dict[str, float | int | str]:
        """One table row: surround, thresholds, areas, nucleus/cell area ratio, QC flag and
        score, excluded area."""
        cell, nucleus = self.cell_area, self.nucleus_area
        return {
            "background": self.background.value,
            "cell_threshold": self.cell_threshold,
            "nucleus_threshold": self.nucleus_threshold,
            "cell_area": cell,
            "nucleus_area": nucleus,
            "cytoplasm_area": cell - nucleus,
            "nucleus_cell_ratio": nucleus / cell if cell else float("nan"),
            "qc_flag": self.qc_flag,
            "qc_score": self.qc_score,
            "excluded_area": self.excluded_area,
        }


def is_blank(image: np.ndarray) -> bool:
    """True when every pixel is within :data:`BLANK_RANGE` of the first pixel in every channel.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB image (all black, all white or any flat colour is blank).
    """
    image = check_rgb(image)
    first = image[0, 0].astype(int)
    low = tuple(int(v) for v in np.clip(first - BLANK_RANGE, 0, 255))
    high = tuple(int(v) for v in np.clip(first + BLANK_RANGE, 0, 255))
    return cv2.countNonZero(cv2.inRange(image, low, high)) == image.shape[0] * image.shape[1]


def detect_background(image: np.ndarray) -> Background:
    """``black`` when at least half of the border pixels are black, else ``smear``.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB image. C-NMC cells sit on black, which fills their border; smear crops have
        no black border.

    Returns
    -------
    Background
        ``Background.BLACK`` or ``Background.SMEAR``.
    """
    image = check_rgb(image)
    border = np.concatenate([image[0], image[-1], image[1:-1, 0], image[1:-1, -1]])
    black = np.all(border <= BLACK_LEVEL, axis=1)
    return Background.BLACK if np.mean(black) >= 0.5 else Background.SMEAR


def _empty(
    shape: tuple[int, ...], background: Background, flag: QCFlag, cell_threshold: float = float("nan")
) -> SegmentationResult:
    return SegmentationResult(
        labels=np.zeros(shape[:2], dtype=np.uint8),
        background=background,
        cell_threshold=cell_threshold,
        nucleus_threshold=float("nan"),
        qc_flag=flag.value,
    )


def segment_cell(
    image: np.ndarray,
    *,
    nucleus_channel: Channel | str = Channel.STAIN,
    nucleus_method: ThresholdMethod | str = ThresholdMethod.OTSU,
    cell_channel: Channel | str = Channel.LAB_B,
    cell_method: ThresholdMethod | str = ThresholdMethod.TRIANGLE,
    enhance: Enhancement | str = Enhancement.NONE,
    background: Background | str = Background.AUTO,
    min_size: int = 64,
    split_solidity: float = 0.9,
) -> SegmentationResult:
    """Segment the whole cell and its nucleus.

    The defaults are those of :class:`~leukoscope.pipeline.config.SegmentationConfig`, the
    configuration measured best over ALL-IDB2 and both Zheng sets (docs/segmentation.md).

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB single-cell image, the cell near the centre.
    nucleus_channel, cell_channel : Channel or str
        Channels thresholded for the nucleus and (smear only) the whole cell.
    nucleus_method, cell_method : ThresholdMethod or str
        ``otsu``, ``triangle`` or ``zack`` (the same as ``triangle``).
    enhance : Enhancement or str
        Contrast enhancement applied to both channels before thresholding (statistics of
        the nucleus channel taken within the cell).
    background : Background or str
        ``black`` (C-NMC), ``smear`` (ALL-IDB2, Zheng) or ``auto``
        (:func:`detect_background`).
    min_size : int
        Objects smaller than this many pixels are dropped from both masks.
    split_solidity : float
        Smear cell masks less solid than this are split from touching red cells; on black,
        a main cell object less solid than this is cut at its necks. 0 never splits.

    Returns
    -------
    SegmentationResult
        Labels, thresholds, QC flags and the excluded area. A blank image, or one where no
        cell or no nucleus is found, gives an empty (or nucleus-less) mask and a ``qc_flag``;
        it never raises.

    Raises
    ------
    ValueError
        ``image`` is not an (H, W, 3) uint8 array, or an option is not a known value.
    """
    image = check_rgb(image)
    background = Background(background)
    if is_blank(image):
        resolved = Background.SMEAR if background is Background.AUTO else background
        return _empty(image.shape, resolved, QCFlag.BLANK_IMAGE)
    if background is Background.AUTO:
        background = detect_background(image)
    nucleus_options: _NucleusOptions = {"channel": nucleus_channel, "method": nucleus_method, "enhance": enhance,
                                         "min_size": min_size}
    flags: list[QCFlag] = []
    if background is Background.BLACK:
        black = (0, 0, 0), (BLACK_LEVEL, BLACK_LEVEL, BLACK_LEVEL)
        foreground = (cv2.inRange(image, *black) == 0).view(np.uint8)
        left, top, width, height = cv2.boundingRect(foreground)
        if width == 0:
            return _empty(image.shape, background, QCFlag.NO_CELL, float(BLACK_LEVEL))
        window = (slice(top, top + height), slice(left, left + width))
        crop, region = image[window], foreground[window] > 0
        cell_threshold = float(BLACK_LEVEL)
        center = ((image.shape[0] - 1) / 2.0 - top, (image.shape[1] - 1) / 2.0 - left)
        found = main_cell(crop, region, center=center, split_solidity=split_solidity, **nucleus_options)
        cell, nucleus = found.mask, found.nucleus
        flags.extend(found.flags)
    else:
        window = (slice(None), slice(None))
        crop = image
        channel = enhance_channel(extract_channel(crop, cell_channel), enhance)
        cell_threshold = compute_threshold(channel, cell_method)
        cell = region = clean_mask(channel > cell_threshold, min_size=min_size)
        nucleus = None
    if not cell.any():
        return _empty(image.shape, background, QCFlag.NO_CELL, cell_threshold)

    if nucleus is None:
        nucleus = find_nucleus(crop, cell, **nucleus_options)
    if nucleus.flag is not None:
        flags.append(nucleus.flag)
    if background is Background.SMEAR:
        cell = split_touching(cell, nucleus.seed, min_solidity=split_solidity)

    labels = np.zeros(image.shape[:2], dtype=np.uint8)
    inner = labels[window]
    inner[cell] = CYTOPLASM
    inner[nucleus.mask] = NUCLEUS
    flags.extend(label_flags(crop, inner))
    return SegmentationResult(
        labels=labels,
        background=background,
        cell_threshold=cell_threshold,
        nucleus_threshold=nucleus.threshold,
        qc_flag=join_flags(flags),
        excluded_area=int(np.count_nonzero(region & ~cell)),
    )
