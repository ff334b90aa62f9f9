"""Is a new dataset far from a model's training data? Key-feature ranges and background kinds.

A model is only trusted on cells like those it was trained on. At training time
:func:`fit_reference` keeps, for the model's ``key`` input features (those that best separate
ALL from HEM on their own: largest ``|AUC - 0.5|``), the range that holds the central
``coverage`` of the training cells. On new cells, :class:`ShiftTally` counts, chunk by chunk,
how many fall outside each range; a key feature is *shifted* when more than
``cell_share`` of the new cells fall outside its range, and the dataset is *far* from the
training data when at least ``min_features`` key features are shifted (all of them when there
are fewer). Cells whose background kind (black around a pre-segmented cell, or stained
smear) differs in majority from the training cells' are a second, independent warning
(:func:`background_shift`).

The defaults (10 key features, central 99 % of the training cells, more than half of the new
cells outside, at least 3 features) are a rule of thumb, not a calibrated test: they flag a
dataset whose cells mostly lie where the model never saw a training cell.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

SHIFT_COLUMNS = ["feature", "train_low", "train_high", "auc", "cells", "outside", "fraction_outside", "shifted"]


@dataclass(frozen=True)
class InputReference:
    """The training range of a model's key input features.

    Attributes
    ----------
    features : tuple of str
        Names of the key features.
    indices : tuple of int
        Their positions among the model's input columns.
    low, high : tuple of float
        The range of each key feature (the ``(1 - coverage) / 2`` and ``(1 + coverage) / 2``
        quantiles of the training cells).
    auc : tuple of float
        Each key feature's univariate AUC for ALL on the training cells.
    cell_share : float
        Share of new cells outside a range above which the feature counts as shifted.
    min_features : int
        Number of shifted key features that makes a dataset far from the training data.
    """

    features: tuple[str, ...]
    indices: tuple[int, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    auc: tuple[float, ...]
    cell_share: float = 0.5
    min_features: int = 3

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (for a model card)."""
        return {"features": list(self.features), "indices": list(self.indices), "low": list(self.low),
                "high": list(self.high), "auc": list(self.auc), "cell_share": self.cell_share,
                "min_features": self.min_features}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputReference:
        """Inverse of :meth:`to_dict`."""
        return cls(features=tuple(data["features"]), indices=tuple(int(i) for i in data["indices"]),
                   low=tuple(map(float, data["low"])), high=tuple(map(float, data["high"])),
                   auc=tuple(map(float, data["auc"])), cell_share=float(data["cell_share"]),
                   min_features=int(data["min_features"]))

    def outside(self, x: np.ndarray) -> np.ndarray:
        """Which key features of each row lie outside their training range.

        Parameters
        ----------
        x : (n, p) float ndarray
            Rows in the model's input column order; NaN counts as inside (it is imputed).

        Returns
        -------
        (n, k) bool ndarray
        """
        keys = np.asarray(x, dtype=float)[:, list(self.indices)]
        return (keys < np.asarray(self.low)) | (keys > np.asarray(self.high))


