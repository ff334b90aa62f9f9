"""ALL against HEM, one feature at a time, with the subject as the unit of replication.

For every feature the univariate table gives

- effect sizes on the subject medians (:mod:`leukoscope.features.subjects`): Cliff's delta and
  Hedges' g with percentile bootstrap intervals over subjects
  (:func:`leukoscope.features.effects.effect_sizes`);
- the two-sided Mann-Whitney U test on the subject medians (``scipy.stats.mannwhitneyu``);
- the random-intercept model on the cells, ``feature ~ label + (1 | subject)``
  (:func:`leukoscope.features.mixed.fit_random_intercept`): the ALL - HEM difference, its
  standard error, its p value (t with ``n_subjects - 2`` degrees of freedom) and the
  intra-class correlation;
- Benjamini-Hochberg q values over all features, separately for the Mann-Whitney and the
  mixed-model p values;
- the number of subjects and cells of each class that have a value.

A test over cells (a t test on all cells) is not reported: it counts a patient's cells as
independent and gives p values that are far too small when a few subjects contribute most cells.

Where the data name no subjects (ALL-IDB2), every cell is its own subject, the tests are over
cells, and ``level`` says ``cell`` with a ``note`` why that is weaker.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from enum import Enum

import numpy as np
import pandas as pd
from scipy import stats

from leukoscope.features.effects import EffectSizes, benjamini_hochberg, effect_sizes
from leukoscope.features.mixed import fit_random_intercept
from leukoscope.features.subjects import (
    DICTIONARY_COLUMNS,
    LABEL,
    MEDIAN,
    QcRule,
    feature_columns,
    has_subject,
    kept_cells,
    stat_column,
    subject_ids,
    subject_table,
)

POSITIVE, NEGATIVE = "ALL", "HEM"


class Level(str, Enum):
    """The unit the tests treat as independent.

    ``SUBJECT``: subjects (patients), each summarised by its cells.
    ``CELL``: cells, because every subject has a single cell (e.g. no subject ids).
    """

    SUBJECT = "subject"
    CELL = "cell"


class Effect(str, Enum):
    """The effect sizes of the table (the value is the column name)."""

    CLIFFS_DELTA = "cliffs_delta"
    HEDGES_G = "hedges_g"


class Test(str, Enum):
    """The tests of the table (the value prefixes its ``_p`` and ``_q`` columns)."""

    MANN_WHITNEY = "mw"
    MIXED = "mixed"


CELL_LEVEL_NOTE = ("cell-level: every subject has a single cell (the data name no subjects), so the tests treat "
                   "cells as independent; if several cells come from one patient, the p and q values are too "
                   "small and the intervals too narrow")

#: Column -> (description, unit) of the univariate table, in table order.
COLUMNS: dict[str, tuple[str, str]] = {
    "feature": ("feature column of the cell table", ""),
    "level": (("unit of the tests: 'subject' (subject medians, mixed model over subjects' cells) or 'cell' "
               "(every subject has one cell: see note)"), ""),
    "n_subjects_all": ("ALL subjects with a value of the feature", "subjects"),
    "n_subjects_hem": ("HEM subjects with a value of the feature", "subjects"),
    "n_cells_all": ("ALL cells with a value of the feature (after the qc rule)", "cells"),
    "n_cells_hem": ("HEM cells with a value of the feature (after the qc rule)", "cells"),
    "median_all": ("median of the ALL subjects' medians", "feature"),
    "median_hem": ("median of the HEM subjects' medians", "feature"),
    "cliffs_delta": ("Cliff's delta of the subject medians, P(ALL > HEM) - P(ALL < HEM), in [-1, 1]", "1"),
    "cliffs_delta_low": (("lower bound of the percentile bootstrap interval of cliffs_delta (subjects "
                          "resampled within each class)"), "1"),
    "cliffs_delta_high": ("upper bound of that interval", "1"),
    "hedges_g": (("Hedges' g of the subject medians: (mean ALL - mean HEM) / pooled SD (ddof 1), times "
                  "J = 1 - 3 / (4 (n_ALL + n_HEM) - 9)"), "1"),
    "hedges_g_low": ("lower bound of the percentile bootstrap interval of hedges_g", "1"),
    "hedges_g_high": ("upper bound of that interval", "1"),
    "mw_p": ("two-sided Mann-Whitney U test of the subject medians (scipy.stats.mannwhitneyu, method auto)", "1"),
    "mw_q": ("Benjamini-Hochberg q value of mw_p over all features of the table", "1"),
    "mixed_estimate": (("ALL - HEM difference of the random-intercept model feature ~ label + (1 | subject) "
                        "on the cells (REML)"), "feature"),
    "mixed_se": ("standard error of mixed_estimate (observed information)", "feature"),
    "mixed_p": ("two-sided p of mixed_estimate / mixed_se against a t distribution with mixed_df df", "1"),
    "mixed_df": ("degrees of freedom of mixed_p: subjects with a value minus 2 (nlme's between-within df)",
                 "1"),
    "mixed_q": ("Benjamini-Hochberg q value of mixed_p over all features of the table", "1"),
    "mixed_icc": ("intra-class correlation of the model: between-subject share of the variance", "1"),
    "note": ("why a value is missing or weaker than it looks; empty when nothing to say", ""),
}


def univariate_dictionary() -> pd.DataFrame:
    """The data dictionary of :func:`univariate_table`: ``name, description, unit`` per column.

    A unit ``feature`` means the unit of the row's feature, listed in the feature data
    dictionary (``columns.csv``).
    """
    return pd.DataFrame([(name, *spec) for name, spec in COLUMNS.items()], columns=DICTIONARY_COLUMNS)


def _feature_seed(seed: int, feature: str) -> list[int]:
    """A seed per feature, so a feature's intervals do not depend on the other features."""
    return [seed, zlib.crc32(feature.encode())]


