"""The random-intercept model ``feature ~ label + (1 | subject)`` fitted to many features at once.

For cell ``j`` of subject ``i``, ``y_ij = b0 + b1 x_i + u_i + e_ij`` with ``x_i`` = 1 for an
ALL subject and 0 for a HEM one, ``u_i ~ N(0, s_u^2)`` and ``e_ij ~ N(0, s^2)``. ``b1`` is the
ALL - HEM difference with the cells of one subject correlated (intra-class correlation
``s_u^2 / (s_u^2 + s^2)``), the model statsmodels fits as
``MixedLM(y, [1, x], groups=subject).fit(reml=True)``.

Because the only covariate is constant within a subject, the likelihood depends on the data
only through each subject's cell count ``n_i``, its mean ``m_i`` and the pooled within-subject
sum of squares ``W``. With ``lam = s_u^2 / s^2`` and weights ``w_i = n_i / (1 + n_i lam)``, the
generalised least-squares estimates are the ``w``-weighted means of the subject means of each
class, ``b0 = M_HEM`` and ``b1 = M_ALL - M_HEM``; the weighted residual sum of squares is
``Q = W + sum_i w_i (m_i - M_class(i))^2``, ``s^2`` is profiled out as ``Q / (N - 2)`` (REML) or
``Q / N`` (ML), and minus twice the profiled log-likelihood is, up to a constant,

    REML: (N - 2) log Q + sum_i log(1 + n_i lam) + log(S_HEM S_ALL),  S_c = sum over class c of w_i
    ML:   N log Q + sum_i log(1 + n_i lam)

(Pinheiro & Bates 2000, https://doi.org/10.1007/b98882, sections 2.2.4-2.2.5; the same
criterion as statsmodels' ``MixedLM.loglike``). It is minimised over ``log lam`` on a grid, then
by golden-section search, for all features together; ``lam = 0`` (no subject variance) is a
candidate too. The standard error of ``b1`` is taken from the inverse of the observed
information of ``(b0, b1, lam)``, as statsmodels does (so the uncertainty of ``lam`` enters), or
of ``(b0, b1)`` alone when ``lam`` is 0. The p value is two-sided, from ``b1 / se`` against a
t distribution with ``n_subjects - 2`` degrees of freedom by default: the label is a subject-level
covariate, so its information comes from the subjects (the "between-within" degrees of freedom
of nlme's ``lme``, Pinheiro & Bates 2000, section 2.4.2). statsmodels compares ``b1 / se`` with
the normal distribution instead (:attr:`Reference.NORMAL`), which rejects too often with few
subjects: 7.65 % of null features below p = 0.05 at 8 + 8 subjects, against 5.95 % for the t
reference (measured by ``test_subject_level_tests_keep_their_false_positive_rate...`` in
``tests/features/test_univariate.py``).

Every subject having a single cell leaves ``s_u^2`` and ``s^2`` unidentifiable; ``lam`` is then
set to 0, the fit is ordinary least squares over cells and the p value Student's t test.
"""

from __future__ import annotations

import warnings
from enum import Enum
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

#: Grid of ``log lam`` searched before the golden-section refinement.
LOG_RATIO_GRID = np.arange(-15.0, 12.01, 0.5)
GOLDEN_STEPS = 80
_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0


class Reference(str, Enum):
    """The distribution ``b1 / se`` is compared with for the p value.

    ``T``: t with ``n_subjects - 2`` degrees of freedom (subjects with a value of the feature).
    ``NORMAL``: standard normal (the Wald z test of statsmodels' ``MixedLM``).
    """

    T = "t"
    NORMAL = "normal"


class RandomInterceptFit(NamedTuple):
    """The fits of ``F`` features, each a (F,) float64 ndarray, NaN where the fit is undefined.

    Attributes
    ----------
    estimate, se, p
        ``b1`` (ALL - HEM, the feature's unit), its standard error and two-sided p value.
    df
        Degrees of freedom of the p value's t distribution (inf for :attr:`Reference.NORMAL`).
    subject_variance, residual_variance
        ``s_u^2`` and ``s^2`` (the unit squared).
    icc
        ``s_u^2 / (s_u^2 + s^2)``, the share of the variance between subjects.
    loglike
        The maximised (restricted) log-likelihood, statsmodels' ``llf``.
    """

    estimate: np.ndarray
    se: np.ndarray
    p: np.ndarray
    df: np.ndarray
    subject_variance: np.ndarray
    residual_variance: np.ndarray
    icc: np.ndarray
    loglike: np.ndarray


class _Groups(NamedTuple):
    n: np.ndarray  # (G, F) defined values per subject
    mean: np.ndarray  # (G, F) subject means (0 where n is 0)
    within: np.ndarray  # (F,) pooled within-subject sum of squares
    treated: np.ndarray  # (G, 1) 1.0 for ALL subjects


