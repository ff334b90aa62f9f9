"""Repeated cross-validation: how much a figure moves when only the fold assignment changes.

One cross-validation is one random partition of few subjects; another seed gives other folds
and another score. Repeating the outer cross-validation with seeds ``seed, seed + 1, ...`` and
reporting the mean and spread across repeats separates the partition's luck from the model
(Bouckaert & Frank 2004, https://doi.org/10.1007/978-3-540-24775-3_3). The spread across
repeats is not a confidence interval: every repeat uses the same cells.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pandas as pd

from leukoscope.classifiers.blocks import DEFAULT_BLOCK_SIZE
from leukoscope.classifiers.choices import Protocol
from leukoscope.classifiers.errors import EvaluationError
from leukoscope.classifiers.metrics import binary_metrics
from leukoscope.classifiers.splits import Split, iter_splits, resolve_protocol

KEYS = ["model", "feature_set"]


def iter_repeats(
    table: pd.DataFrame,
    *,
    protocol: Protocol | str,
    folds: int = 5,
    seed: int = 0,
    repeats: int = 5,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> Iterator[tuple[int, list[Split]]]:
    """The splits of every repeat: ``(repeat seed, splits)`` for seeds ``seed .. seed + repeats - 1``.

    Parameters
    ----------
    table, protocol, folds, block_size
        As in :func:`~leukoscope.classifiers.splits.iter_splits`.
    seed : int
        Seed of the first repeat (the run's own folds).
    repeats : int
        Number of repeats; at least 1.

    Yields
    ------
    (int, list of Split)

    Raises
    ------
    EvaluationError
        ``repeats`` below 1, or the ``official`` protocol (one fixed split: nothing to repeat).
    """
    if repeats < 1:
        raise EvaluationError(f"repeats must be at least 1, got {repeats}")
    if resolve_protocol(table, protocol) is Protocol.OFFICIAL:
        raise EvaluationError("the official protocol is one fixed split, so repeats would all be the same; "
                              "repeat a cross-validation protocol (group-cv, blocked-cv, stratified-cv)")
    for k in range(repeats):
        yield seed + k, list(iter_splits(table, protocol=protocol, folds=folds, seed=seed + k, block_size=block_size))


def summarise_repeats(
    predictions: pd.DataFrame, *, metrics: Sequence[str] = ("balanced_accuracy", "roc_auc")
) -> pd.DataFrame:
    """Mean and spread across repeats of each model x feature set's pooled out-of-fold metrics.

    Parameters
    ----------
    predictions : DataFrame
        Predictions format with a ``repeat`` column: ``repeat, model, feature_set, y_true,
        y_score, y_pred``.
    metrics : sequence of str
        Metrics of :data:`~leukoscope.classifiers.metrics.METRICS` to summarise.

    Returns
    -------
    DataFrame
        One row per model x feature set: ``model``, ``feature_set``, ``repeats``, then for each
        metric ``<metric>_mean``, ``<metric>_std`` (sample standard deviation across repeats,
        NaN for one repeat), ``<metric>_min`` and ``<metric>_max``.
    """
    per_repeat = []
    for (model, feature_set, repeat), group in predictions.groupby([*KEYS, "repeat"], sort=False):
        values = binary_metrics(group["y_true"], group["y_score"], group["y_pred"])
        per_repeat.append({"model": model, "feature_set": feature_set, "repeat": repeat,
                           **{m: values[m] for m in metrics}})
    table = pd.DataFrame(per_repeat, columns=[*KEYS, "repeat", *metrics])
    summary = table.groupby(KEYS, sort=False).agg(
        repeats=("repeat", "nunique"),
        **{f"{m}_{stat}": (m, stat) for m in metrics for stat in ("mean", "std", "min", "max")},
    )
    return summary.reset_index()


__all__ = ["iter_repeats", "summarise_repeats"]
