"""Small-sample guard: intervals that a handful of subjects cannot support are not estimable.

A bootstrap that resamples 2 subjects of a class can only ever return a few values; with both
wrong it prints ``specificity 0.000 [0.000, 0.000]``, an interval that looks exact and says
nothing. The guard refuses an interval when

- a class has fewer than :data:`MIN_SUBJECTS` subjects (or blocks) among the evaluated cells:
  the spread between patients, which the interval is about, cannot be seen in fewer; or
- it rests on fewer than :data:`MIN_UNITS` distinct resampled units of a class (cells, where
  subjects are unknown): fewer give a handful of replicate values, not a distribution.

The metric's interval then becomes NaN with a reason such as ``not estimable (2 HEM subjects)``.
Recall uses only ALL units and specificity only HEM units; every other metric needs both.
The two floors are this project's choice (issue #16), not figures from the literature: the
cluster bootstrap's justification is asymptotic in the number of clusters (Field & Welsh 2007,
https://doi.org/10.1111/j.1467-9868.2007.00593.x), so with a handful of subjects it has no
claim to its nominal coverage. Passing the floors does not guarantee coverage either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from leukoscope.classifiers.metrics import METRICS, bootstrap_ci, resampling_units

MIN_SUBJECTS = 5
"""Fewest subjects (or blocks) of a class for an interval."""
MIN_UNITS = 3
"""Fewest distinct resampled units (subjects, blocks or cells) of a class for an interval."""
CLASS_NAMES = {1: "ALL", 0: "HEM"}
METRIC_CLASSES: dict[str, tuple[int, ...]] = {name: (1, 0) for name in METRICS} | {"recall": (1,), "specificity": (0,)}
"""The classes whose units a metric's interval rests on."""


class Interval(NamedTuple):
    """A confidence interval, or the reason it is not estimable.

    Attributes
    ----------
    low, high : float
        NaN when not estimable.
    reason : str
        ``""`` when estimable, else e.g. ``not estimable (2 HEM subjects)``.
    """

    low: float
    high: float
    reason: str


def unit_counts(
    y_true: Sequence[int] | np.ndarray, groups: Sequence[str] | np.ndarray | None
) -> pd.DataFrame:
    """Cells, named groups (subjects or blocks) and resampled units of each class.

    Parameters
    ----------
    y_true : (n,) int array-like
        1 = ALL, 0 = HEM.
    groups : (n,) sequence of str, optional
        Subject (or block) of every cell; ``""`` = unknown (the cell is its own unit).

    Returns
    -------
    DataFrame
        Index ``ALL``, ``HEM``; columns ``cells``, ``groups`` (distinct non-empty ids among the
        class's units) and ``units`` (distinct resampled units, see
        :func:`~leukoscope.classifiers.metrics.resampling_units`).
    """
    y_true = np.asarray(y_true, dtype=int).ravel()
    named = np.zeros(len(y_true), dtype=bool) if groups is None else np.asarray(groups, dtype=object).astype(str) != ""
    unit_of_sample, unit_class = resampling_units(y_true, groups)
    rows = {}
    for label, name in CLASS_NAMES.items():
        units = np.flatnonzero(unit_class == bool(label))
        in_class = np.isin(unit_of_sample, units)
        rows[name] = {
            "cells": int((y_true == label).sum()),
            "groups": len(set(unit_of_sample[in_class & named].tolist())),
            "units": len(units),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def class_reasons(
    y_true: Sequence[int] | np.ndarray, groups: Sequence[str] | np.ndarray | None, *, unit_name: str = "subjects"
) -> dict[str, str]:
    """Why intervals resting on each class are not estimable (``""`` when they are).

    Parameters
    ----------
    y_true, groups
        As in :func:`unit_counts`.
    unit_name : str
        What ``groups`` name, for the reason (``subjects``, ``blocks``).

    Returns
    -------
    dict of str to str
        ``ALL`` and ``HEM`` -> reason.
    """
    reasons = {}
    for name, row in unit_counts(y_true, groups).iterrows():
        if 0 < row["groups"] < MIN_SUBJECTS:
            reasons[name] = f"not estimable ({row['groups']} {name} {unit_name})"
        elif row["units"] < MIN_UNITS:
            kind = unit_name if row["groups"] else "cells"
            reasons[name] = f"not estimable ({row['units']} {name} {kind})"
        else:
            reasons[name] = ""
    return reasons


def metric_reason(reasons: dict[str, str], metric: str) -> str:
    """The reason a metric's interval is not estimable, from :func:`class_reasons` (``""`` if it is)."""
    found = [reasons[CLASS_NAMES[label]] for label in METRIC_CLASSES.get(metric, (1, 0))]
    return "; ".join(r for r in found if r)


def guarded_bootstrap_ci(
    y_true: Sequence[int] | np.ndarray,
    y_score: Sequence[float] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    *,
    groups: Sequence[str] | np.ndarray | None = None,
    unit_name: str = "subjects",
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Interval]:
    """:func:`~leukoscope.classifiers.metrics.bootstrap_ci` with the small-sample guard.

    Parameters
    ----------
    y_true, y_score, y_pred, groups, n_boot, seed, level
        As in :func:`~leukoscope.classifiers.metrics.bootstrap_ci`.
    unit_name : str
        What ``groups`` name, for the reasons.

    Returns
    -------
    dict of str to Interval
        Every metric of :data:`~leukoscope.classifiers.metrics.METRICS`.
    """
    intervals = bootstrap_ci(y_true, y_score, y_pred, groups=groups, n_boot=n_boot, seed=seed, level=level)
    reasons = class_reasons(y_true, groups, unit_name=unit_name)
    guarded = {}
    for name, (low, high) in intervals.items():
        reason = metric_reason(reasons, name)
        guarded[name] = Interval(np.nan, np.nan, reason) if reason else Interval(low, high, "")
    return guarded


def small_sample_warning(
    y_true: Sequence[int] | np.ndarray, groups: Sequence[str] | np.ndarray | None, *, unit_name: str = "subjects"
) -> str:
    """The warning for the top of a report when the evaluated cells come from few units.

    Parameters
    ----------
    y_true, groups, unit_name
        As in :func:`class_reasons`: the evaluated (test) cells.

    Returns
    -------
    str
        ``""`` when both classes have enough units.
    """
    reasons = class_reasons(y_true, groups, unit_name=unit_name)
    if not any(reasons.values()):
        return ""
    counts = unit_counts(y_true, groups)
    shown = " and ".join(
        f"{row['groups']} {name} {unit_name}" if row["groups"] else f"{row['units']} {name} cells"
        for name, row in counts.iterrows()
    )
    return (
        f"Warning: the test cells come from {shown}. Intervals resting on a class with fewer than "
        f"{MIN_SUBJECTS} {unit_name} (or fewer than {MIN_UNITS} resampled units) are marked not estimable, "
        f"and every figure here may not hold for other patients: add {unit_name} before drawing conclusions."
    )


__all__ = [
    "CLASS_NAMES",
    "Interval",
    "METRIC_CLASSES",
    "MIN_SUBJECTS",
    "MIN_UNITS",
    "class_reasons",
    "guarded_bootstrap_ci",
    "metric_reason",
    "small_sample_warning",
    "unit_counts",
]
