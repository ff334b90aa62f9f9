"""The nucleus inside a cell mask: a threshold, then polarity and shape checks.

The nucleus is every object of at least ``min_size`` pixels above the threshold of the
nucleus channel computed on the cell's pixels only (lobed nuclei keep all their lobes),
holes filled. Two checks catch a threshold that picked the wrong class:

- **polarity**: the nucleus is the darker, more stained part of a cell. A "nucleus" brighter
  than the rest of the cell (:func:`~leukoscope.segmentation.qc.nucleus_contrast` < 0) is the
  pale or bluish part: on some cells the stain channel is highest on bluish cytoplasm and on
  the halo at the cell's edge.
- **ring**: before its holes are filled, the thresholded nucleus encloses most of the rest of
  the cell (holes of at least :data:`RING_HOLE_SHARE` of the cell pixels outside it): it is
  the cell's rim, and filling it would call the whole cell nucleus.

A nucleus failing either is thresholded again on :data:`FALLBACK_CHANNEL` (luminance, whose
dark class is the nucleus whatever the hue); the second result is kept, with the flag
``nucleus_inverted_fixed``, if it passes both checks. Otherwise the first result is kept
with ``nucleus_inverted`` or ``ring_nucleus``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from leukoscope.segmentation.channels import extract_channel
from leukoscope.segmentation.choices import Channel, Enhancement, QCFlag, ThresholdMethod
from leukoscope.segmentation.cleanup import fill_holes, remove_small_objects
from leukoscope.segmentation.enhance import enhance_channel
from leukoscope.segmentation.qc import nucleus_contrast
from leukoscope.segmentation.threshold import compute_threshold

RING_HOLE_SHARE = 0.5
FALLBACK_CHANNEL = Channel.GRAY  # STAIN when the nucleus channel is GRAY itself


@dataclass(frozen=True)
class Nucleus:
    """A nucleus mask inside a cell and how it was found.

    Attributes
    ----------
    mask : (H, W) bool ndarray
        The nucleus, holes filled, inside the cell.
    threshold : float
        Threshold of the (enhanced) channel that gave ``mask``.
    flag : QCFlag or None
        ``nucleus_inverted_fixed``, ``nucleus_inverted``, ``ring_nucleus`` or None.
    seed : (H, W) bool ndarray
        Every pixel that either threshold called nucleus (``mask`` itself when the first
        passed): stained parts of the white cell, which seed the red-cell split.
    """

    mask: np.ndarray
    threshold: float
    flag: QCFlag | None
    seed: np.ndarray


def _threshold(image, cell, channel, method, enhance, min_size) -> tuple[np.ndarray, np.ndarray, float]:
    """(raw objects, holes filled, threshold) of one channel inside the cell."""
    values = enhance_channel(extract_channel(image, channel), enhance, mask=cell)
    threshold = compute_threshold(values[cell], method)
    raw = remove_small_objects((values > threshold) & cell, min_size=min_size)
    return raw, fill_holes(raw), threshold


def _problem(image: np.ndarray, cell: np.ndarray, raw: np.ndarray, filled: np.ndarray) -> QCFlag | None:
    """``ring_nucleus`` or ``nucleus_inverted`` when the nucleus fails a check, else None."""
    if not raw.any():
        return None
    holes = int(np.count_nonzero(filled & ~raw))
    if holes and holes >= RING_HOLE_SHARE * np.count_nonzero(cell & ~raw):
        return QCFlag.RING_NUCLEUS
    labels = cell.astype(np.uint8)
    labels[filled] = 2
    return QCFlag.NUCLEUS_INVERTED if nucleus_contrast(image, labels) < 0 else None


def find_nucleus(
    image: np.ndarray,
    cell: np.ndarray,
    *,
    channel: Channel | str,
    method: ThresholdMethod | str,
    enhance: Enhancement | str,
    min_size: int,
) -> Nucleus:
    """Threshold the nucleus inside a cell, checked and if need be corrected (module docstring).

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB image (or the cell's bounding box).
    cell : (H, W) bool ndarray
        The cell mask (not empty).
    channel, method, enhance
        Nucleus channel, threshold method and enhancement (statistics within the cell).
    min_size : int
        Smallest nucleus object kept, in pixels.

    Returns
    -------
    Nucleus
        The mask (possibly empty), its threshold and the flag of the checks.
    """
    raw, filled, threshold = _threshold(image, cell, channel, method, enhance, min_size)
    problem = _problem(image, cell, raw, filled)
    if problem is None:
        return Nucleus(filled, threshold, None, filled)
    fallback = Channel.STAIN if Channel(channel) is FALLBACK_CHANNEL else FALLBACK_CHANNEL
    raw2, filled2, threshold2 = _threshold(image, cell, fallback, method, enhance, min_size)
    if raw2.any() and _problem(image, cell, raw2, filled2) is None:
        return Nucleus(filled2, threshold2, QCFlag.NUCLEUS_INVERTED_FIXED, filled | filled2)
    return Nucleus(filled, threshold, problem, filled | filled2)
