"""Binary classification metrics with ALL as the positive class, and bootstrap intervals.

All metrics are computed from (possibly weighted) confusion-matrix counts, so the point
estimate and every bootstrap replicate go through the same vectorised code: a bootstrap
replicate is the same data with each sample weighted by how often it was drawn.

Conventions: ``y_true`` and ``y_pred`` hold 1 = ALL, 0 = HEM; ``y_score`` is P(ALL), and a cell
is called ALL when ``y_score >= 0.5`` (:func:`predict_labels`, for every model and head). A metric
whose denominator is zero (e.g. precision when nothing is predicted ALL, ROC AUC on one class)
is NaN, never a silent 0.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

METRICS: tuple[str, ...] = (
    "accuracy",
    "precision",
    "recall",
    "specificity",
    "f1",
    "weighted_f1",
    "balanced_accuracy",
    "roc_auc",
)
"""Names of the metrics, in the order of the results table."""

THRESHOLD = 0.5
"""A sample is called ALL when its P(ALL) is at least this (``score >= 0.5``), for every model and head."""

_MAX_CELLS = 2_000_000  # replicates x samples evaluated at once: bounds the bootstrap's memory


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def check_predictions(y_true, y_score, y_pred) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``y_true``, ``y_score`` and ``y_pred`` as flat int, float and int arrays, checked.

    Raises
    ------
    ValueError
        The lengths differ, a label is not 0/1, or a score is not finite.
    """
    y_true = np.asarray(y_true, dtype=int).ravel()
    y_score = np.asarray(y_score, dtype=float).ravel()
    y_pred = np.asarray(y_pred, dtype=int).ravel()
    if not (len(y_true) == len(y_score) == len(y_pred)):
        raise ValueError(
            f"y_true, y_score and y_pred must have one value per sample; got lengths "
            f"{len(y_true)}, {len(y_score)} and {len(y_pred)}"
        )
    for name, values in (("y_true", y_true), ("y_pred", y_pred)):
        if not np.isin(values, (0, 1)).all():
            raise ValueError(f"{name} must hold 1 (ALL) and 0 (HEM) only")
    if not np.isfinite(y_score).all():
        raise ValueError("y_score must be finite (P(ALL) of every sample)")
    return y_true, y_score, y_pred


def confusion_matrix(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray) -> np.ndarray:
    """Confusion matrix ``[[TN, FP], [FN, TP]]`` (rows: true HEM, ALL; columns: predicted).

    Parameters
    ----------
    y_true, y_pred : (n,) int array-like
        1 = ALL, 0 = HEM.

    Returns
    -------
    (2, 2) int ndarray
        Same layout as :func:`sklearn.metrics.confusion_matrix` with ``labels=[0, 1]``.
    """
    y_true = np.asarray(y_true, dtype=int).ravel()
    y_pred = np.asarray(y_pred, dtype=int).ravel()
    return np.bincount(2 * y_true + y_pred, minlength=4).reshape(2, 2)


