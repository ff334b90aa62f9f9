"""Colour of the pixels around a cell, for the confound check only (not a handcrafted family).

A crop of a smear holds the cell and some of its surroundings: plasma, red cells, the slide's
stain and illumination. When ALL and HEM crops were taken from different slides, fields or
sessions, the surroundings alone may tell them apart, and a classifier may learn the slide
instead of the cell. Training a classifier on these features only, and comparing it with the
majority baseline (:func:`leukoscope.classifiers.baselines.confound_verdict`), measures that
risk. They describe nothing about the cell and are never part of ``handcrafted.csv``.

Surround pixels: label 0 (outside the cell mask) and not black (some channel above
:data:`~leukoscope.segmentation.cell.BLACK_LEVEL`), so C-NMC's black fill and padding are
left out. Per channel (red, green, blue; 8-bit values): mean, population standard deviation
(ddof 0) and the 10th, 50th and 90th percentiles (``numpy.percentile``'s linear
interpolation). Their number does not enter: it follows the cell's size, which is a property
of the cell. Fewer than two surround pixels give NaN throughout.
"""

from __future__ import annotations

import numpy as np

from leukoscope.features.regions import check_inputs
from leukoscope.segmentation.cell import BLACK_LEVEL

CHANNELS = ("red", "green", "blue")
PERCENTILES = (10, 50, 90)
STATS = ("mean", "std", *(f"p{p}" for p in PERCENTILES))
SURROUND_COLUMNS: tuple[str, ...] = tuple(f"surround_{stat}_{channel}" for channel in CHANNELS for stat in STATS)
"""The 15 column names, ``surround_<stat>_<channel>``, in output order."""


def surround_pixels(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The RGB values of the surround pixels.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB crop.
    labels : (H, W) uint8 ndarray
        0 background, 1 cytoplasm, 2 nucleus.

    Returns
    -------
    (k, 3) uint8 ndarray
        Pixels with label 0 and some channel above ``BLACK_LEVEL``.
    """
    check_inputs(image, labels)
    keep = (labels == 0) & (image > BLACK_LEVEL).any(axis=2)
    return image[keep]


def surround_features(image: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Colour statistics of the pixels outside the cell (see the module docstring).

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB crop.
    labels : (H, W) uint8 ndarray
        0 background, 1 cytoplasm, 2 nucleus; the same height and width.

    Returns
    -------
    dict of str to float
        The :data:`SURROUND_COLUMNS`, in order; NaN for all with fewer than two surround pixels.
    """
    pixels = surround_pixels(image, labels).astype(float)
    if len(pixels) < 2:
        return dict.fromkeys(SURROUND_COLUMNS, float("nan"))
    stats = np.vstack([pixels.mean(axis=0), pixels.std(axis=0), np.percentile(pixels, PERCENTILES, axis=0)])
    return {f"surround_{stat}_{channel}": float(stats[i, j])
            for j, channel in enumerate(CHANNELS) for i, stat in enumerate(STATS)}


__all__ = ["SURROUND_COLUMNS", "surround_features", "surround_pixels"]
