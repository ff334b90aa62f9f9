"""Per-subject calls from per-cell predictions: the rule, and a tally that takes cells in chunks.

The subject rule (the one behind ``subject_accuracy`` in every results table): a subject is
called ALL when more than half of its cells are called ALL; on an exact tie, when the mean
P(ALL) of its cells is at least 0.5. Cells without a subject id (``""``) are never grouped.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

SUBJECT_COLUMNS = ["subject", "cells", "called_all", "fraction_all", "mean_p_all", "call", "label", "labelled_cells"]
TIE_SCORE = 0.5
"""Mean P(ALL) at or above which a subject with as many ALL as HEM calls is called ALL."""


def subject_call(fraction_all: np.ndarray, mean_score: np.ndarray) -> np.ndarray:
    """Whether each subject is called ALL (see the module docstring).

    Parameters
    ----------
    fraction_all : (n_subjects,) float ndarray
        Share of the subject's cells called ALL.
    mean_score : (n_subjects,) float ndarray
        Mean P(ALL) of the subject's cells.

    Returns
    -------
    (n_subjects,) bool ndarray
    """
    fraction_all, mean_score = np.asarray(fraction_all, dtype=float), np.asarray(mean_score, dtype=float)
    return (fraction_all > 0.5) | ((fraction_all == 0.5) & (mean_score >= TIE_SCORE))


class SubjectTally:
    """Sums per subject over cells given in chunks, so that no per-cell table is kept.

    Examples
    --------
    >>> tally = SubjectTally()
    >>> tally.add(["a", "a", "b"], [0.9, 0.2, 0.4], [1, 0, 0], ["ALL", "ALL", ""])
    >>> tally.table()[["subject", "cells", "call"]].to_dict("records")
    [{'subject': 'a', 'cells': 2, 'call': 'ALL'}, {'subject': 'b', 'cells': 1, 'call': 'HEM'}]
    """

    def __init__(self) -> None:
        self._sums = pd.DataFrame(columns=["cells", "called_all", "score", "all_labels", "labelled_cells"], dtype=float)

    def add(self, subjects: Sequence[str] | np.ndarray, y_score: Sequence[float] | np.ndarray,
            y_pred: Sequence[int] | np.ndarray, labels: Sequence[str] | np.ndarray) -> None:
        """Count one chunk of cells.

        Parameters
        ----------
        subjects : (n,) sequence of str
            Subject id of each cell; ``""`` (unknown) cells are skipped.
        y_score : (n,) sequence of float
            P(ALL); NaN (no prediction) cells are skipped.
        y_pred : (n,) sequence of int
            The cell calls (1 = ALL).
        labels : (n,) sequence of str
            ``ALL``, ``HEM`` or ``""`` (unknown).
        """
        known = np.asarray(labels, dtype=object).astype(str)
        chunk = pd.DataFrame({
            "subject": np.asarray(subjects, dtype=object).astype(str), "cells": 1.0,
            "called_all": np.asarray(y_pred, dtype=float), "score": np.asarray(y_score, dtype=float),
            "all_labels": np.equal(known, "ALL").astype(float), "labelled_cells": np.not_equal(known, "").astype(float),
        })
        chunk = chunk[(chunk["subject"] != "") & chunk["score"].notna()]
        sums = chunk.groupby("subject").sum()
        self._sums = sums if self._sums.empty else self._sums.add(sums, fill_value=0.0)

    def table(self) -> pd.DataFrame:
        """One row per subject (sorted): :data:`SUBJECT_COLUMNS`.

        ``label`` is the majority of the subject's known cell labels (ALL on a tie, ``""``
        when none is known), as :func:`~leukoscope.classifiers.metrics.subject_vote_accuracy`
        takes it.
        """
        sums = self._sums.sort_index()
        fraction = sums["called_all"] / sums["cells"]
        mean = sums["score"] / sums["cells"]
        labelled = sums["labelled_cells"]
        truth = np.where(labelled == 0, "", np.where(sums["all_labels"] >= labelled / 2, "ALL", "HEM"))
        return pd.DataFrame({
            "subject": sums.index.astype(str), "cells": sums["cells"].astype(int).to_numpy(),
            "called_all": sums["called_all"].astype(int).to_numpy(), "fraction_all": fraction.to_numpy(),
            "mean_p_all": mean.to_numpy(), "call": np.where(subject_call(fraction, mean), "ALL", "HEM"),
            "label": truth, "labelled_cells": labelled.astype(int).to_numpy(),
        }, columns=SUBJECT_COLUMNS)


__all__ = ["SUBJECT_COLUMNS", "SubjectTally", "TIE_SCORE", "subject_call"]
