"""Two-sample effect sizes with bootstrap intervals, and Benjamini-Hochberg q values.

Both effect sizes compare a first sample ``x`` (ALL) with a second ``y`` (HEM) and are positive
when ``x`` tends to be larger:

- Cliff's delta, ``P(X > Y) - P(X < Y)`` over all ``(x_i, y_j)`` pairs, in [-1, 1] (Cliff 1993,
  https://doi.org/10.1037/0033-2909.114.3.494); it equals ``2 U / (n m) - 1`` for the
  Mann-Whitney U of ``x``, and needs no assumption on the distributions.
- Hedges' g, the difference of the means over the pooled standard deviation (ddof 1), times the
  small-sample correction ``J = 1 - 3 / (4 (n + m) - 9)`` (Hedges 1981,
  https://doi.org/10.3102/10769986006002107: the approximation ``1 - 3 / (4 df - 1)``
  of his exact factor, ``df = n + m - 2``).

The intervals are percentile bootstrap intervals with resampling within each sample, so every
replicate keeps both sample sizes (a stratified bootstrap; given subject medians, the cluster
bootstrap of Field & Welsh 2007, https://doi.org/10.1111/j.1467-9868.2007.00593.x). A replicate
is a vector of counts (how often each value was drawn), so both statistics of all replicates
come out of one vectorised pass over the counts, without copying the data.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class EffectSizes(NamedTuple):
    """Effect sizes of one feature with their bootstrap intervals (NaN where undefined)."""

    cliffs_delta: float
    cliffs_delta_low: float
    cliffs_delta_high: float
    hedges_g: float
    hedges_g_low: float
    hedges_g_high: float


def _defined(values: np.ndarray | list[float]) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64).ravel()
    return values[~np.isnan(values)]


def weighted_cliffs_delta(x: np.ndarray, y: np.ndarray, wx: np.ndarray, wy: np.ndarray) -> np.ndarray:
    """Cliff's delta of ``x`` against ``y`` with every value counted ``w`` times, per row of weights.

    Parameters
    ----------
    x : (n,) float ndarray
    y : (m,) float ndarray
        Values without NaN.
    wx : (B, n) ndarray
    wy : (B, m) ndarray
        Non-negative counts (or weights) of each value in each of ``B`` replicates.

    Returns
    -------
    (B,) float ndarray
        ``sum_ij wx_i wy_j sign(x_i - y_j) / (sum wx * sum wy)``; ``O(B (n + m))`` after sorting
        ``y`` once.
    """
    order = np.argsort(y, kind="stable")
    cumulative = np.concatenate([np.zeros((len(wx), 1)), np.cumsum(wy[:, order], axis=1)], axis=1)
    below = cumulative[:, np.searchsorted(y[order], x, side="left")]  # weight of y < x_i
    not_above = cumulative[:, np.searchsorted(y[order], x, side="right")]  # weight of y <= x_i
    total_y = cumulative[:, -1:]
    wins = np.sum(wx * (below - (total_y - not_above)), axis=1)
    return wins / (wx.sum(axis=1) * total_y[:, 0])


def weighted_hedges_g(x: np.ndarray, y: np.ndarray, wx: np.ndarray, wy: np.ndarray) -> np.ndarray:
    """Hedges' g of ``x`` against ``y`` with every value counted ``w`` times, per row of weights.

    Parameters and shapes as :func:`weighted_cliffs_delta`; the counts of a replicate sum to
    its sample sizes ``n*`` and ``m*``. NaN where ``n* + m* < 3`` or the pooled standard
    deviation is 0.
    """
    centre = np.mean(np.concatenate([x, y]))  # shifts out of g; centring keeps the sums exact
    x, y = x - centre, y - centre
    sizes, means, squares = [], [], []
    for values, weights in ((x, wx), (y, wy)):
        size = weights.sum(axis=1)
        mean = weights @ values / size
        sizes.append(size)
        means.append(mean)
        squares.append(weights @ values**2 - size * mean**2)  # sum of squared deviations
    dof = sizes[0] + sizes[1] - 2
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = np.sqrt((squares[0] + squares[1]) / dof)
        correction = 1 - 3 / (4 * (sizes[0] + sizes[1]) - 9)
        g = correction * (means[0] - means[1]) / pooled
    return np.where((dof > 0) & (pooled > 1e-12 * np.max(np.abs(np.concatenate([x, y])))), g, np.nan)


def cliffs_delta(x: np.ndarray | list[float], y: np.ndarray | list[float]) -> float:
    """Cliff's delta ``P(X > Y) - P(X < Y)`` of two samples (NaN skipped; NaN if one is empty)."""
    x, y = _defined(x), _defined(y)
    if len(x) == 0 or len(y) == 0:
        return float("nan")
    return float(weighted_cliffs_delta(x, y, np.ones((1, len(x))), np.ones((1, len(y))))[0])


