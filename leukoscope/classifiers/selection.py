"""Nested selection: the headline score of "pick the best model x feature set, then test it".

Choosing the best row of a results table and quoting its score quotes the maximum of many noisy
estimates on the same folds: the winner's curse (Cawley & Talbot 2010, JMLR 11, 2079-2107,
https://jmlr.org/papers/v11/cawley10a.html; Varma & Simon 2006,
https://doi.org/10.1186/1471-2105-7-91). :func:`nested_select` makes the choice part of the
procedure being tested: inside each outer training part, every candidate (a model, tuned as
usual, on a feature set) is scored by an inner cross-validation grouped by subject; the
candidate with the best pooled inner score is refitted on the whole outer training part and
scored on the outer test part, which took no part in the choice. The pooled outer predictions
of that procedure are the selection-corrected headline.

Three levels of folds, each grouped by subject when every row names one: outer (given),
inner (``inner_folds``, choosing the candidate) and tuning (``tuning_folds``, choosing each
model's hyper-parameters inside :func:`~leukoscope.classifiers.models.fit_predict`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from leukoscope.classifiers.choices import ClassifierName
from leukoscope.classifiers.errors import EvaluationError
from leukoscope.classifiers.metrics import METRICS, binary_metrics, predict_labels
from leukoscope.classifiers.models import fit_predict, inner_splits
from leukoscope.classifiers.splits import Split

NESTED_MODEL = "nested"
NESTED_FEATURE_SET = "selected"
"""``model`` and ``feature_set`` of the headline's prediction rows."""


@dataclass(frozen=True)
class Candidate:
    """One pipeline the selection may choose: a model (tuned by its grid) on a feature set."""

    model: ClassifierName
    feature_set: str


class NestedResult(NamedTuple):
    """What :func:`nested_select` returns.

    Attributes
    ----------
    predictions : DataFrame
        One row per outer test cell: ``row`` (position in the inputs), ``sample_id`` (when
        given), ``fold``, ``model`` (``nested``), ``feature_set`` (``selected``),
        ``chosen_model``, ``chosen_feature_set``, ``y_true``, ``y_score``, ``y_pred``.
    chosen : DataFrame
        One row per outer fold: ``fold``, ``model``, ``feature_set``, ``inner_score``.
    inner_scores : DataFrame
        One row per outer fold and candidate: ``fold``, ``model``, ``feature_set``,
        ``inner_score`` (pooled over the inner folds).
    """

    predictions: pd.DataFrame
    chosen: pd.DataFrame
    inner_scores: pd.DataFrame


@dataclass(frozen=True, eq=False)
class _Fit:
    """One candidate fitted on one training part and scored on one test part (picklable)."""

    fold: str
    candidate: Candidate
    x_train: np.ndarray
    y_train: np.ndarray
    groups: np.ndarray
    x_test: np.ndarray
    test: np.ndarray
    tuning_folds: int
    seed: int
    pca_columns: np.ndarray
    pca_components: int


def _run(task: _Fit) -> tuple[str, Candidate, np.ndarray, np.ndarray]:
    y_score, _ = fit_predict(
        task.candidate.model, task.x_train, task.y_train, task.x_test, groups=task.groups,
        inner_folds=task.tuning_folds, seed=task.seed, pca_columns=task.pca_columns,
        pca_components=task.pca_components,
    )
    return task.fold, task.candidate, task.test, y_score


def candidates_for(models: Iterable[ClassifierName | str], feature_sets: Iterable[str]) -> list[Candidate]:
    """Every model on every feature set, feature set first (the order ties are broken in)."""
    return [Candidate(ClassifierName(m), fs) for fs in feature_sets for m in models]


def _check(candidates: Sequence[Candidate], x_by_set: Mapping[str, np.ndarray], n: int, scoring: str) -> None:
    if not candidates:
        raise EvaluationError("nested selection needs at least one candidate (model x feature set)")
    if scoring not in METRICS:
        raise EvaluationError(f"scoring {scoring!r} is not one of {', '.join(METRICS)}")
    for c in candidates:
        if c.feature_set not in x_by_set:
            raise EvaluationError(f"candidate {c.model.value} on {c.feature_set!r} has no matrix in x_by_set "
                                  f"(have {sorted(x_by_set)})")
        if len(x_by_set[c.feature_set]) != n:
            raise EvaluationError(f"feature set {c.feature_set!r} has {len(x_by_set[c.feature_set])} rows but y has "
                                  f"{n}; align every matrix on the same samples (NaN rows are imputed)")