def univariate_auc(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """AUC of each column on its own for ``y == 1`` (Mann-Whitney U / (n1 n0)), NaN rows left out.

    Parameters
    ----------
    x : (n, p) float ndarray
    y : (n,) int ndarray
        1 = ALL, 0 = HEM.

    Returns
    -------
    (p,) float ndarray
        NaN for a column without both classes among its finite values.
    """
    from scipy.stats import rankdata

    x, y = np.asarray(x, dtype=float), np.asarray(y).astype(int)
    result = np.full(x.shape[1], np.nan)
    for j in range(x.shape[1]):
        finite = np.isfinite(x[:, j])
        yj = y[finite]
        n1, n0 = int((yj == 1).sum()), int((yj == 0).sum())
        if n1 and n0:
            ranks = rankdata(x[finite, j])
            result[j] = (ranks[yj == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
    return result


def fit_reference(x: np.ndarray, y: np.ndarray, columns: Sequence[str], *, n_key: int = 10,
                  coverage: float = 0.99, cell_share: float = 0.5, min_features: int = 3) -> InputReference:
    """The training range of the ``n_key`` columns that best separate the classes on their own.

    Parameters
    ----------
    x : (n, p) float ndarray
        The training cells in the model's input column order (NaN allowed).
    y : (n,) int ndarray
        1 = ALL, 0 = HEM.
    columns : sequence of str
        The ``p`` column names.
    n_key : int
        Most key features kept (columns without spread or without an AUC are never kept).
    coverage : float
        Share of the training cells inside each range, in (0, 1].
    cell_share, min_features
        See :class:`InputReference`.

    Returns
    -------
    InputReference

    Raises
    ------
    ValueError
        ``columns`` does not name every column of ``x``, or ``coverage`` is outside (0, 1].
    """
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or x.shape[1] != len(columns):
        raise ValueError(f"x has shape {x.shape} but {len(columns)} column names were given")
    if not 0.0 < coverage <= 1.0:
        raise ValueError(f"coverage must be in (0, 1], got {coverage}")
    auc = univariate_auc(x, y)
    x = np.where(np.isfinite(x), x, np.nan)
    with np.errstate(all="ignore"):
        spread = np.nanmax(x, axis=0) - np.nanmin(x, axis=0) if len(x) else np.zeros(x.shape[1])
    usable = np.flatnonzero(np.isfinite(auc) & (spread > 0))
    keys = usable[np.argsort(-np.abs(auc[usable] - 0.5), kind="stable")][:n_key]
    tail = (1.0 - coverage) / 2.0
    low = np.nanquantile(x[:, keys], tail, axis=0) if len(keys) else np.empty(0)
    high = np.nanquantile(x[:, keys], 1.0 - tail, axis=0) if len(keys) else np.empty(0)
    return InputReference(features=tuple(columns[i] for i in keys), indices=tuple(int(i) for i in keys),
                          low=tuple(map(float, low)), high=tuple(map(float, high)),
                          auc=tuple(float(auc[i]) for i in keys), cell_share=cell_share, min_features=min_features)


class ShiftTally:
    """Counts, over chunks of new cells, how many fall outside each key feature's training range."""

    def __init__(self, reference: InputReference) -> None:
        self.reference = reference
        self.cells = 0
        self.outside = np.zeros(len(reference.features), dtype=np.int64)

    def add(self, x: np.ndarray) -> np.ndarray:
        """Count one chunk; return each row's number of key features outside their range.

        Parameters
        ----------
        x : (n, p) float ndarray
            Rows in the model's input column order.

        Returns
        -------
        (n,) int ndarray
        """
        flags = self.reference.outside(x)
        self.cells += len(flags)
        self.outside += flags.sum(axis=0)
        return flags.sum(axis=1)

    def table(self) -> pd.DataFrame:
        """One row per key feature: :data:`SHIFT_COLUMNS`."""
        ref = self.reference
        fraction = self.outside / self.cells if self.cells else np.full(len(self.outside), np.nan)
        return pd.DataFrame({
            "feature": list(ref.features), "train_low": list(ref.low), "train_high": list(ref.high),
            "auc": list(ref.auc), "cells": self.cells, "outside": self.outside, "fraction_outside": fraction,
            "shifted": fraction > ref.cell_share,
        }, columns=SHIFT_COLUMNS)

    def far(self) -> bool:
        """Whether at least ``min_features`` key features (all, when fewer) are shifted."""
        shifted = int(self.table()["shifted"].sum())
        needed = min(self.reference.min_features, len(self.reference.features))
        return needed > 0 and shifted >= needed


def background_shares(kinds: Sequence[str]) -> dict[str, float]:
    """Share of each background kind among cells (sorted by kind)."""
    counts = Counter(str(k) for k in kinds)
    total = sum(counts.values())
    return {kind: counts[kind] / total for kind in sorted(counts)} if total else {}


def background_shift(train: dict[str, float], new: dict[str, float]) -> str:
    """Why the new cells' background differs from the training cells', or ``""`` when it does not.

    Parameters
    ----------
    train, new : dict of str to float
        Shares from :func:`background_shares`.

    Returns
    -------
    str
        A sentence naming both majority kinds when they differ.
    """
    if not train or not new:
        return ""
    train_kind, new_kind = max(train, key=lambda k: train[k]), max(new, key=lambda k: new[k])
    if train_kind == new_kind:
        return ""
    return (f"most new cells sit on a '{new_kind}' background ({new[new_kind]:.0%}) but most training cells "
            f"sat on '{train_kind}' ({train[train_kind]:.0%})")


__all__ = ["InputReference", "SHIFT_COLUMNS", "ShiftTally", "background_shares", "background_shift",
           "fit_reference", "univariate_auc"]
