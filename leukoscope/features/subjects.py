"""One row per subject: the median and interquartile range of every feature over its cells.

Cells of one patient share the patient's disease, stain and smear, so they are not independent
observations: 300 cells of one patient are one patient, not 300. Comparing ALL with HEM over
cells treats them as independent (pseudo-replication; Lazic 2010,
https://doi.org/10.1186/1471-2202-11-5) and overstates significance. The subject table
summarises each subject by robust statistics of its cells, so that every subject counts once.

Columns: ``subject, label, n_cells, n_cells_flagged``, then for every feature, in input order,
``<feature>__median`` and ``<feature>__iqr``. The double underscore separates the statistic
from the feature name, whose words are joined by single underscores
(``<family>_<feature>[_<region>][_<param>]``), so ``name.rsplit("__", 1)`` gives both.

A cell whose ``subject`` is empty (a dataset without patient ids, e.g. ALL-IDB2) is its own
subject, named by its ``sample_id``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from leukoscope.features.choices import QcRule

SAMPLE_ID = "sample_id"
SUBJECT = "subject"
LABEL = "label"
QC_FLAG = "qc_flag"
#: Columns of a cell table that are never features.
META_COLUMNS = (SAMPLE_ID, SUBJECT, LABEL, "split", "path", "sha256", QC_FLAG)
#: The columns before the per-feature statistics in :func:`subject_table`.
SUBJECT_COLUMNS = [SUBJECT, LABEL, "n_cells", "n_cells_flagged"]
MEDIAN = "median"
IQR = "iqr"
SEPARATOR = "__"
DICTIONARY_COLUMNS = ["name", "description", "unit"]


def feature_columns(cells: pd.DataFrame) -> list[str]:
    """The numeric columns of a cell table other than :data:`META_COLUMNS`, in table order."""
    return [c for c in cells.columns if c not in META_COLUMNS and pd.api.types.is_numeric_dtype(cells[c])]


def stat_column(feature: str, statistic: str) -> str:
    """``<feature>__<statistic>``, the name of a statistic of a feature in the subject table."""
    return f"{feature}{SEPARATOR}{statistic}"


def _text(cells: pd.DataFrame, name: str) -> np.ndarray:
    if name not in cells.columns:
        return np.full(len(cells), "", dtype=object)
    return cells[name].fillna("").astype(str).to_numpy(dtype=object)


def has_subject(cells: pd.DataFrame) -> np.ndarray:
    """(n_cells,) bool ndarray: the cells whose ``subject`` is not empty (all False without the column)."""
    return _text(cells, SUBJECT) != ""


def subject_ids(cells: pd.DataFrame) -> np.ndarray:
    """The subject of every cell: its ``subject``, or its ``sample_id`` where that is empty.

    Parameters
    ----------
    cells : pandas.DataFrame
        Cell table with ``subject`` (optional) and ``sample_id`` columns.

    Returns
    -------
    (n_cells,) object ndarray of str

    Raises
    ------
    ValueError
        Some cells have no subject and the table has no ``sample_id`` column to name them.
    """
    subjects = _text(cells, SUBJECT)
    missing = ~has_subject(cells)
    if missing.any():
        if SAMPLE_ID not in cells.columns:
            raise ValueError(f"{int(missing.sum())} cells have no subject and the table has no 'sample_id' "
                             "column to name them; add either column")
        subjects = np.where(missing, _text(cells, SAMPLE_ID), subjects)
    return subjects


def subject_labels(subjects: np.ndarray, labels: np.ndarray) -> pd.Series:
    """The label of every subject, indexed by subject in order of first appearance.

    Raises
    ------
    ValueError
        A subject has cells with different labels (ALL and HEM, or a label and none).
    """
    pairs = pd.DataFrame({SUBJECT: subjects, LABEL: labels}).drop_duplicates()
    mixed = pairs[SUBJECT][pairs[SUBJECT].duplicated()].unique()
    if len(mixed):
        shown = ", ".join(f"{s!r} ({'/'.join(sorted(pairs.loc[pairs[SUBJECT] == s, LABEL]))})" for s in mixed[:5])
        raise ValueError(f"{len(mixed)} subjects have cells with different labels: {shown}; a subject is "
                         "one patient with one diagnosis, so fix the labels or the subject ids of those cells")
    return pairs.set_index(SUBJECT)[LABEL]


def flagged_cells(cells: pd.DataFrame) -> np.ndarray:
    """(n_cells,) bool ndarray: the cells with a non-empty ``qc_flag`` (False without the column)."""
    return _text(cells, QC_FLAG) != ""


def kept_cells(cells: pd.DataFrame, qc: QcRule | str) -> np.ndarray:
    """(n_cells,) bool ndarray: the cells that enter the statistics under the rule ``qc``."""
    qc = QcRule(qc)
    return ~flagged_cells(cells) if qc is QcRule.DROP_FLAGGED else np.ones(len(cells), dtype=bool)


def subject_table(
    cells: pd.DataFrame, features: Sequence[str] | None = None, *, qc: QcRule | str = QcRule.KEEP
) -> pd.DataFrame:
    """Median and interquartile range of every feature over each subject's cells.

    Parameters
    ----------
    cells : pandas.DataFrame
        One row per cell: ``sample_id``, ``subject`` (``""`` or NaN = unknown), ``label``
        (``ALL``, ``HEM`` or empty), optional ``qc_flag``, and the feature columns
        (``handcrafted.csv`` as the features stage writes it).
    features : sequence of str, optional
        Feature columns to summarise (default :func:`feature_columns`).
    qc : QcRule
        ``keep`` (default) or ``drop_flagged`` (see :class:`QcRule`).

    Returns
    -------
    pandas.DataFrame
        One row per subject, in order of first appearance: ``subject`` (str), ``label`` (str),
        ``n_cells`` (int64, cells entering the statistics), ``n_cells_flagged`` (int64, cells
        with a ``qc_flag``, counted in ``n_cells`` under ``keep`` and left out under
        ``drop_flagged``), then ``<feature>__median`` and ``<feature>__iqr`` (float64;
        75th minus 25th percentile, linear interpolation as :func:`numpy.percentile`) over the
        cells where the feature is defined, NaN where it is defined on none.

    Raises
    ------
    ValueError
        A feature column is missing or not numeric, or a subject has cells with different
        labels.
    """
    features = feature_columns(cells) if features is None else list(features)
    _check_features(cells, features)
    subjects = subject_ids(cells)
    labels = subject_labels(subjects, _text(cells, LABEL))
    order = pd.Index(labels.index, name=SUBJECT)
    keep = kept_cells(cells, qc)
    values = cells.loc[keep, features].astype(np.float64).set_axis(subjects[keep])
    quartiles = values.groupby(level=0, sort=False).quantile([0.25, 0.5, 0.75])
    median = quartiles.xs(0.5, level=1).reindex(order)
    iqr = (quartiles.xs(0.75, level=1) - quartiles.xs(0.25, level=1)).reindex(order)
    stats = pd.concat({MEDIAN: median, IQR: iqr}, axis=1).swaplevel(axis=1)
    stats = stats[[(f, s) for f in features for s in (MEDIAN, IQR)]]
    stats.columns = [stat_column(f, s) for f, s in stats.columns]
    counts = pd.DataFrame({
        SUBJECT: order.to_numpy(dtype=object),
        LABEL: labels.to_numpy(dtype=object),
        "n_cells": pd.Series(keep).groupby(subjects, sort=False).sum().reindex(order).to_numpy(dtype=np.int64),
        "n_cells_flagged": pd.Series(flagged_cells(cells)).groupby(subjects, sort=False).sum()
        .reindex(order).to_numpy(dtype=np.int64),
    })
    return pd.concat([counts, stats.reset_index(drop=True)], axis=1)


def _check_features(cells: pd.DataFrame, features: list[str]) -> None:
    missing = [f for f in features if f not in cells.columns]
    if missing:
        raise ValueError(f"feature columns {missing[:5]} are not in the cell table ({len(missing)} missing); "
                         "pass names from its header")
    bad = [f for f in features if not pd.api.types.is_numeric_dtype(cells[f])]
    if bad:
        raise ValueError(f"feature columns {bad[:5]} are not numeric; read the CSV with the feature columns "
                         "as floats, or leave those columns out")


def subject_dictionary(
    features: Sequence[str], *, qc: QcRule | str = QcRule.KEEP, columns: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The data dictionary of :func:`subject_table`: ``name, description, unit`` per column.

    Parameters
    ----------
    features : sequence of str
        The features of the table, in its order.
    qc : QcRule
        The rule the table was made with; stated in the descriptions.
    columns : pandas.DataFrame, optional
        The feature data dictionary (``columns.csv``: ``name, description, unit``...); its
        descriptions and units are carried over. Without it the feature name stands for the
        description and the unit is empty.
    """
    qc = QcRule(qc)
    rule = ("cells with a qc_flag are kept; only their undefined (NaN) values are skipped" if qc is QcRule.KEEP
            else "cells with a qc_flag are left out")
    known = {} if columns is None else columns.set_index("name")[["description", "unit"]].to_dict("index")
    rows = [
        (SUBJECT, ("subject (patient) id; a cell's sample_id where the dataset names no subject, "
                   "so that cell is a subject of its own"), ""),
        (LABEL, "diagnosis of the subject's cells: ALL (blast), HEM (normal) or empty (unknown)", ""),
        ("n_cells", f"number of the subject's cells in the statistics (qc rule '{qc.value}': {rule})", "cells"),
        ("n_cells_flagged", "number of the subject's cells with a non-empty qc_flag (some feature undefined)", "cells"),
    ]
    for feature in features:
        meaning = known.get(feature, {}).get("description", feature)
        unit = known.get(feature, {}).get("unit", "")
        median = f"median over the subject's cells of: {meaning} (qc rule '{qc.value}': {rule})"
        iqr = (f"interquartile range (75th - 25th percentile, linear interpolation) over the subject's cells "
               f"of: {meaning} (qc rule '{qc.value}')")
        rows += [(stat_column(feature, MEDIAN), median, unit), (stat_column(feature, IQR), iqr, unit)]
    return pd.DataFrame(rows, columns=DICTIONARY_COLUMNS)
