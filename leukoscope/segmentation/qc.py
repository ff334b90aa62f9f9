"""Quality-control flags of a segmentation, and the ``qc_score`` that ranks them.

A cell may carry several flags; ``qc_flag`` joins them with ``;`` in the order of
:class:`~leukoscope.segmentation.choices.QCFlag` (empty when nothing is wrong).
``qc_score`` is the sum of the weights in :data:`QC_WEIGHTS` of the flags a cell carries:
0 is a mask with nothing to check, 1 or more a mask that is empty or very likely wrong.

The flags read from the final label mask alone (:func:`label_flags`):

- ``no_cell``: no cell pixel; ``no_nucleus``: a cell but no nucleus pixel;
- ``nucleus_inverted``: the nucleus is brighter (mean luminance, ITU-R BT.601 grey) than the
  cytoplasm; a nucleus is the darker part of a stained cell, so the labels are swapped or
  the nucleus is a pale region;
- ``nc_ratio_extreme``: nucleus/cell area ratio outside :data:`NC_RATIO_LIMITS` (almost no
  cytoplasm found, or a speck of a nucleus).

The others record what a segmentation step did (see docs/segmentation.md).
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from leukoscope.segmentation.choices import QCFlag

SEPARATOR = ";"
NC_RATIO_LIMITS = (0.05, 0.95)
QC_WEIGHTS: dict[QCFlag, float] = {
    QCFlag.BLANK_IMAGE: 1.0,
    QCFlag.NO_CELL: 1.0,
    QCFlag.NO_NUCLEUS: 1.0,
    QCFlag.NUCLEUS_INVERTED: 1.0,
    QCFlag.RING_NUCLEUS: 1.0,
    QCFlag.MULTIPLE_CELLS: 0.5,
    QCFlag.NC_RATIO_EXTREME: 0.5,
    QCFlag.NUCLEUS_INVERTED_FIXED: 0.25,
    QCFlag.DEBRIS_REMOVED: 0.25,
    QCFlag.REFINER_SKIPPED: 0.25,
}
_ORDER = {flag: index for index, flag in enumerate(QCFlag)}


def join_flags(flags: Iterable[QCFlag | str]) -> str:
    """The ``qc_flag`` text of some flags: unique, in :class:`QCFlag` order, ``;``-joined.

    Parameters
    ----------
    flags : iterable of QCFlag or str
        Flags, repeated or unordered.

    Returns
    -------
    str
        E.g. ``"multiple_cells;debris_removed"``; ``""`` for none.
    """
    return SEPARATOR.join(flag.value for flag in sorted({QCFlag(f) for f in flags}, key=_ORDER.__getitem__))


def split_flags(text: str) -> tuple[QCFlag, ...]:
    """The flags of a ``qc_flag`` text (the inverse of :func:`join_flags`).

    Raises
    ------
    ValueError
        A part is not a :class:`QCFlag` value.
    """
    return tuple(QCFlag(part) for part in text.split(SEPARATOR) if part)


def qc_score(text: str) -> float:
    """Sum of the :data:`QC_WEIGHTS` of the flags in a ``qc_flag`` text; 0.0 for none."""
    return float(sum(QC_WEIGHTS[flag] for flag in split_flags(text)))


def nucleus_contrast(image: np.ndarray, labels: np.ndarray) -> float:
    """Mean grey level of the cytoplasm minus that of the nucleus.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB image.
    labels : (H, W) uint8 ndarray
        0 background, 1 cytoplasm, 2 nucleus.

    Returns
    -------
    float
        Positive when the nucleus is the darker part, as it should be; NaN when the
        nucleus or the cytoplasm is empty.
    """
    left, top, width, height = cv2.boundingRect((labels > 0).view(np.uint8))
    box = (slice(top, top + height), slice(left, left + width))
    labels = labels[box]
    cytoplasm, nucleus = labels == 1, labels == 2
    if not (cytoplasm.any() and nucleus.any()):
        return float("nan")
    grey = cv2.cvtColor(np.ascontiguousarray(image[box]), cv2.COLOR_RGB2GRAY)
    return float(grey[cytoplasm].mean() - grey[nucleus].mean())


def label_flags(image: np.ndarray, labels: np.ndarray) -> list[QCFlag]:
    """The flags that the final labels of a cell show on their own (module docstring).

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB image.
    labels : (H, W) uint8 ndarray
        0 background, 1 cytoplasm, 2 nucleus.

    Returns
    -------
    list of QCFlag
        ``no_cell``, ``no_nucleus``, ``nucleus_inverted``, ``nc_ratio_extreme`` as they apply.
    """
    cell = int(np.count_nonzero(labels))
    if cell == 0:
        return [QCFlag.NO_CELL]
    nucleus = int(np.count_nonzero(labels == 2))
    if nucleus == 0:
        return [QCFlag.NO_NUCLEUS]
    flags = []
    if nucleus_contrast(image, labels) < 0:
        flags.append(QCFlag.NUCLEUS_INVERTED)
    low, high = NC_RATIO_LIMITS
    if not low <= nucleus / cell <= high:
        flags.append(QCFlag.NC_RATIO_EXTREME)
    return flags
