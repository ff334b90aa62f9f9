"""The compare stage's model fits: every classifier on every feature set, and the nested headline.

A *part* is one feature set's rows on one split; each part x model is a picklable task (tune on
the training part, predict the test part) spread over workers by
:func:`~leukoscope.pipeline.parallel.parallel_map`. Inner (tuning) folds are grouped by the
protocol's unit (:func:`~leukoscope.classifiers.splits.split_groups`: the subject, the block of
``blocked-cv``, or nothing under ``stratified-cv``), as the outer folds are.

:func:`nested_headline` runs :func:`~leukoscope.classifiers.selection.nested_select` on the
cells every feature set has a row for, with the selection and tuning folds that every training
part can hold (:func:`selection_folds`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from leukoscope.classifiers.choices import ClassifierName
from leukoscope.classifiers.errors import EvaluationError
from leukoscope.classifiers.featuresets import FeatureSet
from leukoscope.classifiers.metrics import predict_labels
from leukoscope.classifiers.models import fit_predict, inner_splits
from leukoscope.classifiers.selection import NestedResult, candidates_for, nested_select
from leukoscope.classifiers.splits import Split, encode_labels
from leukoscope.pipeline.config import Config
from leukoscope.pipeline.parallel import parallel_map


@dataclass(frozen=True, eq=False)
class FitTask:
    """One model fitted on one training part of one feature set (picklable for the workers)."""

    model: ClassifierName
    feature_set: str
    fold: str
    x_train: np.ndarray
    y_train: np.ndarray
    groups: np.ndarray
    x_test: np.ndarray
    test_ids: np.ndarray
    inner_folds: int
    seed: int
    pca_columns: np.ndarray
    pca_components: int


def fit_task(task: FitTask) -> pd.DataFrame:
    """Tune and fit one model on one training part; its predictions on the test part."""
    y_score, _best = fit_predict(
        task.model, task.x_train, task.y_train, task.x_test, groups=task.groups,
        inner_folds=task.inner_folds, seed=task.seed,
        pca_columns=task.pca_columns, pca_components=task.pca_components,
    )
    return pd.DataFrame({
        "sample_id": task.test_ids, "fold": task.fold, "model": task.model.value,
        "feature_set": task.feature_set, "y_score": y_score, "y_pred": predict_labels(y_score),
    })


@dataclass(frozen=True, eq=False)
class Part:
    """The rows of one feature set that one split trains and tests on (boolean masks)."""

    feature_set: FeatureSet
    fold: str
    train: np.ndarray
    test: np.ndarray


def plan_parts(sets: list[FeatureSet], splits: list[Split], samples: pd.DataFrame) -> list[Part]:
    """Map every split (row positions in ``samples``) onto the rows of every feature set.

    Raises
    ------
    EvaluationError
        Dropping rows without features left a training part with one class.
    """
    ids = samples["sample_id"].to_numpy()
    y_of = dict(zip(ids, encode_labels(samples["label"])))
    parts = []
    for fs in sets:
        for split in splits:
            part = Part(fs, split.fold, np.isin(fs.sample_ids, ids[split.train]),
                        np.isin(fs.sample_ids, ids[split.test]))
            if {y_of[i] for i in fs.sample_ids[part.train]} != {0, 1}:
                raise EvaluationError(
                    f"after dropping rows without features, the training part of fold '{split.fold}' of "
                    f"{fs.name} holds one class only; check rejected.csv and the features file"
                )
            if part.test.any():
                parts.append(part)
    return parts


def _tasks(config: Config, parts: list[Part], samples: pd.DataFrame, units: np.ndarray) -> Iterator[FitTask]:
    """The tasks of every part and model, made lazily (one part's arrays alive at a time)."""
    y_of = dict(zip(samples["sample_id"], encode_labels(samples["label"])))
    unit_of = dict(zip(samples["sample_id"], units))
    for part in parts:
        fs = part.feature_set
        train_ids = fs.sample_ids[part.train]
        shared = {
            "feature_set": fs.name, "fold": part.fold, "x_train": fs.x[part.train],
            "y_train": np.array([y_of[i] for i in train_ids], dtype=int),
            "groups": np.array([unit_of[i] for i in train_ids], dtype=object),
            "x_test": fs.x[part.test], "test_ids": fs.sample_ids[part.test],
            "inner_folds": config.compare.inner_folds, "seed": config.run.seed,
            "pca_columns": fs.pca_columns, "pca_components": config.compare.hybrid_pca,
        }
        for model in config.compare.models:
            yield FitTask(model=model, **shared)


def _mapper(config: Config, desc: str) -> Callable[[Callable[[Any], Any], Iterable[Any]], Iterable[Any]]:
    def run(function: Callable[[Any], Any], tasks: Iterable[Any]) -> Iterable[Any]:
        return parallel_map(function, list(tasks), jobs=config.run.jobs, backend=config.run.backend,
                            scheduler=config.run.scheduler, desc=desc, quiet=config.run.quiet, unit="fit")
    return run


def cross_validate(config: Config, sets: list[FeatureSet], splits: list[Split], samples: pd.DataFrame,
                   units: np.ndarray, *, desc: str = "compare") -> tuple[pd.DataFrame, list[Part]]:
    """Every configured model on every feature set and split.

    Parameters
    ----------
    config : Config
        ``compare.models``, ``inner_folds``, ``hybrid_pca``; ``run`` for the seed and the workers.
    sets : list of FeatureSet
    splits : list of Split
        Row positions in ``samples``.
    samples : DataFrame
        ``sample_id`` and ``label`` of every row the splits address.
    units : (n,) str ndarray
        The protocol's unit of every row of ``samples``; the inner folds are grouped by it.
    desc : str
        Label of the progress bar.

    Returns
    -------
    predictions : DataFrame
        ``sample_id, fold, model, feature_set, y_score, y_pred`` of every test row.
    parts : list of Part
    """
    parts = plan_parts(sets, splits, samples)
    frames = list(parallel_map(
        fit_task, _tasks(config, parts, samples, units), total=len(parts) * len(config.compare.models),
        jobs=config.run.jobs, backend=config.run.backend, scheduler=config.run.scheduler,
        desc=desc, quiet=config.run.quiet, unit="fit",
    ))
    columns = ["sample_id", "fold", "model", "feature_set", "y_score", "y_pred"]
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)), parts


