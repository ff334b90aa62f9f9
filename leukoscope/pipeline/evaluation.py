"""The compare stage's evaluation tables, from out-of-fold predictions to what the report shows.

Every table here is a DataFrame made from prediction rows (``sample_id, subject, unit,
protocol, fold, model, feature_set, y_true, y_score, y_pred``), where ``unit`` is the protocol's
resampling unit (:func:`~leukoscope.classifiers.splits.split_groups`: the subject, the block of
``blocked-cv``, ``""`` for each cell its own under ``stratified-cv``):

- :func:`summarise`: one results row per model x feature set, with 95 % intervals that the
  small-sample guard may declare not estimable (:mod:`leukoscope.classifiers.intervals`);
- :func:`paired_table`: every row against the selection-corrected headline;
- :func:`confound_table`: the models trained on the colour outside the cell, with a verdict;
- :func:`keras_table`: the heads' metrics counted as the reference paper's Keras did.

:class:`Evaluation` bundles them for :func:`leukoscope.pipeline.report.write_report`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np
import pandas as pd

from leukoscope.classifiers.baselines import BASELINE_FEATURE_SET, BASELINE_MODEL, beats_baseline, confound_verdict
from leukoscope.classifiers.choices import Protocol
from leukoscope.classifiers.comparison import paired_comparisons
from leukoscope.classifiers.intervals import guarded_bootstrap_ci
from leukoscope.classifiers.keras_metrics import KERAS_METRICS, keras_elementwise_metrics
from leukoscope.classifiers.metrics import METRICS, binary_metrics, subject_vote_accuracy
from leukoscope.classifiers.selection import NESTED_FEATURE_SET, NESTED_MODEL
from leukoscope.classifiers.splits import encode_labels
from leukoscope.pipeline.layout import HEAD_OUTPUT_COLUMNS, PREDICTION_COLUMNS, UNIT_COLUMN

HEADLINE = (NESTED_MODEL, NESTED_FEATURE_SET)
BASELINE = (BASELINE_MODEL, BASELINE_FEATURE_SET)
UNRECORDED = "unrecorded"
COMPARE_PREDICTION_COLUMNS = [*PREDICTION_COLUMNS, UNIT_COLUMN]


class Role(str, Enum):
    """What a results row is: the headline, the baseline, one of the candidates, or a head."""

    HEADLINE = "headline"
    BASELINE = "baseline"
    CANDIDATE = "candidate"
    HEAD = "head"


RESULT_COLUMNS = [
    "role", "model", "feature_set", "protocol", "weights", "n_train", "n_test", *METRICS,
    *[f"{m}_{end}" for m in METRICS for end in ("ci_low", "ci_high", "ci_note")],
    "subject_accuracy", "n_test_subjects",
]


def unit_name(protocol: Protocol) -> str:
    """What the resampling unit of ``protocol`` is called in reasons and counts."""
    return "blocks" if protocol is Protocol.BLOCKED_CV else "subjects"


def role_of(model: str, feature_set: str) -> Role:
    """The :class:`Role` of a results row."""
    if (model, feature_set) == HEADLINE:
        return Role.HEADLINE
    if (model, feature_set) == BASELINE:
        return Role.BASELINE
    return Role.HEAD if feature_set.startswith("head_") else Role.CANDIDATE


def with_truth(predictions: pd.DataFrame, samples: pd.DataFrame, units: np.ndarray, protocol: Protocol) -> pd.DataFrame:
    """Prediction rows with ``subject``, ``unit``, ``y_true`` and ``protocol`` taken from the samples.

    Parameters
    ----------
    predictions : DataFrame
        At least ``sample_id, fold, model, feature_set, y_score, y_pred``.
    samples : DataFrame
        ``sample_id, label, subject`` of every sample the predictions name.
    units : (n,) str ndarray
        The protocol's unit of every row of ``samples``.
    protocol : Protocol

    Returns
    -------
    DataFrame
        :data:`COMPARE_PREDICTION_COLUMNS`.
    """
    truth = samples.assign(**{UNIT_COLUMN: units}).set_index("sample_id")
    rows = truth.reindex(predictions["sample_id"])
    return predictions.assign(
        subject=rows["subject"].fillna("").astype(str).to_numpy(), unit=rows[UNIT_COLUMN].fillna("").to_numpy(),
        y_true=encode_labels(rows["label"]).clip(min=0), protocol=protocol.value,
    )[COMPARE_PREDICTION_COLUMNS]


def summarise(predictions: pd.DataFrame, n_train: dict[str, int], weights: dict[str, str], *, unit_name: str,
              n_boot: int, seed: int) -> pd.DataFrame:
    """One results row per model x feature set from pooled out-of-fold predictions.

    Parameters
    ----------
    predictions : DataFrame
        :data:`COMPARE_PREDICTION_COLUMNS` (one protocol).
    n_train : dict
        Feature set -> mean size of its training parts.
    weights : dict
        Feature set -> CNN weights behind it.
    unit_name : str
        What ``unit`` names (:func:`unit_name`), for the not-estimable reasons.
    n_boot, seed
        Bootstrap replicates and seed of
        :func:`~leukoscope.classifiers.intervals.guarded_bootstrap_ci`, resampling ``unit``.

    Returns
    -------
    DataFrame
        :data:`RESULT_COLUMNS`, in the order of the predictions; a ``<metric>_ci_note`` says why
        an interval is not estimable (its bounds are then NaN).
    """
    rows = []
    for (model, feature_set), group in predictions.groupby(["model", "feature_set"], sort=False):
        y_true, y_score, y_pred = (group[c].to_numpy() for c in ("y_true", "y_score", "y_pred"))
        intervals = guarded_bootstrap_ci(y_true, y_score, y_pred, groups=group[UNIT_COLUMN].to_numpy(),
                                         unit_name=unit_name, n_boot=n_boot, seed=seed)
        vote, n_subjects = subject_vote_accuracy(y_true, y_score, y_pred, group["subject"].to_numpy())
        row = {"role": role_of(model, feature_set).value, "model": model, "feature_set": feature_set,
               "protocol": group["protocol"].iloc[0], "weights": weights.get(feature_set, UNRECORDED),
               "n_train": n_train.get(feature_set, np.nan), "n_test": len(group),
               **binary_metrics(y_true, y_score, y_pred)}
        for name, interval in intervals.items():
            row[f"{name}_ci_low"], row[f"{name}_ci_high"], row[f"{name}_ci_note"] = interval
        rows.append({**row, "subject_accuracy": vote, "n_test_subjects": n_subjects})
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def paired_table(predictions: pd.DataFrame, *, unit_name: str, n_boot: int, seed: int) -> pd.DataFrame:
    """Every other row against the headline (:func:`~leukoscope.classifiers.comparison.paired_comparisons`).

    The paired bootstrap resamples ``unit``; an empty table when there is no headline.
    """
    if not ((predictions["model"] == HEADLINE[0]) & (predictions["feature_set"] == HEADLINE[1])).any():
        return pd.DataFrame()
    return paired_comparisons(predictions.assign(subject=predictions[UNIT_COLUMN]), HEADLINE,
                              unit_name=unit_name, n_boot=n_boot, seed=seed)


def confound_table(results: pd.DataFrame) -> pd.DataFrame:
    """The surround-only rows of :func:`summarise`, each with its verdict and whether it warns.

    Returns
    -------
    DataFrame
        ``model, n_test, balanced_accuracy, balanced_accuracy_ci_low, balanced_accuracy_ci_high,
        balanced_accuracy_ci_note, confound`` (bool: the interval's lower bound clears
        :data:`~leukoscope.classifiers.baselines.CLEAR_MARGIN`), ``verdict``.
    """
    columns = ["model", "n_test", "balanced_accuracy", "balanced_accuracy_ci_low", "balanced_accuracy_ci_high",
               "balanced_accuracy_ci_note"]
    table = results[columns].copy()
    table["confound"] = [beats_baseline(low) for low in table["balanced_accuracy_ci_low"]]
    table["verdict"] = [confound_verdict(r.balanced_accuracy, r.balanced_accuracy_ci_low, r.balanced_accuracy_ci_high)
                        for r in table.itertuples()]
    return table.reset_index(drop=True)


def keras_table(heads: pd.DataFrame) -> pd.DataFrame:
    """Each head's accuracy, precision and recall counted as the reference paper's Keras metrics.

    Parameters
    ----------
    heads : DataFrame
        Rows of ``heads/predictions.csv`` with ``y_true`` and, when recorded, both sigmoid outputs
        (``out_hem``, ``out_all``).

    Returns
    -------
    DataFrame
        ``feature_set, cells, keras_accuracy, keras_precision, keras_recall``: Keras' binary
        accuracy, ``Precision()`` and ``Recall()`` over both outputs
        (:func:`~leukoscope.classifiers.keras_metrics.keras_elementwise_metrics`); NaN for a head
        whose outputs were not recorded.
    """
    rows = []
    for feature_set, group in heads.groupby("feature_set", sort=False):
        outputs = group.reindex(columns=HEAD_OUTPUT_COLUMNS).to_numpy(dtype=float)
        values = (keras_elementwise_metrics(group["y_true"].to_numpy(int), outputs) if np.isfinite(outputs).all()
                  else dict.fromkeys(KERAS_METRICS, np.nan))
        rows.append({"feature_set": feature_set, "cells": len(group), **{f"keras_{k}": v for k, v in values.items()}})
    return pd.DataFrame(rows, columns=["feature_set", "cells", *(f"keras_{k}" for k in KERAS_METRICS)])


@dataclass(frozen=True)
class Evaluation:
    """Everything the report shows of one comparison.

    Attributes
    ----------
    protocol : Protocol
    n_folds : int
        Outer splits.
    unit_name : str
        ``subjects`` or ``blocks`` (:func:`unit_name`).
    results, predictions, feature_sets, class_counts : DataFrame
        As written to ``results.csv``, ``predictions.csv``, ``feature_sets.csv``, ``class_counts.csv``.
    warning : str
        The small-sample warning (``""`` when the test cells come from enough units).
    paired, chosen, calibration, repeats, confound, keras : DataFrame
        ``paired.csv``, ``nested_chosen.csv``, ``calibration.csv``, ``repeats.csv`` (empty with one
        repeat), ``confound.csv`` (empty when not run), the heads' Keras metrics.
    notes : dict of str to str
        Why a part did not run (keys ``nested``, ``confound``), and the nested folds
        (``folds``: e.g. ``3 selection folds, 3 tuning folds``).
    """

    protocol: Protocol
    n_folds: int
    unit_name: str
    results: pd.DataFrame
    predictions: pd.DataFrame
    feature_sets: pd.DataFrame
    class_counts: pd.DataFrame
    warning: str = ""
    paired: pd.DataFrame = field(default_factory=pd.DataFrame)
    chosen: pd.DataFrame = field(default_factory=pd.DataFrame)
    calibration: pd.DataFrame = field(default_factory=pd.DataFrame)
    repeats: pd.DataFrame = field(default_factory=pd.DataFrame)
    confound: pd.DataFrame = field(default_factory=pd.DataFrame)
    keras: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: dict[str, str] = field(default_factory=dict)

    def headline(self) -> pd.Series | None:
        """The headline's results row, if the nested selection ran."""
        rows = self.results[self.results["role"] == Role.HEADLINE.value]
        return rows.iloc[0] if len(rows) else None


__all__ = [
    "BASELINE", "COMPARE_PREDICTION_COLUMNS", "Evaluation", "HEADLINE", "RESULT_COLUMNS", "Role",
    "confound_table", "keras_table", "paired_table", "role_of", "summarise", "unit_name", "with_truth",
]
