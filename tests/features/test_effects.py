"""Effect sizes against direct counts and textbook formulas, bootstrap intervals, BH q values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from leukoscope.features.effects import (
    benjamini_hochberg,
    cliffs_delta,
    effect_sizes,
    hedges_g,
    weighted_cliffs_delta,
    weighted_hedges_g,
)


def direct_delta(x: np.ndarray, y: np.ndarray) -> float:
    """Cliff's delta by counting every (x_i, y_j) pair, O(n m)."""
    return float(np.mean(np.sign(np.subtract.outer(x, y))))


def textbook_g(x: np.ndarray, y: np.ndarray) -> float:
    n, m = len(x), len(y)
    pooled = np.sqrt(((n - 1) * np.var(x, ddof=1) + (m - 1) * np.var(y, ddof=1)) / (n + m - 2))
    return (1 - 3 / (4 * (n + m) - 9)) * (np.mean(x) - np.mean(y)) / pooled


def test_cliffs_delta_by_hand():
    assert cliffs_delta([1, 2, 3], [2, 2]) == 0.0  # 2 wins, 2 ties, 2 losses
    assert cliffs_delta([3, 4], [1, 2, 3]) == pytest.approx(5 / 6)  # 5 wins, 1 tie
    assert cliffs_delta([5, 6], [1, 2]) == 1.0
    assert np.isnan(cliffs_delta([], [1.0]))


def test_cliffs_delta_equals_the_direct_count_and_mann_whitney_u():
    rng = np.random.default_rng(0)
    x, y = np.round(rng.normal(0.3, 1, 37), 1), np.round(rng.normal(0, 1, 23), 1)  # rounded: ties
    assert cliffs_delta(x, y) == pytest.approx(direct_delta(x, y), abs=1e-12)
    u = stats.mannwhitneyu(x, y).statistic
    assert cliffs_delta(x, y) == pytest.approx(2 * u / (len(x) * len(y)) - 1, abs=1e-12)


def test_hedges_g_by_hand_and_against_the_textbook_formula():
    # means 2 and 4, both variances 1: d = -2, J = 1 - 3 / (4 * 6 - 9) = 0.8
    assert hedges_g([1, 2, 3], [3, 4, 5]) == pytest.approx(-1.6)
    rng = np.random.default_rng(1)
    x, y = rng.normal(1, 2, 9), rng.normal(0, 1, 14)
    assert hedges_g(x, y) == pytest.approx(textbook_g(x, y), rel=1e-12)
    assert np.isnan(hedges_g([1, 1], [1, 1]))  # no spread: undefined


def test_effect_sizes_skip_nan_and_are_antisymmetric():
    x, y = np.array([1.0, np.nan, 4.0, 2.5]), np.array([0.5, 2.0, np.nan])
    assert cliffs_delta(x, y) == pytest.approx(direct_delta(x[~np.isnan(x)], y[~np.isnan(y)]))
    assert cliffs_delta(y, x) == -cliffs_delta(x, y)
    assert hedges_g(y, x) == pytest.approx(-hedges_g(x, y))


def test_delta_is_invariant_to_monotone_maps_and_g_to_affine_ones():
    rng = np.random.default_rng(2)
    x, y = rng.normal(0.5, 1, 12), rng.normal(0, 1, 10)
    assert cliffs_delta(np.exp(x), np.exp(y)) == cliffs_delta(x, y)
    assert hedges_g(3 * x - 7, 3 * y - 7) == pytest.approx(hedges_g(x, y))


def test_weights_count_repeated_values():
    x, y = np.array([1.0, 2.0, 5.0]), np.array([2.0, 3.0])
    wx, wy = np.array([[2.0, 0.0, 1.0]]), np.array([[1.0, 3.0]])
    xs, ys = np.repeat(x, [2, 0, 1]), np.repeat(y, [1, 3])
    assert weighted_cliffs_delta(x, y, wx, wy)[0] == pytest.approx(direct_delta(xs, ys))
    assert weighted_hedges_g(x, y, wx, wy)[0] == pytest.approx(textbook_g(xs, ys))


def test_bootstrap_intervals_bracket_the_estimates_and_repeat_with_the_seed():
    rng = np.random.default_rng(3)
    x, y = rng.normal(1, 1, 20), rng.normal(0, 1, 15)
    sizes = effect_sizes(x, y, n_boot=500, rng=7)
    assert sizes.cliffs_delta_low < sizes.cliffs_delta < sizes.cliffs_delta_high
    assert sizes.hedges_g_low < sizes.hedges_g < sizes.hedges_g_high
    assert sizes == effect_sizes(x, y, n_boot=500, rng=7)
    assert sizes.cliffs_delta == cliffs_delta(x, y) and sizes.hedges_g == hedges_g(x, y)
    assert np.isnan(effect_sizes(x, y, n_boot=0).cliffs_delta_low)


def test_perfect_separation_has_a_degenerate_delta_interval():
    sizes = effect_sizes([10, 11, 12], [1, 2, 3], n_boot=200)
    assert (sizes.cliffs_delta, sizes.cliffs_delta_low, sizes.cliffs_delta_high) == (1.0, 1.0, 1.0)


def test_effect_sizes_refuse_a_confidence_outside_0_1():
    with pytest.raises(ValueError, match="confidence must be between 0 and 1"):
        effect_sizes([1, 2], [3, 4], confidence=95)


def test_benjamini_hochberg_matches_statsmodels_and_keeps_nan():
    rng = np.random.default_rng(4)
    p = np.concatenate([rng.uniform(size=40), rng.uniform(0, 0.001, 5), [0.0, 1.0, 0.02, 0.02]])
    assert benjamini_hochberg(p) == pytest.approx(multipletests(p, method="fdr_bh")[1], rel=1e-12)
    with_nan = np.array([0.01, np.nan, 0.04, 0.03])
    q = benjamini_hochberg(with_nan)
    assert np.isnan(q[1])
    assert q[[0, 2, 3]] == pytest.approx(multipletests(with_nan[[0, 2, 3]], method="fdr_bh")[1])
    # by hand: m = 3, sorted 0.01, 0.03, 0.04 -> 0.03, 0.045, 0.04 -> running minimum from the top
    assert q[[0, 3, 2]] == pytest.approx([0.03, 0.04, 0.04])


def test_benjamini_hochberg_refuses_values_outside_0_1():
    with pytest.raises(ValueError, match=r"p values must lie in \[0, 1\]"):
        benjamini_hochberg([0.5, 1.2])