def nested_select(
    candidates: Sequence[Candidate],
    x_by_set: Mapping[str, np.ndarray],
    y: np.ndarray,
    groups: Sequence[str] | np.ndarray | None,
    outer_splits: Iterable[Split],
    *,
    inner_folds: int = 3,
    tuning_folds: int = 3,
    scoring: str = "balanced_accuracy",
    seed: int = 0,
    pca_columns: Mapping[str, np.ndarray] | None = None,
    pca_components: int = 0,
    sample_ids: Sequence[str] | np.ndarray | None = None,
    mapper: Callable[[Callable[[_Fit], Any], Iterable[_Fit]], Iterable[Any]] = map,
) -> NestedResult:
    """Choose a candidate on inner folds of each outer training part; score it on the outer test part.

    Parameters
    ----------
    candidates : sequence of Candidate
        E.g. :func:`candidates_for`. Ties in the inner score go to the first in this order.
    x_by_set : mapping of str to (n, p) float ndarray
        Feature matrix of every feature set, rows aligned with ``y`` (NaN imputed in-fold).
    y : (n,) int ndarray
        1 = ALL, 0 = HEM.
    groups : (n,) sequence of str or None
        Subject (or block) of every row; inner and tuning folds are grouped by it when no
        entry is empty.
    outer_splits : iterable of Split
        Row positions, e.g. from :func:`~leukoscope.classifiers.splits.iter_splits`.
    inner_folds : int
        Folds that score the candidates inside each outer training part.
    tuning_folds : int
        Folds that tune each model's grid inside every training part it is fitted on.
    scoring : str
        Metric of :data:`~leukoscope.classifiers.metrics.METRICS` maximised by the choice,
        computed on the pooled inner out-of-fold predictions.
    seed : int
    pca_columns : mapping of str to (k,) int ndarray, optional
        Per feature set, the columns an optional PCA compresses (hybrid sets).
    pca_components : int
    sample_ids : (n,) sequence of str, optional
        Adds a ``sample_id`` column to the predictions.
    mapper : callable
        ``mapper(function, tasks)`` runs the fits (default the built-in ``map``); pass a
        parallel map to spread them over workers. The tasks are picklable.

    Returns
    -------
    NestedResult

    Raises
    ------
    EvaluationError
        No candidate, an unknown feature set or scoring, misaligned matrices, or too few
        subjects for the inner or tuning folds.
    """
    y = np.asarray(y, dtype=int)
    group_array = np.full(len(y), "", dtype=object) if groups is None else np.asarray(groups, dtype=object).astype(str)
    _check(candidates, x_by_set, len(y), scoring)
    pca_columns = pca_columns or {}
    splits = list(outer_splits)

    def task(fold: str, candidate: Candidate, train: np.ndarray, test: np.ndarray) -> _Fit:
        x = x_by_set[candidate.feature_set]
        return _Fit(fold, candidate, x[train], y[train], group_array[train], x[test], test, tuning_folds, seed,
                    np.asarray(pca_columns.get(candidate.feature_set, ()), dtype=int), pca_components)

    inner_tasks = []
    for split in splits:
        inner = inner_splits(x_by_set[candidates[0].feature_set][split.train], y[split.train],
                             group_array[split.train], inner_folds, seed)
        inner_tasks += [task(split.fold, c, split.train[tr], split.train[te]) for c in candidates for tr, te in inner]
    pooled: dict[tuple[str, Candidate], list[tuple[np.ndarray, np.ndarray]]] = {}
    for fold, candidate, test, y_score in mapper(_run, inner_tasks):
        pooled.setdefault((fold, candidate), []).append((test, y_score))
    scores = []
    for split in splits:
        for c in candidates:
            rows = np.concatenate([t for t, _ in pooled[(split.fold, c)]])
            y_score = np.concatenate([s for _, s in pooled[(split.fold, c)]])
            value = binary_metrics(y[rows], y_score, predict_labels(y_score))[scoring]
            scores.append({"fold": split.fold, "model": c.model.value, "feature_set": c.feature_set,
                           "inner_score": value})
    inner_scores = pd.DataFrame(scores, columns=["fold", "model", "feature_set", "inner_score"])
    best = (inner_scores.assign(rank=inner_scores.groupby("fold")["inner_score"].rank(ascending=False, method="first",
                                                                                       na_option="bottom"))
            .query("rank == 1").drop(columns="rank").reset_index(drop=True))
    chosen_of = {row.fold: Candidate(ClassifierName(row.model), row.feature_set) for row in best.itertuples()}
    outer_tasks = [task(s.fold, chosen_of[s.fold], s.train, s.test) for s in splits]
    frames = []
    for fold, candidate, test, y_score in mapper(_run, outer_tasks):
        frame = pd.DataFrame({"row": test, "fold": fold, "model": NESTED_MODEL, "feature_set": NESTED_FEATURE_SET,
                              "chosen_model": candidate.model.value, "chosen_feature_set": candidate.feature_set,
                              "y_true": y[test], "y_score": y_score, "y_pred": predict_labels(y_score)})
        if sample_ids is not None:
            frame.insert(1, "sample_id", np.asarray(sample_ids, dtype=object)[test])
        frames.append(frame)
    return NestedResult(pd.concat(frames, ignore_index=True), best, inner_scores)


__all__ = ["Candidate", "NESTED_FEATURE_SET", "NESTED_MODEL", "NestedResult", "candidates_for", "nested_select"]
