"""Evaluation protocols: subject-safe train/test splits of a labelled samples table.

Every split that :func:`iter_splits` yields has passed :func:`check_no_leakage`: no subject has
cells on both sides of a train/test boundary. Cells of one patient share stain, illumination and
morphology, so a split that leaks subjects inflates every figure (C-NMC 2019 split its training
and test sets by subject for this reason).

Without subjects, ``blocked-cv`` keeps blocks of consecutive sample numbers together instead, a
proxy for the source fields that crops were cut from (:mod:`leukoscope.classifiers.blocks`).

Rows whose ``label`` is empty (e.g. C-NMC's unlabelled final test set) are never in a split.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from leukoscope.classifiers.blocks import DEFAULT_BLOCK_SIZE, block_ids
from leukoscope.classifiers.choices import Protocol
from leukoscope.classifiers.errors import EvaluationError, LeakageError

POSITIVE = "ALL"
NEGATIVE = "HEM"
OFFICIAL_TRAIN_PREFIX = "fold_"
OFFICIAL_TRAIN_UNFOLDED = "train"  # C-NMC mirrors without fold folders
OFFICIAL_TEST = "prelim_test"


@dataclass(frozen=True, eq=False)
class Split:
    """One train/test split of a table.

    Attributes
    ----------
    fold : str
        Name of the split: ``prelim_test`` for the official protocol, ``cv_0``... for
        cross-validation.
    train, test : (n,) int ndarray
        Row positions (``iloc``) of the training and test parts, sorted.
    """

    fold: str
    train: np.ndarray
    test: np.ndarray


def encode_labels(labels: Sequence[str] | pd.Series) -> np.ndarray:
    """Map ``ALL`` -> 1, ``HEM`` -> 0 and ``""`` (unknown) -> -1.

    Parameters
    ----------
    labels : (n,) sequence of str

    Returns
    -------
    (n,) int ndarray

    Raises
    ------
    EvaluationError
        A label is none of ``ALL``, ``HEM`` or empty.
    """
    values = pd.Series(labels, dtype=object).fillna("").astype(str).to_numpy()
    bad = sorted(set(values) - {POSITIVE, NEGATIVE, ""})
    if bad:
        raise EvaluationError(
            f"labels {bad} are not understood; every label must be 'ALL', 'HEM' or empty (unknown)"
        )
    return np.where(values == POSITIVE, 1, np.where(values == NEGATIVE, 0, -1))


def _column(table: pd.DataFrame, name: str) -> np.ndarray:
    if name not in table.columns:
        return np.full(len(table), "", dtype=object)
    return table[name].fillna("").astype(str).to_numpy()


def check_no_leakage(subjects_train: Sequence[str] | np.ndarray, subjects_test: Sequence[str] | np.ndarray) -> None:
    """Refuse a split in which one subject has cells on both sides.

    Empty subject ids mean "unknown" and cannot be checked; they are ignored.

    Parameters
    ----------
    subjects_train, subjects_test : sequence of str
        Subject id of every training and every test row.

    Raises
    ------
    LeakageError
        Some subject is in both parts; the message names them.
    """
    shared = sorted((set(map(str, subjects_train)) & set(map(str, subjects_test))) - {""})
    if shared:
        shown = ", ".join(repr(s) for s in shared[:5]) + (" ..." if len(shared) > 5 else "")
        raise LeakageError(
            f"{len(shared)} subject(s) have cells in both the training and the test part ({shown}); "
            "such a split inflates every metric. Split by subject (protocol 'group-cv' or 'official')"
        )


def _official_train(splits: np.ndarray) -> np.ndarray:
    """Rows of C-NMC's training data: split ``fold_*``, or ``train`` in mirrors without folds."""
    splits = splits.astype(str)
    return np.char.startswith(splits, OFFICIAL_TRAIN_PREFIX) | (splits == OFFICIAL_TRAIN_UNFOLDED)


def _has_official_split(splits: np.ndarray) -> bool:
    return bool(_official_train(splits).any()) and bool((splits == OFFICIAL_TEST).any())


def with_subject_strings(samples: pd.DataFrame) -> pd.DataFrame:
    """``samples`` with its ``subject`` column as str, ``""`` where unknown (NaN or None)."""
    return samples.assign(subject=samples["subject"].fillna("").astype(str))


