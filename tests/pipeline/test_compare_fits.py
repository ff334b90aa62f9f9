"""The nested headline's folds: raised until every training part can be tuned (and the SVM calibrated)."""

from __future__ import annotations

import numpy as np
import pytest

from leukoscope.classifiers.errors import EvaluationError
from leukoscope.classifiers.splits import Split
from leukoscope.pipeline.compare_fits import selection_folds


def one_part(subjects_per_class: int, cells: int = 10) -> tuple[np.ndarray, np.ndarray, list[Split]]:
    """A training part of ``subjects_per_class`` ALL and as many HEM subjects, ``cells`` cells each."""
    n = 2 * subjects_per_class * cells
    y = np.repeat([1, 0], n // 2)
    groups = np.array([f"s{i // cells}" for i in range(n)], dtype=object)
    return y, groups, [Split("prelim_test", np.arange(n), np.arange(0))]


@pytest.mark.parametrize(("inner", "platt", "expected"), [
    (2, False, (2, 2)),  # 4 subjects: 2 folds leave 2 per class, which 2 tuning folds can split
    (3, False, (3, 2)),  # 3 folds of 4 subjects leave 2 in some part: tuning drops to 2
    (2, True, (4, 3)),   # the SVM's Platt folds need 2 subjects per class in every tuning part: 4 and 3 folds
    (3, True, (4, 3)),
])
def test_folds_rise_until_every_part_can_be_tuned(inner, platt, expected):
    y, groups, splits = one_part(4)
    assert selection_folds(y, groups, splits, inner_folds=inner, seed=0, platt=platt) == expected


def test_plenty_of_units_keep_the_configured_folds():
    y, groups, splits = one_part(12)
    assert selection_folds(y, groups, splits, inner_folds=3, seed=0, platt=True) == (3, 3)
    cells = np.full(len(y), "", dtype=object)  # stratified-cv: each cell its own unit
    assert selection_folds(y, cells, splits, inner_folds=3, seed=0, platt=True) == (3, 3)


def test_two_subjects_per_class_cannot_be_nested():
    y, groups, splits = one_part(2)
    with pytest.raises(EvaluationError, match="more units per class in every training part than the 2 .*"
                                              "compare.nested = false"):
        selection_folds(y, groups, splits, inner_folds=3, seed=0, platt=False)
