"""Contrast enhancement of one uint8 channel before it is thresholded.

Three methods of the reference study (section 3.3): percentile-based linear contrast
stretching, global histogram equalisation and CLAHE. Stretching and equalisation can take
their statistics from a region only (``mask``), e.g. the cell of a C-NMC image, so the black
surround does not dominate them; the mapping is still applied to every pixel.
"""

from __future__ import annotations

import cv2
import numpy as np

from leukoscope.segmentation.choices import Enhancement


def _check_channel(channel: np.ndarray) -> np.ndarray:
    channel = np.asarray(channel)
    if channel.ndim != 2 or channel.dtype != np.uint8:
        raise ValueError(
            f"expected an (H, W) uint8 channel, got shape {channel.shape} and dtype {channel.dtype}; "
            "use extract_channel() first"
        )
    return channel


#: largest image whose histogram OpenCV counts exactly (its float32 bins hold integers up to 2**24)
_EXACT_CALCHIST = 2**24


def _region_histogram(channel: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Counts of the 256 grey levels in ``channel`` (within ``mask``), as int64."""
    if channel.size <= _EXACT_CALCHIST:  # 5-10x faster than bincount of a boolean selection
        mask8 = None if mask is None else np.ascontiguousarray(mask, dtype=bool).view(np.uint8)
        counts = cv2.calcHist([np.ascontiguousarray(channel)], [0], mask8, [256], [0, 256])
        return counts.ravel().astype(np.int64)
    values = channel if mask is None else channel[np.asarray(mask, dtype=bool)]
    return np.bincount(values.ravel(), minlength=256)


def stretch_contrast(
    channel: np.ndarray, *, low: float = 1.0, high: float = 99.0, mask: np.ndarray | None = None
) -> np.ndarray:
    """Linear contrast stretch between two percentiles.

    The ``low`` percentile maps to 0, the ``high`` percentile to 255, values outside are
    clipped.

    Parameters
    ----------
    channel : (H, W) uint8 ndarray
        The channel.
    low, high : float
        Percentiles (0-100) that map to 0 and 255.
    mask : (H, W) bool ndarray, optional
        Pixels the percentiles are taken from (all pixels when omitted).

    Returns
    -------
    (H, W) uint8 ndarray
        The stretched channel; unchanged when the two percentiles coincide or the region
        is empty.
    """
    channel = _check_channel(channel)
    if not 0 <= low < high <= 100:
        raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got low={low}, high={high}")
    counts = _region_histogram(channel, mask)
    total = counts.sum()
    if total == 0:
        return channel.copy()
    cdf = np.cumsum(counts)
    lo = int(np.searchsorted(cdf, total * low / 100.0, side="right"))
    hi = int(np.searchsorted(cdf, total * high / 100.0, side="left"))
    if hi <= lo:
        return channel.copy()
    levels = np.arange(256, dtype=np.float64)
    lut = np.clip(np.round((levels - lo) * 255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    return cv2.LUT(channel, lut)  # as lut[channel], 3x faster


def equalize_histogram(channel: np.ndarray, *, mask: np.ndarray | None = None) -> np.ndarray:
    """Global histogram equalisation: map each level through the cumulative histogram.

    Parameters
    ----------
    channel : (H, W) uint8 ndarray
        The channel.
    mask : (H, W) bool ndarray, optional
        Pixels the histogram is taken from (all pixels when omitted). With no mask the
        result equals ``cv2.equalizeHist``.

    Returns
    -------
    (H, W) uint8 ndarray
        The equalised channel; unchanged when the region is empty or constant.
    """
    channel = _check_channel(channel)
    counts = _region_histogram(channel, mask)
    cdf = np.cumsum(counts)
    total = int(cdf[-1])
    cdf_min = int(cdf[np.flatnonzero(counts)[0]]) if total else 0
    if total == cdf_min:
        return channel.copy()
    lut = np.clip(np.round((cdf - cdf_min) * 255.0 / (total - cdf_min)), 0, 255).astype(np.uint8)
    return cv2.LUT(channel, lut)  # as lut[channel], 3x faster


def clahe(channel: np.ndarray, *, clip_limit: float = 2.0, tile_grid: int = 8) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation (OpenCV's implementation).

    Parameters
    ----------
    channel : (H, W) uint8 ndarray
        The channel.
    clip_limit : float
        Contrast limit per tile, relative to a uniform histogram.
    tile_grid : int
        Number of tiles along each side.

    Returns
    -------
    (H, W) uint8 ndarray
        The equalised channel.

    References
    ----------
    Zuiderveld K. Contrast limited adaptive histogram equalization. In: Graphics Gems IV,
    Academic Press, 1994, pp. 474-485. doi:10.1016/B978-0-12-336156-1.50061-6
    """
    channel = _check_channel(channel)
    return cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(tile_grid, tile_grid)).apply(channel)


def enhance_channel(
    channel: np.ndarray, method: Enhancement | str, *, mask: np.ndarray | None = None
) -> np.ndarray:
    """Apply one :class:`Enhancement` with its documented defaults.

    Parameters
    ----------
    channel : (H, W) uint8 ndarray
        The channel.
    method : Enhancement or str
        ``none``, ``stretch`` (1st-99th percentile), ``equalize`` or ``clahe``
        (clip limit 2, 8x8 tiles).
    mask : (H, W) bool ndarray, optional
        Region whose statistics drive ``stretch`` and ``equalize`` (ignored by ``clahe``).

    Returns
    -------
    (H, W) uint8 ndarray
        The enhanced channel (the input itself for ``none``).
    """
    method = Enhancement(method)
    if method is Enhancement.NONE:
        return _check_channel(channel)
    if method is Enhancement.STRETCH:
        return stretch_contrast(channel, mask=mask)
    if method is Enhancement.EQUALIZE:
        return equalize_histogram(channel, mask=mask)
    return clahe(channel)