def resolve_protocol(table: pd.DataFrame, protocol: Protocol | str) -> Protocol:
    """Turn ``auto`` into a concrete protocol and check that the table supports it.

    ``auto`` gives ``official`` when the labelled rows hold C-NMC splits (``fold_*`` or
    ``train``, and ``prelim_test``), else ``group-cv`` when they have subject ids, else ``stratified-cv``.

    Parameters
    ----------
    table : DataFrame
        Samples or features table with ``label`` and, optionally, ``subject`` and ``split``.
    protocol : Protocol or str

    Returns
    -------
    Protocol
        Never ``AUTO``.

    Raises
    ------
    EvaluationError
        The labelled rows hold one class only, or the protocol needs subjects or splits the
        table lacks, or ``stratified-cv`` is asked for on data with subjects (it would put
        cells of one subject on both sides).
    """
    protocol = Protocol(protocol)
    y = encode_labels(_column(table, "label"))
    labelled = y >= 0
    classes = set(y[labelled].tolist())
    if classes != {0, 1}:
        found = ", ".join(sorted({1: POSITIVE, 0: NEGATIVE}[c] for c in classes)) or "none"
        raise EvaluationError(
            f"the labelled rows hold one class only ({found} among {int(labelled.sum())} rows); "
            "evaluation needs both ALL and HEM cells: add cells of the missing class"
        )
    subjects = _column(table, "subject")[labelled]
    splits = _column(table, "split")[labelled]
    known = subjects[subjects != ""]
    if protocol is Protocol.AUTO:
        if _has_official_split(splits):
            protocol = Protocol.OFFICIAL
        elif len(known):
            protocol = Protocol.GROUP_CV
        else:
            protocol = Protocol.STRATIFIED_CV
    if protocol is Protocol.OFFICIAL and not _has_official_split(splits):
        raise EvaluationError(
            "protocol 'official' needs labelled rows with split 'fold_*' or 'train' (training) and "
            f"'{OFFICIAL_TEST}' (test), as in a C-NMC 2019 download; "
            "use protocol 'group-cv' (data with subjects) or 'stratified-cv' (without)"
        )
    if protocol is Protocol.GROUP_CV:
        if len(known) < len(subjects):
            raise EvaluationError(
                f"protocol 'group-cv' needs a subject id on every labelled row, but "
                f"{len(subjects) - len(known)} of {len(subjects)} have none; "
                "use protocol 'stratified-cv' for data without subjects"
            )
        if len(set(known)) < 2:
            raise EvaluationError(
                f"the dataset holds one subject only ({known[0]!r}); subject-safe evaluation needs "
                "at least two subjects per class: add cells of other subjects"
            )
    if protocol in (Protocol.STRATIFIED_CV, Protocol.BLOCKED_CV) and len(known):
        raise EvaluationError(
            f"protocol '{protocol.value}' splits images, but this data has {len(set(known))} subject(s): "
            "cells of one subject would land on both sides; use protocol 'group-cv'"
        )
    if protocol is Protocol.BLOCKED_CV:
        block_ids(_column(table, "sample_id")[labelled])  # every id must hold a number
    return protocol


def split_groups(
    table: pd.DataFrame, protocol: Protocol | str, *, block_size: int = DEFAULT_BLOCK_SIZE
) -> np.ndarray:
    """The unit that ``protocol`` keeps on one side of a split, for every row of ``table``.

    Bootstrap intervals, inner (tuning, selection) folds and paired comparisons should resample
    or group by the same unit as the outer split.

    Parameters
    ----------
    table : DataFrame
        With ``sample_id`` and, optionally, ``subject``.
    protocol : Protocol or str
        Concrete (see :func:`resolve_protocol`).
    block_size : int
        See :func:`~leukoscope.classifiers.blocks.block_ids`.

    Returns
    -------
    (n,) object ndarray of str
        The block id under ``blocked-cv``, ``""`` (each cell its own unit) under
        ``stratified-cv``, the subject otherwise.
    """
    protocol = Protocol(protocol)
    if protocol is Protocol.AUTO:
        raise EvaluationError("split_groups needs a concrete protocol; resolve 'auto' with resolve_protocol first")
    if protocol is Protocol.BLOCKED_CV:
        return block_ids(_column(table, "sample_id"), block_size=block_size)
    if protocol is Protocol.STRATIFIED_CV:
        return np.full(len(table), "", dtype=object)
    return _column(table, "subject")


