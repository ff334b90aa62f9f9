"""Paired comparisons of classifiers on the same test cells: bootstrap difference, exact McNemar, Holm.

Two classifiers scored on the same cells are compared pairwise, cell by cell, not by
whether their separate intervals overlap:

- the difference in a metric (balanced accuracy by default) with a paired percentile bootstrap
  interval: both are evaluated on the same replicates, which resample subjects within their
  class (:func:`~leukoscope.classifiers.metrics.replicate_weights`);
- McNemar's exact test (McNemar 1947, https://doi.org/10.1007/BF02295996): under "equally
  good", the cells that exactly one of the two gets right are equally likely to favour either,
  so the count favouring one is Binomial(discordant, 1/2); two-sided p;
- Holm's step-down adjustment of those p values across the rows compared (Holm 1979, Scand. J.
  Statist. 6(2), 65-70, https://www.jstor.org/stable/4615733).

McNemar treats cells as independent; with several cells per patient it is too ready to call a
difference. A row is therefore called distinguishable from the reference only when both the
Holm-adjusted McNemar p is below ``alpha`` and the subject-level bootstrap interval of the
difference is estimable and excludes 0; otherwise it is "indistinguishable".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from leukoscope.classifiers.intervals import class_reasons, metric_reason
from leukoscope.classifiers.metrics import (
    METRICS,
    check_predictions,
    percentile_interval,
    replicate_weights,
    weighted_metrics,
)

KEYS = ["model", "feature_set"]


class McNemar(NamedTuple):
    """Exact McNemar test of two classifiers on the same cells.

    Attributes
    ----------
    only_a, only_b : int
        Cells that only the first / only the second classifier gets right.
    p_value : float
        Two-sided exact binomial p; 1.0 without discordant cells.
    """

    only_a: int
    only_b: int
    p_value: float


def mcnemar_exact(correct_a: Sequence[bool] | np.ndarray, correct_b: Sequence[bool] | np.ndarray) -> McNemar:
    """Exact McNemar test: ``binomtest(only_a, only_a + only_b, 0.5)``, two-sided.

    Parameters
    ----------
    correct_a, correct_b : (n,) bool array-like
        Whether each classifier got each cell right.

    Returns
    -------
    McNemar
        Same p as ``statsmodels.stats.contingency_tables.mcnemar(table, exact=True)``.
    """
    correct_a = np.asarray(correct_a, dtype=bool).ravel()
    correct_b = np.asarray(correct_b, dtype=bool).ravel()
    if correct_a.shape != correct_b.shape:
        raise ValueError(
            f"correct_a and correct_b must cover the same cells; got {len(correct_a)} and {len(correct_b)}"
        )
    only_a = int((correct_a & ~correct_b).sum())
    only_b = int((~correct_a & correct_b).sum())
    n = only_a + only_b
    return McNemar(only_a, only_b, float(binomtest(only_a, n, 0.5).pvalue) if n else 1.0)


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p values (NaN entries stay NaN and do not count).

    Parameters
    ----------
    p_values : (m,) float array-like

    Returns
    -------
    (m,) float ndarray
        ``max over j <= i of min(1, (m - j) p_(j))`` in sorted order, mapped back; the same as
        ``statsmodels.stats.multitest.multipletests(p, method="holm")[1]``.
    """
    p = np.asarray(p_values, dtype=float).ravel()
    adjusted = np.full(len(p), np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m = len(order)
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


def paired_difference(
    y_true: Sequence[int] | np.ndarray,
    pred_a: Sequence[int] | np.ndarray,
    pred_b: Sequence[int] | np.ndarray,
    *,
    score_a: Sequence[float] | np.ndarray | None = None,
    score_b: Sequence[float] | np.ndarray | None = None,
    groups: Sequence[str] | np.ndarray | None = None,
    metric: str = "balanced_accuracy",
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """``metric(a) - metric(b)`` on the same cells, with a paired subject-level bootstrap interval.

    Parameters
    ----------
    y_true : (n,) int array-like
        1 = ALL, 0 = HEM.
    pred_a, pred_b : (n,) int array-like
        The two classifiers' calls.
    score_a, score_b : (n,) float array-like, optional
        Their P(ALL); needed for ``roc_auc`` only.
    groups : (n,) sequence of str, optional
        Subject of every cell (``""`` = unknown: the cell is its own unit).
    metric : str
        One of :data:`~leukoscope.classifiers.metrics.METRICS`.
    n_boot, seed, level
        Replicates, seed and coverage; ``n_boot = 0`` gives a NaN interval.

    Returns
    -------
    difference, low, high : float
    """
    if metric not in METRICS:
        raise ValueError(f"metric {metric!r} is not one of {', '.join(METRICS)}")
    if metric == "roc_auc" and (score_a is None or score_b is None):
        raise ValueError("a roc_auc difference needs score_a and score_b (P(ALL) of both classifiers)")
    y_true_a, score_a, pred_a = check_predictions(y_true, pred_a if score_a is None else score_a, pred_a)
    y_true_b, score_b, pred_b = check_predictions(y_true, pred_b if score_b is None else score_b, pred_b)
    ones = np.ones((1, len(y_true_a)))
    point = (weighted_metrics(y_true_a, score_a, pred_a, ones)[metric]
             - weighted_metrics(y_true_b, score_b, pred_b, ones)[metric])[0]
    if n_boot <= 0 or len(y_true_a) == 0:
        return float(point), np.nan, np.nan
    replicates = [
        weighted_metrics(y_true_a, score_a, pred_a, w)[metric] - weighted_metrics(y_true_b, score_b, pred_b, w)[metric]
        for w in replicate_weights(y_true_a, groups, n_boot=n_boot, seed=seed)
    ]
    low, high = percentile_interval(np.concatenate(replicates), level)
    return float(point), low, high


def paired_comparisons(
    predictions: pd.DataFrame,
    reference: tuple[str, str],
    *,
    metric: str = "balanced_accuracy",
    unit_name: str = "subjects",
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Every model x feature set of ``predictions`` against ``reference``, on their shared cells.

    Parameters
    ----------
    predictions : DataFrame
        Predictions format: ``sample_id, subject, model, feature_set, y_true, y_score, y_pred``
        (one protocol only if a ``protocol`` column is present). ``subject`` is the resampling
        unit (pass block ids there for ``blocked-cv``; ``""`` = each cell its own unit).
    reference : (str, str)
        ``(model, feature_set)`` of the row to compare with, e.g. the nested-selection headline.
    metric : str
        The metric whose difference is shown (default balanced accuracy).
    unit_name : str
        What ``subject`` names, for the not-estimable reasons.
    n_boot, seed, level
        Bootstrap of the difference.
    alpha : float
        Level of the Holm-adjusted McNemar test.

    Returns
    -------
    DataFrame
        One row per other model x feature set, in ``predictions`` order: ``model``,
        ``feature_set``, ``n_paired``, ``<metric>``, ``reference_<metric>``, ``difference``
        (row minus reference), ``difference_ci_low``, ``difference_ci_high``,
        ``difference_ci_note`` (``""`` or why not estimable), ``only_row_right``,
        ``only_reference_right``, ``mcnemar_p``, ``holm_p``, ``indistinguishable`` (bool).

    Raises
    ------
    ValueError
        ``reference`` is not in ``predictions``, the table mixes protocols, or a row shares no
        cell with the reference or disagrees with it on a cell's label.
    """
    if "protocol" in predictions.columns and predictions["protocol"].nunique() > 1:
        raise ValueError(f"predictions mix protocols {sorted(predictions['protocol'].unique())}; compare one at a time")
    is_ref = (predictions["model"] == reference[0]) & (predictions["feature_set"] == reference[1])
    if not is_ref.any():
        raise ValueError(f"reference {tuple(reference)} has no predictions; pick a (model, feature_set) present")
    ref = predictions[is_ref].drop(columns=KEYS)
    rows = []
    for key, group in predictions.groupby(KEYS, sort=False):
        if key == tuple(reference):
            continue
        paired = group.merge(ref, on="sample_id", how="inner", suffixes=("", "_ref"), validate="one_to_one")
        if paired.empty or (paired["y_true"] != paired["y_true_ref"]).any():
            raise ValueError(
                f"{key} and the reference {tuple(reference)} " + ("share no test cell" if paired.empty else
                "disagree on the label of some cells") + "; compare predictions of the same run and protocol"
            )
        y, groups = paired["y_true"].to_numpy(int), paired["subject_ref"].fillna("").astype(str).to_numpy()
        ones = np.ones((1, len(y)))
        own, theirs = (
            weighted_metrics(*check_predictions(y, paired[f"y_score{s}"], paired[f"y_pred{s}"]), ones)[metric][0]
            for s in ("", "_ref")
        )
        diff, low, high = paired_difference(
            y, paired["y_pred"], paired["y_pred_ref"], score_a=paired["y_score"], score_b=paired["y_score_ref"],
            groups=groups, metric=metric, n_boot=n_boot, seed=seed, level=level,
        )
        note = metric_reason(class_reasons(y, groups, unit_name=unit_name), metric)
        test = mcnemar_exact(paired["y_pred"].to_numpy() == y, paired["y_pred_ref"].to_numpy() == y)
        rows.append({
            "model": key[0], "feature_set": key[1], "n_paired": len(y), metric: own, f"reference_{metric}": theirs,
            "difference": diff, "difference_ci_low": np.nan if note else low,
            "difference_ci_high": np.nan if note else high, "difference_ci_note": note,
            "only_row_right": test.only_a, "only_reference_right": test.only_b, "mcnemar_p": test.p_value,
        })
    columns = [*KEYS, "n_paired", metric, f"reference_{metric}", "difference", "difference_ci_low",
               "difference_ci_high", "difference_ci_note", "only_row_right", "only_reference_right",
               "mcnemar_p", "holm_p", "indistinguishable"]
    table = pd.DataFrame(rows, columns=columns[:-2])
    table["holm_p"] = holm(table["mcnemar_p"].to_numpy(float))
    excludes_zero = (table["difference_ci_low"] > 0) | (table["difference_ci_high"] < 0)
    table["indistinguishable"] = ~((table["holm_p"] < alpha) & excludes_zero)
    return table[columns]


__all__ = ["McNemar", "holm", "mcnemar_exact", "paired_comparisons", "paired_difference"]
