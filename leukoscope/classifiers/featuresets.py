"""Feature sets entering the comparison: handcrafted, CNN embeddings, and their hybrid.

Pure functions on the feature tables (``sample_id, subject, label, split``, optional
``weights`` and ``qc_flag``, then float feature columns). They turn a table into a
:class:`FeatureSet`: a float matrix, its column names, the CNN weights behind it, and the
counts of the missing-value rule.

Missing-value rule (documented in docs/compare.md and counted in the report): a row whose
features are all NaN (a rejected or degenerate cell) is dropped; a row with some NaN is kept
and its gaps are imputed by the training-part median inside each fold
(:func:`leukoscope.classifiers.models.build_pipeline`). Infinite values count as NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from leukoscope.classifiers.errors import EvaluationError

ID_COLUMNS: tuple[str, ...] = ("sample_id", "subject", "label", "split")
NON_FEATURE_COLUMNS: frozenset[str] = frozenset(ID_COLUMNS + ("weights", "qc_flag"))
NO_WEIGHTS = "none"
"""The ``weights`` recorded for feature sets without a CNN (handcrafted)."""


def cnn_name(backbone: str) -> str:
    """``cnn_<backbone>``: the feature set of a backbone's embeddings (also its CSV stem and column prefix)."""
    return f"cnn_{backbone}"


def hybrid_name(backbone: str) -> str:
    """``hybrid_<backbone>``: handcrafted features joined with a backbone's embeddings."""
    return f"hybrid_{backbone}"


def head_name(backbone: str) -> str:
    """``head_<backbone>``: the feature-set name of a backbone's sigmoid head in predictions."""
    return f"head_{backbone}"


@dataclass(frozen=True, eq=False)
class FeatureSet:
    """One feature set, ready for the classifiers.

    Attributes
    ----------
    name : str
        ``handcrafted``, ``cnn_<backbone>`` or ``hybrid_<backbone>``.
    sample_ids : (n,) object ndarray of str
    x : (n, p) float ndarray
        NaN where a feature is missing (imputed inside each fold).
    columns : tuple of str
        The ``p`` column names.
    weights : str
        CNN weights behind the set (``imagenet``, ``random``, a folder), ``none`` for handcrafted.
    pca_columns : (k,) int ndarray
        Columns that an optional PCA may compress (the embedding part of a hybrid set).
    n_dropped : int
        Rows dropped because all their features were NaN.
    n_imputed : int
        Kept rows with at least one NaN feature.
    """

    name: str
    sample_ids: np.ndarray
    x: np.ndarray
    columns: tuple[str, ...]
    weights: str
    pca_columns: np.ndarray
    n_dropped: int
    n_imputed: int


def feature_columns(table: pd.DataFrame, *, source: str) -> list[str]:
    """The feature columns of a table: every column but the ids, ``weights`` and ``qc_flag``.

    Raises
    ------
    EvaluationError
        The table lacks ``sample_id``, has no feature column, or a feature column is not numeric.
    """
    if "sample_id" not in table.columns:
        raise EvaluationError(f"'{source}' has no 'sample_id' column; regenerate it with leukoscope features")
    columns = [c for c in table.columns if c not in NON_FEATURE_COLUMNS]
    if not columns:
        raise EvaluationError(f"'{source}' has no feature columns; regenerate it with leukoscope features")
    text = [c for c in columns if not pd.api.types.is_numeric_dtype(table[c])]
    if text:
        raise EvaluationError(
            f"'{source}' column(s) {text[:5]} are not numeric; every column after "
            f"{', '.join(sorted(NON_FEATURE_COLUMNS))} must hold numbers (NaN for missing values)"
        )
    return columns


def weights_of(table: pd.DataFrame) -> str:
    """The CNN weights recorded in a table's ``weights`` column (``+``-joined if several)."""
    if "weights" not in table.columns:
        return NO_WEIGHTS
    values = sorted(set(table["weights"].fillna("").astype(str)) - {""})
    return "+".join(values) or NO_WEIGHTS


def _feature_set(
    name: str, table: pd.DataFrame, columns: list[str], weights: str, pca_columns: np.ndarray
) -> FeatureSet:
    x = table[columns].to_numpy(dtype=float, copy=True)
    x[~np.isfinite(x)] = np.nan
    missing = np.isnan(x)
    empty = missing.all(axis=1)
    return FeatureSet(
        name=name,
        sample_ids=table["sample_id"].astype(str).to_numpy()[~empty],
        x=x[~empty],
        columns=tuple(columns),
        weights=weights,
        pca_columns=pca_columns,
        n_dropped=int(empty.sum()),
        n_imputed=int((missing.any(axis=1) & ~empty).sum()),
    )


def _unique_ids(table: pd.DataFrame, source: str) -> None:
    duplicated = table["sample_id"][table["sample_id"].duplicated()].tolist()
    if duplicated:
        raise EvaluationError(
            f"'{source}' lists sample_id {duplicated[0]!r} more than once ({len(duplicated)} duplicates); "
            "regenerate it with leukoscope features"
        )


def single_set(name: str, table: pd.DataFrame, *, source: str) -> FeatureSet:
    """A feature set from one table (``handcrafted`` or ``cnn_<backbone>``).

    Parameters
    ----------
    name : str
        Name of the set.
    table : DataFrame
        The features table.
    source : str
        File name, for error messages.
    """
    columns = feature_columns(table, source=source)
    _unique_ids(table, source)
    return _feature_set(name, table, columns, weights_of(table), np.arange(0))


def hybrid_set(
    backbone: str, handcrafted: pd.DataFrame, embeddings: pd.DataFrame, *, sources: tuple[str, str]
) -> FeatureSet:
    """``hybrid_<backbone>``: handcrafted features joined with the backbone's embeddings.

    Only samples present in both tables enter. The embedding columns are listed in
    ``pca_columns`` so that an optional PCA, fitted inside each training fold, can compress them.

    Parameters
    ----------
    backbone : str
    handcrafted, embeddings : DataFrame
        The two feature tables.
    sources : (str, str)
        Their file names, for error messages.
    """
    hand_columns = feature_columns(handcrafted, source=sources[0])
    cnn_columns = feature_columns(embeddings, source=sources[1])
    clash = sorted(set(hand_columns) & set(cnn_columns))
    if clash:
        raise EvaluationError(f"'{sources[0]}' and '{sources[1]}' share column names {clash[:5]}; rename one side")
    for table, source in zip((handcrafted, embeddings), sources):
        _unique_ids(table, source)
    joined = handcrafted[["sample_id", *hand_columns]].merge(
        embeddings[["sample_id", *cnn_columns]], on="sample_id", how="inner", validate="one_to_one"
    )
    pca = np.arange(len(hand_columns), len(hand_columns) + len(cnn_columns))
    return _feature_set(hybrid_name(backbone), joined, hand_columns + cnn_columns, weights_of(embeddings), pca)


__all__ = ["FeatureSet", "ID_COLUMNS", "NO_WEIGHTS", "cnn_name", "feature_columns", "head_name", "hybrid_name",
           "hybrid_set", "single_set", "weights_of"]