def _fewest(y: np.ndarray, groups: np.ndarray) -> int:
    """Fewest units (groups when every row names one, else rows) of a class."""
    if (groups != "").all():
        return min(len(set(groups[y == c])) for c in (0, 1))
    return min(int((y == c).sum()) for c in (0, 1))


def _inner_parts(y: np.ndarray, groups: np.ndarray, parts: list[np.ndarray], folds: int,
                 seed: int) -> list[np.ndarray]:
    """The training rows of the ``folds``-fold inner splits of every part (as the fits will make them)."""
    return [rows[train] for rows in parts
            for train, _ in inner_splits(np.empty((len(rows), 0)), y[rows], groups[rows], folds, seed)]


def selection_folds(y: np.ndarray, groups: np.ndarray, splits: list[Split], *, inner_folds: int, seed: int,
                    platt: bool) -> tuple[int, int]:
    """The selection and tuning folds of the nested headline that every training part can hold.

    Both start at ``inner_folds`` (fewer when a part has fewer units of a class) and rise, up to
    one unit of each class per fold, until every part can be split (at least 2 folds) and, with
    the SVM (``platt``), every tuning-training part keeps the 2 units per class that its grouped
    Platt calibration needs. More folds give larger training parts: small sets (4 training
    subjects per class) need them. Plenty of units leave both at ``inner_folds``.

    Returns
    -------
    (int, int)
        Selection folds, tuning folds.

    Raises
    ------
    EvaluationError
        No number of folds works; the message names the fewest units and the fix.
    """
    outer = [s.train for s in splits]
    fewest_outer = min(_fewest(y[rows], groups[rows]) for rows in outer)
    for selection in range(max(2, min(inner_folds, fewest_outer)), fewest_outer + 1):
        chosen = _inner_parts(y, groups, outer, selection, seed)
        fewest_chosen = min(_fewest(y[rows], groups[rows]) for rows in chosen)
        for tuning in range(max(2, min(inner_folds, fewest_chosen)), fewest_chosen + 1):
            tuned = _inner_parts(y, groups, chosen, tuning, seed)
            if not platt or min(_fewest(y[rows], groups[rows]) for rows in tuned) >= 2:
                return selection, tuning
    raise EvaluationError(
        f"the nested headline needs more units per class in every training part than the {fewest_outer} the "
        "smallest holds (selection, tuning and, for the SVM, Platt calibration folds each need 2 or more); "
        "add subjects, lower compare.folds, leave svm out of compare.models, or set compare.nested = false"
    )


def nested_headline(config: Config, sets: list[FeatureSet], splits: list[Split], samples: pd.DataFrame,
                    units: np.ndarray) -> tuple[NestedResult, tuple[int, int]]:
    """The selection-corrected headline on the cells every feature set has a row for.

    Every configured model on every feature set is a candidate; the heads are not (they are
    trained in their own stage, outside this selection).

    Returns
    -------
    result : NestedResult
        Its ``predictions`` carry ``sample_id``.
    folds : (int, int)
        The selection and tuning folds used (:func:`selection_folds`).

    Raises
    ------
    EvaluationError
        No feature set, or training parts too small for nested folds.
    """
    if not sets:
        raise EvaluationError("the nested headline selects among classical models on feature sets, and this "
                              "comparison has none (heads only)")
    ids = samples["sample_id"].to_numpy()
    common = ids[np.logical_and.reduce([np.isin(ids, fs.sample_ids) for fs in sets])]
    rows = samples.set_index("sample_id").loc[common]
    y = encode_labels(rows["label"])
    groups = pd.Series(units, index=ids).loc[common].to_numpy(dtype=object).astype(str)
    x_by_set = {fs.name: fs.x[pd.Index(fs.sample_ids).get_indexer(common)] for fs in sets}
    outer = [Split(s.fold, np.flatnonzero(np.isin(common, ids[s.train])), np.flatnonzero(np.isin(common, ids[s.test])))
             for s in splits]
    outer = [s for s in outer if len(s.test)]
    folds = selection_folds(y, groups, outer, inner_folds=config.compare.inner_folds, seed=config.run.seed,
                            platt=ClassifierName.SVM in config.compare.models)
    result = nested_select(
        candidates_for(config.compare.models, [fs.name for fs in sets]), x_by_set, y, groups, outer,
        inner_folds=folds[0], tuning_folds=folds[1], seed=config.run.seed,
        pca_columns={fs.name: fs.pca_columns for fs in sets}, pca_components=config.compare.hybrid_pca,
        sample_ids=common, mapper=_mapper(config, "nested selection"),
    )
    return result, folds


__all__ = ["FitTask", "Part", "cross_validate", "fit_task", "nested_headline", "plan_parts", "selection_folds"]