class _Terms(NamedTuple):
    a: np.ndarray
    w: np.ndarray
    s0: np.ndarray
    s1: np.ndarray
    m0: np.ndarray
    m1: np.ndarray
    d: np.ndarray
    q: np.ndarray


def _terms(lam: np.ndarray, g: _Groups) -> _Terms:
    """The GLS quantities at ``lam``, one variance ratio per feature, shape (F,)."""
    a = 1.0 + g.n * lam
    w = g.n / a
    s1 = np.sum(w * g.treated, axis=0)
    s0 = np.sum(w * (1.0 - g.treated), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        m1 = np.sum(w * g.treated * g.mean, axis=0) / s1
        m0 = np.sum(w * (1.0 - g.treated) * g.mean, axis=0) / s0
    fitted = np.where(g.treated > 0, m1, m0)
    d = np.where(g.n > 0, g.mean - fitted, 0.0)
    q = g.within + np.sum(w * d**2, axis=0)
    return _Terms(a, w, s0, s1, m0, m1, d, q)


def _criterion(lam: np.ndarray, g: _Groups, dof: np.ndarray, reml: bool) -> np.ndarray:
    """Minus twice the profiled (restricted) log-likelihood, up to a constant, per feature."""
    t = _terms(lam, g)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = dof * np.log(t.q) + np.sum(np.log(t.a), axis=0)
        if reml:
            value = value + np.log(t.s0) + np.log(t.s1)
    return value


def _variance_ratio(g: _Groups, dof: np.ndarray, reml: bool) -> np.ndarray:
    """The (RE)ML ``lam`` of every feature: 0 where no subject has two cells, else the best of 0
    and the grid, refined by golden section."""
    identifiable = (g.n > 1).any(axis=0)
    lam = np.zeros(identifiable.shape)
    if identifiable.any():
        part = _Groups(g.n[:, identifiable], g.mean[:, identifiable], g.within[identifiable], g.treated)
        lam[identifiable] = _search(part, dof[identifiable], reml)
    return lam


def _search(g: _Groups, dof: np.ndarray, reml: bool) -> np.ndarray:
    n_features = g.n.shape[1]
    grid = np.concatenate([[-np.inf], LOG_RATIO_GRID])
    values = np.stack([_criterion(np.full(n_features, np.exp(x)), g, dof, reml) for x in grid])  # (K, F)
    best = np.argmin(np.where(np.isfinite(values), values, np.inf), axis=0)
    lo = grid[np.clip(best - 1, 1, len(grid) - 1)]
    hi = grid[np.clip(best + 1, 1, len(grid) - 1)]
    x1, x2 = hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo)
    f1, f2 = _criterion(np.exp(x1), g, dof, reml), _criterion(np.exp(x2), g, dof, reml)
    for _ in range(GOLDEN_STEPS):
        left = f1 <= f2  # the minimum lies in [lo, x2]
        hi, lo = np.where(left, x2, hi), np.where(left, lo, x1)
        x1_new = np.where(left, hi - _GOLDEN * (hi - lo), x2)
        x2_new = np.where(left, x1, lo + _GOLDEN * (hi - lo))
        x1, x2 = x1_new, x2_new
        changed = np.where(left, x1, x2)
        f_changed = _criterion(np.exp(changed), g, dof, reml)
        f1, f2 = np.where(left, f_changed, f2), np.where(left, f1, f_changed)
    refined = np.exp((lo + hi) / 2)
    at_zero = (best == 0) | ~(_criterion(refined, g, dof, reml) < _criterion(np.zeros(n_features), g, dof, reml))
    return np.where(at_zero, 0.0, refined)


def _group(values: np.ndarray, codes: np.ndarray, treated: np.ndarray) -> _Groups:
    frame = pd.DataFrame(values)
    n = frame.notna().groupby(codes).sum().to_numpy(dtype=np.float64)
    mean = frame.groupby(codes).mean().to_numpy()
    within = np.nansum((values - mean[codes]) ** 2, axis=0)
    return _Groups(n, np.nan_to_num(mean), within, treated.astype(np.float64)[:, None])