def _weighted_auc(y_true: np.ndarray, y_score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC of every row of ``weights`` (ties count one half), in O(B n log n)."""
    order = np.argsort(y_score, kind="stable")
    scores = y_score[order]
    starts = np.flatnonzero(np.r_[True, scores[1:] != scores[:-1]])
    w = weights[:, order]
    positive = y_true[order].astype(bool)
    pos = np.add.reduceat(np.where(positive, w, 0.0), starts, axis=1)
    neg = np.add.reduceat(np.where(positive, 0.0, w), starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    area = (pos * (below + 0.5 * neg)).sum(axis=1)
    return _ratio(area, pos.sum(axis=1) * neg.sum(axis=1))


def weighted_metrics(
    y_true: np.ndarray, y_score: np.ndarray, y_pred: np.ndarray, weights: np.ndarray
) -> dict[str, np.ndarray]:
    """Every metric of :data:`METRICS` for each row of ``weights``.

    Parameters
    ----------
    y_true, y_score, y_pred : (n,) ndarray
        As returned by :func:`check_predictions`.
    weights : (B, n) float ndarray
        One row of sample weights per evaluation (a bootstrap replicate, or ones).

    Returns
    -------
    dict of str to (B,) float ndarray
    """
    tp = weights @ ((y_true == 1) & (y_pred == 1)).astype(float)
    fp = weights @ ((y_true == 0) & (y_pred == 1)).astype(float)
    fn = weights @ ((y_true == 1) & (y_pred == 0)).astype(float)
    tn = weights @ ((y_true == 0) & (y_pred == 0)).astype(float)
    total = tp + fp + fn + tn
    recall = _ratio(tp, tp + fn)
    specificity = _ratio(tn, tn + fp)
    f1_all = _ratio(2 * tp, 2 * tp + fp + fn)
    f1_hem = _ratio(2 * tn, 2 * tn + fn + fp)
    with np.errstate(invalid="ignore"):
        weighted_f1 = _ratio(
            np.where(tp + fn > 0, (tp + fn) * f1_all, 0.0) + np.where(tn + fp > 0, (tn + fp) * f1_hem, 0.0),
            total,
        )
    return {
        "accuracy": _ratio(tp + tn, total),
        "precision": _ratio(tp, tp + fp),
        "recall": recall,
        "specificity": specificity,
        "f1": f1_all,
        "weighted_f1": weighted_f1,
        "balanced_accuracy": (recall + specificity) / 2,
        "roc_auc": _weighted_auc(y_true, y_score, weights),
    }


def binary_metrics(
    y_true: Sequence[int] | np.ndarray, y_score: Sequence[float] | np.ndarray, y_pred: Sequence[int] | np.ndarray
) -> dict[str, float]:
    """The metrics of :data:`METRICS` with ALL (1) as the positive class.

    ``precision`` = TP/(TP+FP), ``recall`` (sensitivity) = TP/(TP+FN), ``specificity`` =
    TN/(TN+FP), ``f1`` is the F1 of ALL, ``weighted_f1`` the mean of the F1 of both classes
    weighted by their support (the C-NMC 2019 ranking metric, scikit-learn's
    ``average='weighted'``), ``balanced_accuracy`` = (recall + specificity)/2 and ``roc_auc``
    the area under the ROC curve of ``y_score`` (ties count one half).

    Parameters
    ----------
    y_true : (n,) int array-like
        1 = ALL, 0 = HEM.
    y_score : (n,) float array-like
        P(ALL); only its order matters (ROC AUC).
    y_pred : (n,) int array-like
        Predicted class.

    Returns
    -------
    dict of str to float
        NaN where a denominator is zero.
    """
    y_true, y_score, y_pred = check_predictions(y_true, y_score, y_pred)
    values = weighted_metrics(y_true, y_score, y_pred, np.ones((1, len(y_true))))
    return {name: float(values[name][0]) for name in METRICS}


def predict_labels(y_score: Sequence[float] | np.ndarray) -> np.ndarray:
    """1 (ALL) where P(ALL) >= :data:`THRESHOLD`, else 0 (HEM): the one threshold rule.

    Parameters
    ----------
    y_score : (n,) float array-like
        P(ALL).

    Returns
    -------
    (n,) int ndarray
    """
    return (np.asarray(y_score, dtype=float) >= THRESHOLD).astype(int)


def _units(y_true: np.ndarray, groups: Sequence[str] | np.ndarray | None) -> np.ndarray:
    """Resampling unit of every sample: its subject, or itself where the subject is unknown."""
    index = np.arange(len(y_true)).astype(str)
    if groups is None:
        return index
    groups = np.asarray(groups, dtype=object).astype(str)
    return np.where(groups == "", np.char.add("#", index), np.char.add("=", groups))


def resampling_units(
    y_true: Sequence[int] | np.ndarray, groups: Sequence[str] | np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """The units the bootstrap resamples, and the class stratum of each.

    Parameters
    ----------
    y_true : (n,) int array-like
        1 = ALL, 0 = HEM.
    groups : (n,) sequence of str, optional
        Subject of every sample; ``""`` = unknown (the sample is its own unit).

    Returns
    -------
    unit_of_sample : (n,) int ndarray
        Index of every sample's unit, ``0 .. n_units - 1``.
    unit_class : (n_units,) bool ndarray
        True for an ALL unit: the majority label of its samples (ALL on a tie).
    """
    y_true = np.asarray(y_true, dtype=int).ravel()
    _, unit_of_sample = np.unique(_units(y_true, groups), return_inverse=True)
    unit_class = np.bincount(unit_of_sample, weights=y_true) * 2 >= np.bincount(unit_of_sample)
    return unit_of_sample, unit_class


def replicate_weights(
    y_true: Sequence[int] | np.ndarray,
    groups: Sequence[str] | np.ndarray | None,
    *,
    n_boot: int,
    seed: int,
) -> Iterator[np.ndarray]:
    """Sample weights of stratified cluster-bootstrap replicates, in chunks that bound memory.

    Units (:func:`resampling_units`) are drawn with replacement within their class stratum,
    so every replicate keeps the class balance and both classes: the cluster bootstrap of
    Field & Welsh (2007), https://doi.org/10.1111/j.1467-9868.2007.00593.x, stratified. A
    sample's weight is how often its unit was drawn. Two calls with the same ``y_true``,
    ``groups`` and ``seed`` give the same replicates, so paired statistics of two
    predictors can be evaluated on the same draws.

    Parameters
    ----------
    y_true : (n,) int array-like
    groups : (n,) sequence of str, optional
    n_boot : int
        Number of replicates in all.
    seed : int

    Yields
    ------
    (b, n) float ndarray
        Weights of ``b`` replicates; the chunks add up to ``n_boot`` rows.
    """
    unit_of_sample, unit_class = resampling_units(y_true, groups)
    rng = np.random.default_rng(seed)
    counts = np.zeros((n_boot, len(unit_class)))
    for stratum in (False, True):
        members = np.flatnonzero(unit_class == stratum)
        if len(members):
            counts[:, members] = rng.multinomial(len(members), np.full(len(members), 1 / len(members)), size=n_boot)
    chunk = max(1, _MAX_CELLS // max(len(unit_of_sample), 1))
    for start in range(0, n_boot, chunk):
        yield counts[start : start + chunk][:, unit_of_sample]


def percentile_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """Percentile interval of the finite ``values``; ``(nan, nan)`` when there are none."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return (np.nan, np.nan)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return (float(low), float(high))


def bootstrap_ci(
    y_true: Sequence[int] | np.ndarray,
    y_score: Sequence[float] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    *,
    groups: Sequence[str] | np.ndarray | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap confidence intervals of every metric, resampled by subject.

    Replicates come from :func:`replicate_weights` (subjects drawn with replacement within
    their class) and are evaluated as weighted data, vectorised.

    Parameters
    ----------
    y_true, y_score, y_pred : (n,) array-like
        As in :func:`binary_metrics`.
    groups : (n,) sequence of str, optional
        Subject of every sample; ``""`` = unknown (the sample is its own unit).
    n_boot : int
        Number of replicates; 0 gives NaN intervals.
    seed : int
        Seed of the resampling.
    level : float
        Coverage of the interval.

    Returns
    -------
    dict of str to (float, float)
        ``(low, high)`` of every metric of :data:`METRICS`; replicates where a metric is
        undefined are left out of its percentiles.
    """
    y_true, y_score, y_pred = check_predictions(y_true, y_score, y_pred)
    if n_boot <= 0 or len(y_true) == 0:
        return {name: (np.nan, np.nan) for name in METRICS}
    replicates: dict[str, list[np.ndarray]] = {name: [] for name in METRICS}
    for weights in replicate_weights(y_true, groups, n_boot=n_boot, seed=seed):
        for name, values in weighted_metrics(y_true, y_score, y_pred, weights).items():
            replicates[name].append(values)
    return {name: percentile_interval(np.concatenate(replicates[name]), level) for name in METRICS}


def subject_vote_accuracy(
    y_true: Sequence[int] | np.ndarray,
    y_score: Sequence[float] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    subjects: Sequence[str] | np.ndarray,
) -> tuple[float, int]:
    """Accuracy of a per-subject majority vote, and the number of subjects voted on.

    A subject is called ALL when more than half of its cells are predicted ALL (a tie goes to
    the mean ``y_score`` >= 0.5); its true class is the majority of its cells' labels (ALL on
    a tie). Samples with an unknown (``""``) subject are left out.

    Returns
    -------
    accuracy : float
        NaN when no sample has a subject.
    n_subjects : int
    """
    y_true, y_score, y_pred = check_predictions(y_true, y_score, y_pred)
    frame = pd.DataFrame(
        {"subject": np.asarray(subjects, dtype=object).astype(str), "true": y_true, "pred": y_pred, "score": y_score}
    )
    frame = frame[frame["subject"] != ""]
    if frame.empty:
        return float("nan"), 0
    means = frame.groupby("subject")[["true", "pred", "score"]].mean()
    called = (means["pred"] > 0.5) | ((means["pred"] == 0.5) & (means["score"] >= 0.5))
    truth = means["true"] >= 0.5
    return float((called == truth).mean()), len(means)


__all__ = [
    "METRICS",
    "THRESHOLD",
    "binary_metrics",
    "bootstrap_ci",
    "confusion_matrix",
    "check_predictions",
    "percentile_interval",
    "predict_labels",
    "replicate_weights",
    "resampling_units",
    "subject_vote_accuracy",
    "weighted_metrics",
]
