"""Calibration of P(ALL): Brier score, reliability-diagram bins and figure, subject-level AUC.

A score that ranks cells well (high AUC) may still say "0.9" where 60 % are ALL. The Brier
score (Brier 1950, https://doi.org/10.1175/1520-0493(1950)078<0001:VOFEIT>2.0.CO;2) is the
mean squared error of P(ALL) against the 0/1 truth (0 is perfect; always saying the
prevalence p scores p(1 - p)). A reliability diagram bins the scores and plots the share of
ALL cells in each bin against the bin's mean score: a calibrated model lies on the diagonal
(DeGroot & Fienberg 1983, https://doi.org/10.2307/2987588); the figure is drawn by
:func:`leukoscope.pipeline.calibration_figures.reliability_figure`.

A patient is diagnosed, not a cell: :func:`subject_auc` averages P(ALL) over each subject's
cells and measures how well that average ranks ALL above HEM subjects, with a bootstrap
interval that resamples subjects within their class, guarded by the small-sample rule of
:mod:`~leukoscope.classifiers.intervals`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from leukoscope.classifiers.intervals import class_reasons, metric_reason
from leukoscope.classifiers.metrics import binary_metrics, bootstrap_ci, check_predictions, predict_labels

KEYS = ["model", "feature_set"]


def brier_score(y_true: Sequence[int] | np.ndarray, y_score: Sequence[float] | np.ndarray) -> float:
    """Mean of ``(y_score - y_true)^2``.

    Parameters
    ----------
    y_true : (n,) int array-like
        1 = ALL, 0 = HEM.
    y_score : (n,) float array-like
        P(ALL).

    Returns
    -------
    float
        NaN for no cells; the same as :func:`sklearn.metrics.brier_score_loss`.
    """
    y_true, y_score, _ = check_predictions(y_true, y_score, predict_labels(y_score))
    return float(np.mean((y_score - y_true) ** 2)) if len(y_true) else float("nan")


def reliability_bins(
    y_true: Sequence[int] | np.ndarray, y_score: Sequence[float] | np.ndarray, *, n_bins: int = 10
) -> pd.DataFrame:
    """The data of a reliability diagram: ``n_bins`` equal-width bins of P(ALL) over [0, 1].

    Parameters
    ----------
    y_true, y_score
        As in :func:`brier_score`.
    n_bins : int
        Bin ``k`` holds scores in ``[k / n_bins, (k + 1) / n_bins)``; the last bin includes 1.

    Returns
    -------
    DataFrame
        One row per bin: ``bin_low``, ``bin_high``, ``cells``, ``mean_score`` and
        ``fraction_all`` (NaN in an empty bin). The non-empty rows match
        :func:`sklearn.calibration.calibration_curve` with ``strategy="uniform"``.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    y_true, y_score, _ = check_predictions(y_true, y_score, predict_labels(y_score))
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.searchsorted(edges[1:-1], y_score, side="right"), 0, n_bins - 1)
    cells = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_score = np.bincount(index, weights=y_score, minlength=n_bins) / cells
        fraction = np.bincount(index, weights=y_true, minlength=n_bins) / cells
    return pd.DataFrame({"bin_low": edges[:-1], "bin_high": edges[1:], "cells": cells,
                         "mean_score": mean_score, "fraction_all": fraction})


class SubjectAUC(NamedTuple):
    """ROC AUC of per-subject mean P(ALL), and its interval or why it is not estimable.

    Attributes
    ----------
    auc, low, high : float
    n_all, n_hem : int
        Subjects of each class.
    reason : str
        ``""``, or e.g. ``not estimable (2 HEM subjects)``.
    """

    auc: float
    low: float
    high: float
    n_all: int
    n_hem: int
    reason: str