def iter_splits(
    table: pd.DataFrame,
    *,
    protocol: Protocol | str,
    folds: int = 5,
    seed: int = 0,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> Iterator[Split]:
    """Yield the train/test splits of the labelled rows of ``table`` under ``protocol``.

    Parameters
    ----------
    table : DataFrame
        Samples or features table with ``label``, ``subject`` and ``split`` columns (the last
        two may be missing or empty).
    protocol : Protocol or str
        ``official``: training data (``split`` ``fold_*`` or ``train``) -> ``prelim_test``, one split.
        ``group-cv``: :class:`~sklearn.model_selection.StratifiedGroupKFold` by subject.
        ``stratified-cv``: :class:`~sklearn.model_selection.StratifiedKFold` over images.
        ``blocked-cv``: :class:`~sklearn.model_selection.StratifiedGroupKFold` by blocks of
        ``block_size`` consecutive sample numbers (:mod:`~leukoscope.classifiers.blocks`).
        ``auto``: see :func:`resolve_protocol`.
    folds : int
        Number of cross-validation folds (ignored by ``official``); at least 2.
    seed : int
        Seed of the fold shuffling.
    block_size : int
        Consecutive sample numbers per block (``blocked-cv`` only).

    Yields
    ------
    Split
        Row positions into ``table``; every split has passed :func:`check_no_leakage` and has
        both classes in its training part.

    Raises
    ------
    EvaluationError
        See :func:`resolve_protocol`; also too few subjects or images per class for ``folds``,
        and a training part with one class only.
    LeakageError
        A subject would be on both sides.
    """
    protocol = resolve_protocol(table, protocol)
    y = encode_labels(_column(table, "label"))
    subjects = _column(table, "subject")
    rows = np.flatnonzero(y >= 0)
    if protocol is Protocol.OFFICIAL:
        splits = _column(table, "split")
        train = rows[_official_train(splits[rows])]
        test = rows[splits[rows] == OFFICIAL_TEST]
        if set(y[test].tolist()) != {0, 1}:
            raise EvaluationError(
                f"the '{OFFICIAL_TEST}' rows hold {len(test)} labelled cells of one class only; "
                "the official protocol needs both ALL and HEM test cells: check the preliminary "
                "test labels CSV, or use protocol 'group-cv'"
            )
        parts: list[tuple[str, np.ndarray, np.ndarray]] = [(OFFICIAL_TEST, train, test)]
    else:
        if folds < 2:
            raise EvaluationError(f"cross-validation needs at least 2 folds, got compare.folds = {folds}")
        yl = y[rows]
        if protocol in (Protocol.GROUP_CV, Protocol.BLOCKED_CV):
            groups = split_groups(table.iloc[rows], protocol, block_size=block_size)
            units = [len(set(groups[yl == c])) for c in (1, 0)]
            unit_name = "subjects" if protocol is Protocol.GROUP_CV else "blocks"
            splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
            pairs = splitter.split(rows, yl, groups=groups)
        else:
            units = [int((yl == c).sum()) for c in (1, 0)]
            unit_name = "images"
            pairs = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(rows, yl)
        if min(units) < folds:
            raise EvaluationError(
                f"{protocol.value} with {folds} folds needs at least {folds} {unit_name} per class, "
                f"but there are {units[0]} ALL and {units[1]} HEM {unit_name}; lower compare.folds "
                "or add data"
            )
        parts = [(f"cv_{k}", rows[tr], rows[te]) for k, (tr, te) in enumerate(pairs)]
    for fold, train, test in parts:
        check_no_leakage(subjects[train], subjects[test])
        present = set(y[train].tolist())
        if present != {0, 1}:
            only = POSITIVE if 1 in present else NEGATIVE
            raise EvaluationError(
                f"the training part of fold '{fold}' ({protocol.value}) holds only {only} cells; "
                "a classifier needs both classes: add subjects of the other class or lower compare.folds"
            )
        yield Split(fold=fold, train=np.sort(train), test=np.sort(test))


__all__ = ["Split", "check_no_leakage", "encode_labels", "iter_splits", "resolve_protocol", "split_groups",
           "with_subject_strings"]
