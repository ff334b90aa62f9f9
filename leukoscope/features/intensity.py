"""First-order intensity statistics of each region, per colour channel.

Every statistic is computed exactly from the region's 256-bin histogram of each 8-bit
channel, so one histogram per channel over the cell serves all regions and statistics.
Channels: grey (BT.601 luma), red, green, blue, and CIE L*a*b* (D65, OpenCV's 8-bit
conversion rescaled to L* in 0..100 and a*, b* in -128..127).

Definitions (n pixels, values x): mean; population standard deviation (ddof 0);
Fisher-Pearson skewness ``m3 / m2**1.5`` and excess kurtosis ``m4 / m2**2 - 3`` (the biased
estimators of ``scipy.stats.skew`` / ``kurtosis``); min; max; percentiles 10/25/50/75/90 with
linear interpolation (``numpy.percentile``'s default); Shannon entropy of the 256-bin
histogram in bits.

A region with fewer than two pixels gives NaN for all its columns; skewness and kurtosis are
NaN for a channel that is constant over the region (undefined, not zero).
"""

from __future__ import annotations

import numpy as np

from leukoscope.features.choices import Family
from leukoscope.features.columns import Column
from leukoscope.features.regions import CYTOPLASM, NUCLEUS, CellImage, Region

#: Channel name -> (description, unit, scale, offset) mapping 8-bit codes to the reported values.
CHANNELS: dict[str, tuple[str, str, float, float]] = {
    # the names are those of CellImage.planes
    "gray": ("grey level (BT.601 luma)", "grey level", 1.0, 0.0),
    "red": ("red channel", "grey level", 1.0, 0.0),
    "green": ("green channel", "grey level", 1.0, 0.0),
    "blue": ("blue channel", "grey level", 1.0, 0.0),
    "lab_l": ("CIE L* lightness", "L* (0-100)", 100.0 / 255.0, 0.0),
    "lab_a": ("CIE a* (green-red)", "a*", 1.0, -128.0),
    "lab_b": ("CIE b* (blue-yellow)", "b*", 1.0, -128.0),
}
PERCENTILES = (10, 25, 50, 75, 90)
#: Statistic -> (description, whether it carries the channel's unit).
STATS: dict[str, tuple[str, bool]] = {
    "mean": ("mean", True),
    "std": ("standard deviation (population, ddof 0)", True),
    "skewness": ("skewness (Fisher-Pearson, biased)", False),
    "kurtosis": ("excess kurtosis (biased)", False),
    "min": ("minimum", True),
    "max": ("maximum", True),
    **{f"p{p}": (f"{p}th percentile (linear interpolation)", True) for p in PERCENTILES},
    "entropy": ("Shannon entropy of the 256-bin histogram", False),
}
REGIONS = (Region.NUCLEUS, Region.CYTOPLASM, Region.CELL)

_SCALE = np.array([v[2] for v in CHANNELS.values()])
_OFFSET = np.array([v[3] for v in CHANNELS.values()])


def _unit(stat: str, channel: str) -> str:
    if stat == "entropy":
        return "bits"
    return CHANNELS[channel][1] if STATS[stat][1] else "1"


COLUMNS: tuple[Column, ...] = tuple(
    Column(
        name=f"intensity_{stat}_{region.value}_{channel}",
        family=Family.INTENSITY,
        regions=(region,),
        description=f"{STATS[stat][0]} of the {CHANNELS[channel][0]} over the {region.value}",
        unit=_unit(stat, channel),
    )
    for region in REGIONS
    for channel in CHANNELS
    for stat in STATS
)


def channel_histograms(cell: CellImage) -> np.ndarray:
    """256-bin histograms of every channel over every region.

    Parameters
    ----------
    cell : CellImage
        The cell's image and labels.

    Returns
    -------
    hist : (7, 3, 256) int64 ndarray
        Channels in :data:`CHANNELS` order; regions in :data:`REGIONS` order.
    """
    hist = np.stack([cell.histograms(name) for name in CHANNELS])
    return np.stack([hist[:, NUCLEUS], hist[:, CYTOPLASM], hist[:, CYTOPLASM] + hist[:, NUCLEUS]], axis=1)