def _mann_whitney_p(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x[~np.isnan(x)], y[~np.isnan(y)]
    if len(x) == 0 or len(y) == 0:
        return float("nan")
    return float(stats.mannwhitneyu(x, y, alternative="two-sided").pvalue)


def _notes(table: pd.DataFrame, level: Level, unnamed_cells: int) -> list[str]:
    common = [CELL_LEVEL_NOTE] if level is Level.CELL else []
    if level is Level.SUBJECT and unnamed_cells:
        common.append(f"{unnamed_cells} cells without a subject id are counted as subjects of their own")
    notes = []
    for row in table.itertuples(index=False):
        own = list(common)
        empty = [c for c, n in ((POSITIVE, row.n_subjects_all), (NEGATIVE, row.n_subjects_hem)) if n == 0]
        if empty:
            own.append(f"no {' or '.join(empty)} subject has a value: no effect size or test")
        elif np.isnan(row.mixed_p):
            own.append("constant over the cells, or too few cells: no mixed model")
        notes.append("; ".join(own))
    return notes


def univariate_table(
    cells: pd.DataFrame,
    features: Sequence[str] | None = None,
    *,
    qc: QcRule | str = QcRule.KEEP,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """ALL against HEM for every feature, by subject (see the module docstring).

    Parameters
    ----------
    cells : pandas.DataFrame
        One row per cell (``handcrafted.csv``): ``sample_id``, ``subject``, ``label``, optional
        ``qc_flag``, and the features. Cells without an ``ALL``/``HEM`` label are left out.
    features : sequence of str, optional
        Feature columns to test (default all numeric non-metadata columns).
    qc : QcRule
        ``keep`` or ``drop_flagged``, as in :func:`~leukoscope.features.subjects.subject_table`.
    n_boot : int
        Bootstrap replicates of the effect-size intervals (0: no intervals).
    confidence : float
        Coverage of the intervals.
    seed : int
        Seed of the bootstrap; each feature draws from ``(seed, crc32(feature))``, so its
        intervals do not depend on which other features are in the table.

    Returns
    -------
    pandas.DataFrame
        One row per feature in input order, the columns of :data:`COLUMNS` (counts int64,
        ``feature``/``level``/``note`` str, the rest float64).

    Raises
    ------
    ValueError
        No ALL or no HEM cell, a feature column missing or not numeric, or a subject with
        cells of both classes.
    """
    features = feature_columns(cells) if features is None else list(features)
    labelled = cells[cells[LABEL].isin([POSITIVE, NEGATIVE])] if LABEL in cells.columns else cells.iloc[:0]
    present = set(labelled[LABEL]) if len(labelled) else set()
    if present != {POSITIVE, NEGATIVE}:
        raise ValueError(f"the univariate table compares ALL with HEM cells, but the cell table has labels "
                         f"{sorted(present) or 'none'} among ALL/HEM; it needs both (label column 'ALL'/'HEM')")
    subjects = subject_table(labelled, features, qc=qc)
    level = Level.CELL if subjects["n_cells"].max() <= 1 else Level.SUBJECT
    keep = kept_cells(labelled, qc)
    cell_values = labelled.loc[keep, features].to_numpy(dtype=np.float64)
    cell_all = (labelled.loc[keep, LABEL] == POSITIVE).to_numpy()
    fit = fit_random_intercept(cell_values, subject_ids(labelled)[keep], cell_all)
    is_all = (subjects[LABEL] == POSITIVE).to_numpy()
    rows = []
    for feature in features:
        medians = subjects[stat_column(feature, MEDIAN)].to_numpy()
        x, y = medians[is_all], medians[~is_all]
        sizes: EffectSizes = effect_sizes(x, y, n_boot=n_boot, confidence=confidence,
                                          rng=np.random.default_rng(_feature_seed(seed, feature)))
        rows.append({
            "n_subjects_all": int(np.sum(~np.isnan(x))), "n_subjects_hem": int(np.sum(~np.isnan(y))),
            "median_all": float(np.nanmedian(x)) if np.any(~np.isnan(x)) else np.nan,
            "median_hem": float(np.nanmedian(y)) if np.any(~np.isnan(y)) else np.nan,
            **sizes._asdict(), "mw_p": _mann_whitney_p(x, y),
        })
    table = pd.DataFrame(rows)
    defined = ~np.isnan(cell_values)
    table.insert(0, "feature", features)
    table.insert(1, "level", level.value)
    table.insert(4, "n_cells_all", defined[cell_all].sum(axis=0).astype(np.int64))
    table.insert(5, "n_cells_hem", defined[~cell_all].sum(axis=0).astype(np.int64))
    table["mw_q"] = benjamini_hochberg(table["mw_p"])
    table["mixed_estimate"], table["mixed_se"], table["mixed_p"] = fit.estimate, fit.se, fit.p
    table["mixed_df"] = fit.df
    table["mixed_q"] = benjamini_hochberg(fit.p)
    table["mixed_icc"] = fit.icc
    unnamed = int((~has_subject(labelled) & keep).sum())
    table["note"] = _notes(table, level, unnamed)
    return table[list(COLUMNS)]