def subject_scores(
    y_true: Sequence[int] | np.ndarray, y_score: Sequence[float] | np.ndarray, subjects: Sequence[str] | np.ndarray
) -> pd.DataFrame:
    """Per subject: its class (majority of its cells' labels, ALL on a tie) and mean P(ALL).

    Cells with an unknown (``""``) subject are left out.

    Returns
    -------
    DataFrame
        Index ``subject``; columns ``y_true`` (int), ``y_score``, ``cells``.
    """
    y_true, y_score, _ = check_predictions(y_true, y_score, predict_labels(y_score))
    subjects = np.asarray(subjects, dtype=object).astype(str)
    frame = pd.DataFrame({"subject": subjects, "y_true": y_true, "y_score": y_score})
    grouped = frame[frame["subject"] != ""].groupby("subject")
    table = grouped[["y_true", "y_score"]].mean().assign(cells=grouped.size())
    table["y_true"] = (table["y_true"] >= 0.5).astype(int)
    return table


def subject_auc(
    y_true: Sequence[int] | np.ndarray,
    y_score: Sequence[float] | np.ndarray,
    subjects: Sequence[str] | np.ndarray,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> SubjectAUC:
    """ROC AUC of the subjects' mean P(ALL), with a bootstrap interval over subjects.

    Parameters
    ----------
    y_true, y_score : (n,) array-like
        Per cell.
    subjects : (n,) sequence of str
        Subject of every cell; ``""`` cells are left out.
    n_boot, seed, level
        Bootstrap (subjects resampled within their class).

    Returns
    -------
    SubjectAUC
        NaN AUC without subjects of both classes; NaN bounds and a reason when a class has
        fewer subjects than :data:`~leukoscope.classifiers.intervals.MIN_SUBJECTS`.
    """
    table = subject_scores(y_true, y_score, subjects)
    truth, score = table["y_true"].to_numpy(), table["y_score"].to_numpy()
    n_all, n_hem = int(truth.sum()), int(len(truth) - truth.sum())
    if len(table) == 0:
        return SubjectAUC(np.nan, np.nan, np.nan, 0, 0, "not estimable (no subjects)")
    auc = binary_metrics(truth, score, predict_labels(score))["roc_auc"]
    reason = metric_reason(class_reasons(truth, table.index.to_numpy(dtype=object)), "roc_auc")
    if reason:
        return SubjectAUC(auc, np.nan, np.nan, n_all, n_hem, reason)
    low, high = bootstrap_ci(truth, score, predict_labels(score), n_boot=n_boot, seed=seed, level=level)["roc_auc"]
    return SubjectAUC(auc, low, high, n_all, n_hem, "")


def calibration_table(predictions: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Brier score and subject-level AUC of every model x feature set.

    Parameters
    ----------
    predictions : DataFrame
        Predictions format: ``subject, model, feature_set, y_true, y_score`` at least.
    n_boot, seed
        Bootstrap of the subject-level AUC.

    Returns
    -------
    DataFrame
        One row per model x feature set: ``model``, ``feature_set``, ``cells``, ``brier``,
        ``subject_auc``, ``subject_auc_ci_low``, ``subject_auc_ci_high``,
        ``subject_auc_ci_note``, ``n_all_subjects``, ``n_hem_subjects``.
    """
    rows = []
    for (model, feature_set), group in predictions.groupby(KEYS, sort=False):
        subjects = group["subject"].fillna("").astype(str) if "subject" in group else np.full(len(group), "")
        auc = subject_auc(group["y_true"], group["y_score"], subjects, n_boot=n_boot, seed=seed)
        rows.append({"model": model, "feature_set": feature_set, "cells": len(group),
                     "brier": brier_score(group["y_true"], group["y_score"]), "subject_auc": auc.auc,
                     "subject_auc_ci_low": auc.low, "subject_auc_ci_high": auc.high, "subject_auc_ci_note": auc.reason,
                     "n_all_subjects": auc.n_all, "n_hem_subjects": auc.n_hem})
    columns = [*KEYS, "cells", "brier", "subject_auc", "subject_auc_ci_low", "subject_auc_ci_high",
               "subject_auc_ci_note", "n_all_subjects", "n_hem_subjects"]
    return pd.DataFrame(rows, columns=columns)


__all__ = [
    "SubjectAUC",
    "brier_score",
    "calibration_table",
    "reliability_bins",
    "subject_auc",
    "subject_scores",
]
