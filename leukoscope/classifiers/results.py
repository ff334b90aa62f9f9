"""The results table of ``compare`` (and of ``predict`` on labelled cells): one row per model x
feature set x protocol, with 95 % intervals, from pooled predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leukoscope.classifiers.metrics import METRICS, binary_metrics, bootstrap_ci, subject_vote_accuracy

RESULT_COLUMNS = [
    "model", "feature_set", "protocol", "weights", "n_train", "n_test", *METRICS,
    *[f"{m}_{end}" for m in METRICS for end in ("ci_low", "ci_high")],
    "subject_accuracy", "n_test_subjects",
]
UNRECORDED = "unrecorded"
"""The ``weights`` of a feature set whose CNN weights were not recorded."""


def summarise(predictions: pd.DataFrame, n_train: dict[str, int], weights: dict[str, str], *, n_boot: int,
              seed: int) -> pd.DataFrame:
    """One results row per model x feature set x protocol from pooled out-of-fold predictions.

    Parameters
    ----------
    predictions : DataFrame
        Rows in the predictions format (subject "" when unknown).
    n_train : dict
        Feature set -> mean size of its training parts.
    weights : dict
        Feature set -> CNN weights behind it.
    n_boot, seed
        Bootstrap replicates and seed (:func:`~leukoscope.classifiers.metrics.bootstrap_ci`).
    """
    rows = []
    for (model, feature_set, protocol), group in predictions.groupby(["model", "feature_set", "protocol"], sort=False):
        y_true, y_score, y_pred = (group[c].to_numpy() for c in ("y_true", "y_score", "y_pred"))
        subjects = group["subject"].to_numpy()
        point = binary_metrics(y_true, y_score, y_pred)
        ci = bootstrap_ci(y_true, y_score, y_pred, groups=subjects, n_boot=n_boot, seed=seed)
        vote, n_subjects = subject_vote_accuracy(y_true, y_score, y_pred, subjects)
        row = {"model": model, "feature_set": feature_set, "protocol": protocol,
               "weights": weights.get(feature_set, UNRECORDED), "n_train": n_train.get(feature_set, np.nan),
               "n_test": len(group), **point}
        for name in METRICS:
            row[f"{name}_ci_low"], row[f"{name}_ci_high"] = ci[name]
        rows.append({**row, "subject_accuracy": vote, "n_test_subjects": n_subjects})
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


__all__ = ["RESULT_COLUMNS", "UNRECORDED", "summarise"]
