"""The majority-class baseline, the class counts of every split, and the "clear margin" rule.

A result means something only beside what a classifier that ignores the image scores: the
majority-class baseline calls every test cell the class that is commoner in the training
part. On one test part its balanced accuracy is 0.5 by construction and its accuracy the share
of that class. Pooled over cross-validation folds it can fall below 0.5: a fold whose test part
is richer in one class has a training part poorer in it, so the baseline calls that fold's test
cells the other class. Stratified folds keep the class shares nearly equal and the pooled value
near 0.5; grouped or blocked folds, whose shares vary more, may not. That dip is what pooling
does to any classifier that leans on the training prevalence, so show the baseline row as
measured.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from leukoscope.classifiers.intervals import CLASS_NAMES
from leukoscope.classifiers.metrics import predict_labels
from leukoscope.classifiers.splits import Split, encode_labels

BASELINE_MODEL = "majority"
BASELINE_FEATURE_SET = "none"
CLEAR_MARGIN = 0.6
"""A classifier beats the baseline by a clear margin when the lower bound of its balanced-accuracy
interval exceeds this. The baseline's balanced accuracy is 0.5; requiring the whole interval
above 0.6, not just the point, keeps a lucky split from passing (issue #16's rule)."""


def _text(table: pd.DataFrame, name: str) -> np.ndarray:
    if name not in table.columns:
        return np.full(len(table), "", dtype=object)
    return table[name].fillna("").astype(str).to_numpy()


def majority_predictions(table: pd.DataFrame, splits: Iterable[Split]) -> pd.DataFrame:
    """Predictions of the majority-class baseline on the test part of every split.

    P(ALL) of a test cell is the share of ALL cells in the training part; the cell is called
    ALL when that share is at least 0.5 (the threshold rule of
    :func:`~leukoscope.classifiers.metrics.predict_labels`). Pooled over cross-validation
    folds, these constant scores differ a little between folds, so the pooled ROC AUC of the
    baseline can stray from 0.5 (Forman & Scholz 2010, https://doi.org/10.1145/1882471.1882479):
    judge the baseline by its balanced accuracy.

    Parameters
    ----------
    table : DataFrame
        Rows addressed by the splits, with ``sample_id``, ``label`` and, optionally, ``subject``.
    splits : iterable of Split
        E.g. from :func:`~leukoscope.classifiers.splits.iter_splits`.

    Returns
    -------
    DataFrame
        Columns ``sample_id, subject, fold, model, feature_set, y_true, y_score, y_pred``
        (``model`` = ``majority``, ``feature_set`` = ``none``), one row per test cell.
    """
    y = encode_labels(table["label"])
    ids, subjects = _text(table, "sample_id"), _text(table, "subject")
    frames = []
    for split in splits:
        share = float(np.mean(y[split.train] == 1))
        frames.append(pd.DataFrame({
            "sample_id": ids[split.test], "subject": subjects[split.test], "fold": split.fold,
            "model": BASELINE_MODEL, "feature_set": BASELINE_FEATURE_SET, "y_true": y[split.test],
            "y_score": share, "y_pred": int(predict_labels([share])[0]),
        }))
    columns = ["sample_id", "subject", "fold", "model", "feature_set", "y_true", "y_score", "y_pred"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def class_counts(
    table: pd.DataFrame,
    splits: Iterable[Split],
    *,
    groups: np.ndarray | None = None,
    unit_name: str = "subjects",
) -> pd.DataFrame:
    """Cells and subjects of each class in the training and test part of every split.

    Parameters
    ----------
    table : DataFrame
        Rows addressed by the splits, with ``label`` and, optionally, ``subject``.
    splits : iterable of Split
    groups : (n,) str ndarray, optional
        The unit to count per row (e.g. blocks from
        :func:`~leukoscope.classifiers.splits.split_groups`); default the ``subject`` column.
        Empty ids are not counted.
    unit_name : str
        Name of the unit in the column names.

    Returns
    -------
    DataFrame
        One row per split and part: ``fold``, ``part`` (``train``/``test``), ``ALL_cells``,
        ``HEM_cells``, ``ALL_<unit_name>``, ``HEM_<unit_name>``.
    """
    y = encode_labels(table["label"])
    units = _text(table, "subject") if groups is None else np.asarray(groups, dtype=object).astype(str)
    rows = []
    for split in splits:
        for part, index in (("train", split.train), ("test", split.test)):
            row: dict[str, object] = {"fold": split.fold, "part": part}
            for label, name in CLASS_NAMES.items():
                row[f"{name}_cells"] = int((y[index] == label).sum())
            for label, name in CLASS_NAMES.items():
                named = units[index][(y[index] == label) & (units[index] != "")]
                row[f"{name}_{unit_name}"] = len(set(named.tolist()))
            rows.append(row)
    columns = ["fold", "part", "ALL_cells", "HEM_cells", f"ALL_{unit_name}", f"HEM_{unit_name}"]
    return pd.DataFrame(rows, columns=columns)


def beats_baseline(ci_low: float, *, margin: float = CLEAR_MARGIN) -> bool:
    """Whether a balanced-accuracy interval's lower bound clears :data:`CLEAR_MARGIN`.

    Parameters
    ----------
    ci_low : float
        Lower bound of the balanced-accuracy interval; NaN (not estimable) never clears it.
    margin : float

    Returns
    -------
    bool
    """
    return bool(np.isfinite(ci_low) and ci_low > margin)


def confound_verdict(balanced_accuracy: float, ci_low: float, ci_high: float, *, margin: float = CLEAR_MARGIN) -> str:
    """One sentence on a classifier trained on the pixels outside the cell only.

    Such a classifier should be at the baseline: the label is a property of the cell. When it
    beats the baseline by a clear margin (:func:`beats_baseline`), the background (stain
    batch, illumination, source field) tells the classes apart and every result on this data
    may rest partly on it.

    Parameters
    ----------
    balanced_accuracy, ci_low, ci_high : float
        Its balanced accuracy and interval (NaN bounds when not estimable).
    margin : float

    Returns
    -------
    str
    """
    shown = f"{balanced_accuracy:.3f} [{ci_low:.3f}, {ci_high:.3f}]"
    if not np.isfinite(ci_low):
        return (f"Confound check not conclusive: balanced accuracy from the surround only {balanced_accuracy:.3f}, "
                "interval not estimable.")
    if beats_baseline(ci_low, margin=margin):
        return (f"Confound: the pixels outside the cell alone tell ALL from HEM (balanced accuracy {shown}, "
                f"lower bound above {margin}); results on this data may rest on the background, not the cell.")
    return (f"No clear confound: the pixels outside the cell alone reach balanced accuracy {shown}, "
            f"lower bound not above {margin}.")


__all__ = [
    "BASELINE_FEATURE_SET",
    "BASELINE_MODEL",
    "CLEAR_MARGIN",
    "beats_baseline",
    "class_counts",
    "confound_verdict",
    "majority_predictions",
]
