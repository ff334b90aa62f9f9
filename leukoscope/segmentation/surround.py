"""Strip the ring of unstained smear that a cut-out on black may carry round its cell.

A C-NMC-style cut-out is the cell set on black, but the mask it was cut with is often a little
too large: a ring of the smear (plasma, pale yellow or grey) surrounds the cell. Counted as
cytoplasm, it makes the cell too large and pulls the nucleus threshold into the cytoplasm.

The test: within the non-black region, the luminance histogram holds *three* populations
(smear, cytoplasm, nucleus) instead of two (cytoplasm, nucleus). Three measures of the
three-class Otsu split (:func:`~leukoscope.segmentation.threshold.threshold_otsu3`) decide:

- ``gain``: the share of the variance left by the two-class split that the third class
  explains, ``(eta3 - eta2) / (1 - eta2)`` (eta squared: between-class over total sum of
  squares);
- ``valley``: the (7-bin smoothed) histogram at the lower threshold over the smaller of the
  two peaks it separates; near 1 when the threshold cuts through one population;
- ``balance``: the step from the middle to the darkest class over the step from the
  brightest to the middle class; small when the darkest two classes are one population
  (the nucleus) cut in two.

A surround is present when ``gain > SURROUND_GAIN``, ``valley < SURROUND_VALLEY`` and
``balance > SURROUND_BALANCE``; its pixels are then the lowest of the three Otsu classes of
the stain channel (unstained smear has blue = green, stained cytoplasm absorbs green). The
limits were chosen on the cut-out benchmark of docs/segmentation.md (ALL-IDB2, both Zheng
sets, margins 0 to 20 pixels) under the constraint that no synthetic demo cell (no
surround) passes the test.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from leukoscope.segmentation.channels import extract_channel
from leukoscope.segmentation.choices import Channel
from leukoscope.segmentation.threshold import threshold_otsu, threshold_otsu3

SURROUND_GAIN = 0.52
SURROUND_VALLEY = 0.9
SURROUND_BALANCE = 0.4
SURROUND_LAYERING = 0.08
WHITE_GREY = 215  # grey level (0-255, BT.601) from which a population is near-white
VALLEY_SMOOTHING = 7  # histogram bins averaged before the valley is read
TEST_CHANNEL = Channel.GRAY  # luminance, dark high
CUT_CHANNEL = Channel.STAIN


@dataclass(frozen=True)
class SurroundTest:
    """The surround tests of one cut-out (see the module docstring)."""

    gain: float
    valley: float
    balance: float
    layering: float
    brightness: float

    @property
    def three_populations(self) -> bool:
        """Smear, cytoplasm and nucleus are three populations of the luminance, in layers."""
        return (self.gain > SURROUND_GAIN and self.valley < SURROUND_VALLEY
                and self.balance > SURROUND_BALANCE and self.layering > SURROUND_LAYERING)

    @property
    def white(self) -> bool:
        """The brighter of two luminance classes is near-white."""
        return self.brightness >= WHITE_GREY

    @property
    def present(self) -> bool:
        """True when the cut-out carries a surround of smear."""
        return self.three_populations or self.white


def _valley(histogram: np.ndarray, low: float, high: float) -> float:
    """Smoothed histogram at ``low`` over the smaller peak on either side of it (below ``high``)."""
    smooth = np.convolve(histogram, np.ones(VALLEY_SMOOTHING) / VALLEY_SMOOTHING, mode="same")
    low_bin, high_bin = int(low), int(high)
    peaks = min(smooth[: low_bin + 1].max(), smooth[low_bin : high_bin + 1].max())
    return float(smooth[low_bin] / peaks) if peaks > 0 else 1.0


def _explained_variance(histogram: np.ndarray, thresholds: tuple[float, ...]) -> float:
    """Share of the variance of a 256-level histogram between the classes cut at ``thresholds``
    (eta squared); class ``k`` holds the levels in ``(t[k-1], t[k]]``."""
    levels = np.arange(histogram.size, dtype=np.float64)
    total = float(np.sum(histogram * levels**2) - np.sum(histogram * levels) ** 2 / histogram.sum())
    if total <= 0.0:
        return 1.0
    classes = np.searchsorted(np.asarray(thresholds, dtype=np.float64), levels, side="left")
    weight = np.bincount(classes, weights=histogram, minlength=len(thresholds) + 1)
    moment = np.bincount(classes, weights=histogram * levels, minlength=len(thresholds) + 1)
    used = weight > 0
    return float(np.sum(moment[used] ** 2 / weight[used]) - moment.sum() ** 2 / weight.sum()) / total


def _depth(region: np.ndarray) -> np.ndarray:
    """Distance of every region pixel to the nearest pixel outside it (the frame counts as outside)."""
    padded = cv2.copyMakeBorder(region.view(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    return cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]


def _layering(region: np.ndarray, grey: np.ndarray, low: float, high: float) -> float:
    """Mean depth (distance to the black) of the darkest class minus that of the middle class,
    over the region's largest depth."""
    depth = _depth(region)
    middle, darkest = region & (grey > low) & (grey <= high), region & (grey > high)
    return float((depth[darkest].mean() - depth[middle].mean()) / depth.max())