def histogram_stats(hist: np.ndarray) -> dict[str, np.ndarray]:
    """The :data:`STATS` of the values 0..255 counted in ``hist`` (exact, vectorised).

    Parameters
    ----------
    hist : (..., 256) integer ndarray
        Counts of each value.

    Returns
    -------
    dict of str to (...) float64 ndarray
        NaN where fewer than two values were counted; skewness and kurtosis also NaN
        where all values are equal.
    """
    hist = np.asarray(hist, dtype=np.float64)
    values = np.arange(hist.shape[-1], dtype=np.float64)
    n = hist.sum(axis=-1)
    usable = n >= 2
    safe_n = np.where(usable, n, 1.0)
    mean = hist @ values / safe_n
    dev = values - mean[..., None]
    dev2 = dev * dev
    m2, m3, m4 = ((hist * power).sum(axis=-1) / safe_n for power in (dev2, dev2 * dev, dev2 * dev2))
    varying = usable & (m2 > 0)
    safe_m2 = np.where(varying, m2, 1.0)
    present = hist > 0
    cumulative = np.cumsum(hist, axis=-1)
    stats = {
        "mean": mean,
        "std": np.sqrt(m2),
        "skewness": np.where(varying, m3 / safe_m2**1.5, np.nan),
        "kurtosis": np.where(varying, m4 / safe_m2**2 - 3.0, np.nan),
        "min": np.argmax(present, axis=-1).astype(np.float64),
        "max": (hist.shape[-1] - 1 - np.argmax(present[..., ::-1], axis=-1)).astype(np.float64),
    }
    for p in PERCENTILES:
        position = p / 100.0 * (safe_n - 1)
        lower = np.floor(position)
        upper = np.minimum(lower + 1, safe_n - 1)
        # the k-th smallest value is the number of bins whose cumulative count is <= k
        at_lower = (cumulative <= lower[..., None]).sum(axis=-1)
        at_upper = (cumulative <= upper[..., None]).sum(axis=-1)
        stats[f"p{p}"] = at_lower + (at_upper - at_lower) * (position - lower)
    prob = hist / safe_n[..., None]
    stats["entropy"] = -(prob * np.log2(np.where(present, prob, 1.0))).sum(axis=-1)
    return {name: np.where(usable, value, np.nan) for name, value in stats.items()}


def intensity_features(image: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """First-order statistics of grey, R, G, B, L*, a*, b* over nucleus, cytoplasm and cell.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB cell image; grey, R, G, B and L*a*b* are measured.
    labels : (H, W) integer or bool ndarray
        Which pixels make up each region (1 cytoplasm, 2 nucleus; 0 is left out; any form
        :func:`~leukoscope.segmentation.labels.as_label_mask` reads).

    Returns
    -------
    dict of str to float
        The 252 :data:`COLUMNS` (region -> channel -> statistic), NaN where undefined.
    """
    return measure_intensity(CellImage(image, labels))


def measure_intensity(cell: CellImage) -> dict[str, float]:
    """:func:`intensity_features` of a :class:`~leukoscope.features.regions.CellImage`."""
    stats = histogram_stats(channel_histograms(cell))
    table = np.stack([stats[stat] for stat in STATS])  # (stat, channel, region)
    for i, stat in enumerate(STATS):
        if stat == "std":
            table[i] *= _SCALE[:, None]
        elif STATS[stat][1]:  # location statistics: the channel's affine map
            table[i] = table[i] * _SCALE[:, None] + _OFFSET[:, None]
    # COLUMNS run region -> channel -> statistic
    return dict(zip((c.name for c in COLUMNS), table.transpose(2, 1, 0).ravel().tolist()))