def _standard_errors(lam: np.ndarray, g: _Groups, dof: np.ndarray, reml: bool) -> np.ndarray:
    """Standard error of ``b1`` (standardised units) from the observed information at the fit."""
    t = _terms(lam, g)
    s = t.s0 + t.s1
    info = np.zeros((len(lam), 3, 3))  # minus the Hessian of the log-likelihood in (b0, b1, lam)
    info[:, 0, 0], info[:, 0, 1], info[:, 1, 0], info[:, 1, 1] = s, t.s1, t.s1, t.s1
    info[:, :2, :2] *= (dof / t.q)[:, None, None]
    dw = -g.n**2 / t.a**2
    ddw = 2 * g.n**3 / t.a**3
    info[:, 0, 2] = info[:, 2, 0] = -dof * np.sum(dw * t.d, axis=0) / t.q
    info[:, 1, 2] = info[:, 2, 1] = -dof * np.sum(dw * t.d * g.treated, axis=0) / t.q
    dq, ddq = np.sum(dw * t.d**2, axis=0), np.sum(ddw * t.d**2, axis=0)
    info[:, 2, 2] = dof / 2 * (ddq / t.q - (dq / t.q) ** 2) - np.sum(g.n**2 / t.a**2, axis=0) / 2
    if reml:
        for weights in (g.treated, 1.0 - g.treated):
            total, d1, d2 = np.sum(t.w * weights, axis=0), np.sum(dw * weights, axis=0), np.sum(ddw * weights, axis=0)
            info[:, 2, 2] += (d2 / total - (d1 / total) ** 2) / 2
    with np.errstate(invalid="ignore", divide="ignore"):  # [[A, B], [B, C]]^-1 [1, 1] = A / (AC - B^2)
        block = info[:, 0, 0] / (info[:, 0, 0] * info[:, 1, 1] - info[:, 0, 1] ** 2)
    variance = block.copy()
    full = (lam > 0) & np.isfinite(info).all(axis=(1, 2))
    if full.any():
        variance[full] = np.linalg.pinv(info[full])[:, 1, 1]
    variance = np.where(variance > 0, variance, block)
    return np.sqrt(variance)


def fit_random_intercept(
    values: np.ndarray,
    subjects: np.ndarray,
    treated: np.ndarray,
    *,
    reml: bool = True,
    reference: Reference | str = Reference.T,
) -> RandomInterceptFit:
    """Fit ``feature ~ treated + (1 | subject)`` to every column of ``values``.

    Parameters
    ----------
    values : (N, F) float ndarray
        One row per cell, one column per feature; NaN values are left out of that feature's
        fit only.
    subjects : (N,) array-like
        The subject of every cell.
    treated : (N,) bool array-like
        True for ALL cells, False for HEM; constant within a subject.
    reml : bool
        Restricted maximum likelihood (default, statsmodels' default) or maximum likelihood.
    reference : Reference
        Distribution of the p value: ``t`` (default) or ``normal`` (statsmodels).

    Returns
    -------
    RandomInterceptFit
        NaN for a feature that is constant, or has no subject with a value in one class.

    Raises
    ------
    ValueError
        Shapes disagree, or a subject has both ALL and HEM cells.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or len(subjects) != len(values) or len(treated) != len(values):
        raise ValueError(f"values must be (N, F) with one subject and one class per row; got values "
                         f"{values.shape}, {len(subjects)} subjects, {len(treated)} classes")
    codes, _ = pd.factorize(np.asarray(subjects, dtype=object))
    treated_cells = np.asarray(treated, dtype=bool)
    per_subject = pd.Series(treated_cells).groupby(codes).agg(["min", "max"])
    if (per_subject["min"] != per_subject["max"]).any():
        raise ValueError("a subject has both ALL and HEM cells; the class must be constant within a subject")
    with warnings.catch_warnings():  # a feature without any value is NaN, and left out below
        warnings.simplefilter("ignore", RuntimeWarning)
        centre, spread = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
    usable = spread > 0
    spread = np.where(usable, spread, 1.0)
    groups = _group((values - centre) / spread, codes, per_subject["max"].to_numpy())
    n_cells = groups.n.sum(axis=0)
    dof = n_cells - 2 if reml else n_cells
    is_all = groups.treated[:, 0] > 0
    usable &= (groups.n[is_all].sum(axis=0) > 0) & (groups.n[~is_all].sum(axis=0) > 0)
    usable &= n_cells > 2
    groups = groups._replace(n=np.where(usable, groups.n, 1.0), mean=np.where(usable, groups.mean, 0.0),
                             within=np.where(usable, groups.within, 1.0))
    dof = np.where(usable, dof, 1.0)
    lam = _variance_ratio(groups, dof, reml)
    t = _terms(lam, groups)
    scale = t.q / dof
    se = _standard_errors(lam, groups, dof, reml)
    estimate = t.m1 - t.m0
    if Reference(reference) is Reference.T:
        df = (groups.n > 0).sum(axis=0) - 2.0
        p = 2 * stats.t.sf(np.abs(estimate / se), np.where(df > 0, df, np.nan))
    else:
        df = np.full(len(estimate), np.inf)
        p = 2 * stats.norm.sf(np.abs(estimate / se))
    loglike = -0.5 * (np.sum(np.log(t.a), axis=0) + dof * np.log(2 * np.pi * t.q / dof) + dof)
    if reml:
        loglike -= 0.5 * np.log(t.s0 * t.s1)
    loglike -= dof * np.log(spread)  # back to the feature's unit
    result = RandomInterceptFit(estimate * spread, se * spread, p, df, lam * scale * spread**2,
                                scale * spread**2, lam / (1 + lam), loglike)
    return RandomInterceptFit(*(np.where(usable, field, np.nan) for field in result))