def surround_test(image: np.ndarray, region: np.ndarray) -> SurroundTest:
    """The surround tests of a cut-out's non-black region.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB cut-out (or its bounding box).
    region : (H, W) bool ndarray
        Its non-black pixels (not empty).

    Returns
    -------
    SurroundTest
        ``gain``, ``valley``, ``balance`` and ``layering`` of the three-class split of the
        luminance, and the mean grey level (``brightness``, 0-255) of the brighter two-class
        population. ``layering`` is only measured when the three others pass (NaN
        otherwise); a region with fewer than three grey levels gives a test without three
        populations.
    """
    grey = extract_channel(image, TEST_CHANNEL)  # dark high
    values = grey[region]
    histogram = np.bincount(values, minlength=256).astype(np.float64)
    levels = np.arange(256, dtype=np.float64)
    split = threshold_otsu(values)
    bright = levels <= split
    brightness = 255.0 - float(np.sum(histogram[bright] * levels[bright]) / np.sum(histogram[bright]))
    low, high = threshold_otsu3(values)
    classes = np.searchsorted([low, high], levels, side="left")
    counts = np.bincount(classes, weights=histogram, minlength=3)
    if np.any(counts == 0):
        return SurroundTest(gain=0.0, valley=1.0, balance=0.0, layering=float("nan"), brightness=brightness)
    two = _explained_variance(histogram, (split,))
    gain = (_explained_variance(histogram, (low, high)) - two) / (1.0 - two) if two < 1.0 else 0.0
    means = np.bincount(classes, weights=histogram * levels, minlength=3) / counts
    test = SurroundTest(
        gain=float(gain),
        valley=_valley(histogram, low, high),
        balance=float((means[2] - means[1]) / (means[1] - means[0])),
        layering=float("nan"),
        brightness=brightness,
    )
    if test.gain > SURROUND_GAIN and test.valley < SURROUND_VALLEY and test.balance > SURROUND_BALANCE:
        return dataclasses.replace(test, layering=_layering(region, grey, low, high))
    return test


def strip_surround(image: np.ndarray, region: np.ndarray) -> tuple[np.ndarray, SurroundTest]:
    """The non-black region without its surround of smear, when it has one.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB cut-out (or its bounding box).
    region : (H, W) bool ndarray
        Its non-black pixels (not empty).

    Returns
    -------
    mask : (H, W) bool ndarray
        ``region`` itself when no surround is found; otherwise ``region`` less the surround
        (not cleaned: the caller keeps the cell).
    test : SurroundTest
        The test that decided.
    """
    region = np.asarray(region, dtype=bool)
    test = surround_test(image, region)
    if not test.present:
        return region, test
    cut = extract_channel(image, CUT_CHANNEL)
    low, _high = threshold_otsu3(cut[region])
    smear = region & (cut <= low)
    depth = _depth(region).astype(np.int64)
    total = np.bincount(depth[region])
    share = np.bincount(depth[smear], minlength=total.size) / np.maximum(total, 1)
    below = np.flatnonzero((share < 0.5) & (total > 0))
    width = int(below[0]) if below.size else total.size
    return region & ~(smear & (depth <= width)), test
