"""Global histogram thresholds: the triangle (Zack) algorithm and Otsu's method.

Every threshold ``t`` is in the units of the values it was computed on, and the foreground is
``values > t`` (the scikit-image convention). Integer arrays get one histogram bin per integer
value between their minimum and maximum (``nbins`` is then ignored, as in scikit-image);
floating-point arrays get ``nbins`` equal bins over their range, and ``t`` is a bin centre.
"""

from __future__ import annotations

import numpy as np

from leukoscope.segmentation.choices import ThresholdMethod


def histogram(values: np.ndarray, *, nbins: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of all values of an array, with the centre of every bin.

    Parameters
    ----------
    values : (...) ndarray
        Any real array; it is flattened. Must hold at least one value.
    nbins : int
        Number of bins for floating-point input.

    Returns
    -------
    counts : (B,) int64 ndarray
        Number of values in each bin.
    centers : (B,) float64 ndarray
        Centre of each bin, in the units of ``values``.

    Raises
    ------
    ValueError
        ``values`` is empty or holds NaN or infinite values.
    """
    values = np.asarray(values).ravel()
    if values.size == 0:
        raise ValueError("cannot compute a threshold of zero pixels; pass a non-empty region")
    if np.issubdtype(values.dtype, np.integer) or values.dtype == bool:
        if values.dtype == np.uint8:
            counts = np.bincount(values, minlength=256)
            return counts, np.arange(256, dtype=np.float64)
        first = int(values.min())
        counts = np.bincount(values.astype(np.int64) - first)
        return counts, np.arange(first, first + counts.size, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError("cannot compute a threshold of values with NaN or infinity; mask them out first")
    low, high = float(values.min()), float(values.max())
    if low == high:
        return np.array([values.size]), np.array([low])
    counts, edges = np.histogram(values, bins=nbins, range=(low, high))
    return counts, (edges[:-1] + edges[1:]) / 2


def threshold_triangle(values: np.ndarray, *, nbins: int = 256) -> float:
    """Triangle threshold of Zack, Rogers and Latt (1977).

    A line joins the histogram peak to the end of the longer tail (at height zero, one bin
    beyond the last occupied bin as in ImageJ and scikit-image); the threshold is the bin
    whose histogram point lies farthest below that line. It suits a large background peak
    with a long, flat foreground tail, e.g. a stained cell on a bright smear.

    :func:`threshold_zack` is the same function: the reference study lists "triangle" and
    "Zack" as two methods, but they are one algorithm.

    Parameters
    ----------
    values : (...) ndarray
        The pixel values (an image, or the pixels of a region as a 1-D array).
    nbins : int
        Number of bins for floating-point input (ignored for integers).

    Returns
    -------
    float
        Threshold; the foreground is ``values > threshold``. A constant input returns its
        value (empty foreground).

    References
    ----------
    Zack GW, Rogers WE, Latt SA. Automatic measurement of sister chromatid exchange
    frequency. J Histochem Cytochem 25(7):741-753, 1977. doi:10.1177/25.7.70454
    """
    counts, centers = histogram(values, nbins=nbins)
    occupied = np.flatnonzero(counts)
    first, last = int(occupied[0]), int(occupied[-1])
    if first == last:
        return float(centers[first])
    peak = int(np.argmax(counts))
    flip = peak - first < last - peak  # the longer tail is on the right: mirror it
    if flip:
        counts = counts[::-1]
        first, peak = counts.size - 1 - last, counts.size - 1 - peak
    width = peak - first
    height = float(counts[peak])
    x = np.arange(width)
    # signed distance (times the norm of the line) of (x, counts) below the line from
    # (first, 0) to (peak, height)
    distance = height * x - width * counts[first : first + width]
    level = first + int(np.argmax(distance))
    if flip:
        level = counts.size - 1 - level
    return float(centers[level])


threshold_zack = threshold_triangle


def threshold_otsu(values: np.ndarray, *, nbins: int = 256) -> float:
    """Otsu's threshold: the split that maximises the between-class variance.

    Parameters
    ----------
    values : (...) ndarray
        Pixel values of any shape, e.g. the pixels of the cell only.
    nbins : int
        Histogram bins of floating-point values; integers get a bin per value.

    Returns
    -------
    float
        ``values > threshold`` is the brighter class; for a constant input, that value.

    References
    ----------
    Otsu N. A threshold selection method from gray-level histograms. IEEE Trans Syst Man
    Cybern 9(1):62-66, 1979. doi:10.1109/TSMC.1979.4310076
    """
    counts, centers = histogram(values, nbins=nbins)
    occupied = np.flatnonzero(counts)
    if occupied[0] == occupied[-1]:
        return float(centers[occupied[0]])
    counts = counts.astype(np.float64)
    weight_low = np.cumsum(counts)
    weight_high = np.cumsum(counts[::-1])[::-1]
    mean_low = np.cumsum(counts * centers) / np.maximum(weight_low, 1e-300)
    mean_high = (np.cumsum((counts * centers)[::-1]) / np.maximum(weight_high[::-1], 1e-300))[::-1]
    between = weight_low[:-1] * weight_high[1:] * (mean_low[:-1] - mean_high[1:]) ** 2
    return float(centers[int(np.argmax(between))])


def threshold_otsu3(values: np.ndarray, *, nbins: int = 256) -> tuple[float, float]:
    """Otsu's method for three classes: the two thresholds that maximise the between-class variance.

    Parameters
    ----------
    values : (...) ndarray
        Pixel values of any shape (at least one value).
    nbins : int
        Histogram bins of floating-point values; integers get a bin per value.

    Returns
    -------
    (float, float)
        ``low <= high``; the classes are ``values <= low``, ``low < values <= high`` and
        ``values > high`` (as ``skimage.filters.threshold_multiotsu`` with ``classes=3``).
        With fewer than three distinct values, empty classes are allowed.

    References
    ----------
    Otsu N. A threshold selection method from gray-level histograms. IEEE Trans Syst Man
    Cybern 9(1):62-66, 1979. doi:10.1109/TSMC.1979.4310076
    """
    counts, centers = histogram(values, nbins=nbins)
    occupied = np.flatnonzero(counts)
    counts, centers = counts[occupied[0] : occupied[-1] + 1], centers[occupied[0] : occupied[-1] + 1]
    if counts.size < 3:
        return float(centers[0]), float(centers[-1] if counts.size > 1 else centers[0])
    weights = counts.astype(np.float64) / counts.sum()
    weight, moment = np.cumsum(weights), np.cumsum(weights * centers)
    # classes [0..i], (i..j], (j..end]: between-class variance up to a constant, -inf where a
    # class is empty (the middle class is empty or negative for every j <= i)
    with np.errstate(divide="ignore", invalid="ignore"):
        outer = moment**2 / weight
        upper = (moment[-1] - moment) ** 2 / (1.0 - weight)
        middle_weight = weight[None, :] - weight[:, None]
        between = (moment[None, :] - moment[:, None]) ** 2 / middle_weight
    upper[-1] = -np.inf  # the brightest class would be empty
    between[middle_weight <= 1e-12] = -np.inf
    between += outer[:, None]
    between += upper[None, :]
    low, high = np.unravel_index(int(np.argmax(between)), between.shape)
    return float(centers[low]), float(centers[high])


_METHODS = {
    ThresholdMethod.OTSU: threshold_otsu,
    ThresholdMethod.TRIANGLE: threshold_triangle,
    ThresholdMethod.ZACK: threshold_zack,
}


def compute_threshold(values: np.ndarray, method: ThresholdMethod | str, *, nbins: int = 256) -> float:
    """Threshold of ``values`` by the named method (see :class:`ThresholdMethod`).

    Parameters
    ----------
    values : (...) ndarray
        The pixel values.
    method : ThresholdMethod or str
        ``otsu``, ``triangle`` or ``zack`` (``triangle`` and ``zack`` are the same).
    nbins : int
        Number of bins for floating-point input.

    Returns
    -------
    float
        Threshold; the foreground is ``values > threshold``.
    """
    return _METHODS[ThresholdMethod(method)](values, nbins=nbins)