def hedges_g(x: np.ndarray | list[float], y: np.ndarray | list[float]) -> float:
    """Hedges' g of two samples (NaN skipped): ``J (mean x - mean y) / s_pooled``.

    NaN when fewer than three values in all or the pooled standard deviation is 0.
    """
    x, y = _defined(x), _defined(y)
    if len(x) == 0 or len(y) == 0:
        return float("nan")
    return float(weighted_hedges_g(x, y, np.ones((1, len(x))), np.ones((1, len(y))))[0])


def _draw_counts(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n) float ndarray: how often each of ``n`` values is drawn in ``n`` draws with replacement."""
    draws = rng.integers(0, n, size=(n_boot, n)) + n * np.arange(n_boot)[:, None]
    return np.bincount(draws.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)


def effect_sizes(
    x: np.ndarray | list[float],
    y: np.ndarray | list[float],
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    rng: np.random.Generator | int | None = 0,
) -> EffectSizes:
    """Cliff's delta and Hedges' g of ``x`` against ``y`` with percentile bootstrap intervals.

    Parameters
    ----------
    x, y : (n,), (m,) array-like
        The two samples (ALL and HEM subject medians); NaN values are skipped.
    n_boot : int
        Bootstrap replicates, each drawing ``n`` values from ``x`` and ``m`` from ``y`` with
        replacement; 0 gives NaN intervals.
    confidence : float
        Coverage of the intervals (percentiles ``(1 - confidence) / 2`` and ``(1 + confidence) / 2``).
    rng : numpy.random.Generator or int or None
        The resampling's generator or seed.

    Returns
    -------
    EffectSizes
        NaN throughout when a sample is empty; a replicate where g is undefined (e.g. every
        draw the same value) is left out of g's percentiles.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence}")
    x, y = _defined(x), _defined(y)
    if len(x) == 0 or len(y) == 0:
        return EffectSizes(*[float("nan")] * 6)
    ones_x, ones_y = np.ones((1, len(x))), np.ones((1, len(y)))
    delta = weighted_cliffs_delta(x, y, ones_x, ones_y)[0]
    g = weighted_hedges_g(x, y, ones_x, ones_y)[0]
    bounds = [float("nan")] * 4
    if n_boot > 0:
        rng = np.random.default_rng(rng)
        wx, wy = _draw_counts(len(x), n_boot, rng), _draw_counts(len(y), n_boot, rng)
        tails = [50 * (1 - confidence), 50 * (1 + confidence)]
        deltas = weighted_cliffs_delta(x, y, wx, wy)
        gs = weighted_hedges_g(x, y, wx, wy)
        gs = gs[np.isfinite(gs)]
        bounds = [*np.percentile(deltas, tails), *(np.percentile(gs, tails) if len(gs) else bounds[:2])]
    return EffectSizes(float(delta), float(bounds[0]), float(bounds[1]), float(g), float(bounds[2]), float(bounds[3]))


def benjamini_hochberg(p: np.ndarray | list[float]) -> np.ndarray:
    """Benjamini-Hochberg adjusted p values (q values) controlling the false discovery rate.

    ``q_(i) = min_{k >= i} min(1, m p_(k) / k)`` over the ``m`` defined p values sorted
    ascending (Benjamini & Hochberg 1995, https://doi.org/10.1111/j.2517-6161.1995.tb02031.x),
    as ``statsmodels.stats.multitest.multipletests(p, method="fdr_bh")``.

    Parameters
    ----------
    p : (k,) array-like
        p values in [0, 1]; NaN (an undefined test) is not counted in ``m`` and stays NaN.

    Returns
    -------
    (k,) float64 ndarray
    """
    p = np.asarray(p, dtype=np.float64)
    if np.any((p < 0) | (p > 1)):
        raise ValueError("p values must lie in [0, 1]; got "
                         f"{p[(p < 0) | (p > 1)][:3].tolist()}")
    q = np.full(p.shape, np.nan)
    defined = np.flatnonzero(~np.isnan(p))
    order = defined[np.argsort(p[defined], kind="stable")]
    scaled = p[order] * len(order) / np.arange(1, len(order) + 1)
    q[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    return q
