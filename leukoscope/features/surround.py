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


def _surround_mask(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(H, W) bool: label 0 and some channel above ``BLACK_LEVEL`` (channel by channel: fast)."""
    check_inputs(image, labels)
    lit = (image[..., 0] > BLACK_LEVEL) | (image[..., 1] > BLACK_LEVEL) | (image[..., 2] > BLACK_LEVEL)
    return (labels == 0) & lit


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
    return image[_surround_mask(image, labels)]


def _channel_stats(counts: np.ndarray) -> list[float]:
    """Mean, population std and :data:`PERCENTILES` of one channel from its 256-bin histogram.

    The percentiles are ``numpy.percentile``'s linear interpolation between the sorted values at
    positions ``floor(h)`` and ``ceil(h)``, ``h = (k - 1) p / 100``; the sorted value at position
    ``i`` is the first level whose cumulative count exceeds ``i``.
    """
    levels = np.arange(len(counts), dtype=float)
    k = counts.sum()
    mean = float(counts @ levels / k)
    std = float(np.sqrt(counts @ (levels - mean) ** 2 / k))
    cumulative = np.cumsum(counts)
    position = (k - 1) * np.asarray(PERCENTILES, dtype=float) / 100
    low = np.searchsorted(cumulative, np.floor(position), side="right").astype(float)
    high = np.searchsorted(cumulative, np.ceil(position), side="right").astype(float)
    return [mean, std, *(low + (position - np.floor(position)) * (high - low)).tolist()]


def surround_features(image: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Colour statistics of the pixels outside the cell (see the module docstring).

    Computed from per-channel histograms of the 8-bit values (one pass over the surround
    pixels, no sort); equal to the statistics of :func:`surround_pixels` up to rounding.

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
    keep = _surround_mask(image, labels)
    if np.count_nonzero(keep) < 2:
        return dict.fromkeys(SURROUND_COLUMNS, float("nan"))
    stats = [_channel_stats(np.bincount(image[..., j][keep], minlength=256)) for j in range(len(CHANNELS))]
    return {f"surround_{stat}_{channel}": stats[j][i]
            for j, channel in enumerate(CHANNELS) for i, stat in enumerate(STATS)}


__all__ = ["SURROUND_COLUMNS", "surround_features", "surround_pixels"]
