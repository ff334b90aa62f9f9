"""Small-sample guard: degenerate intervals become 'not estimable (k subjects)'."""

from __future__ import annotations

import numpy as np

from leukoscope.classifiers.intervals import (
    class_reasons,
    guarded_bootstrap_ci,
    small_sample_warning,
    unit_counts,
)
from leukoscope.classifiers.metrics import METRICS


def cells(n_all_subjects: int, n_hem_subjects: int, per_subject: int = 10):
    subjects = [f"a{k}" for k in range(n_all_subjects) for _ in range(per_subject)]
    subjects += [f"h{k}" for k in range(n_hem_subjects) for _ in range(per_subject)]
    y_true = np.array([1] * (n_all_subjects * per_subject) + [0] * (n_hem_subjects * per_subject))
    return y_true, np.array(subjects, dtype=object)


def test_unit_counts_by_class():
    y, subjects = cells(3, 2, per_subject=4)
    counts = unit_counts(y, subjects)
    assert counts.loc["ALL"].tolist() == [12, 3, 3] and counts.loc["HEM"].tolist() == [8, 2, 2]
    counts = unit_counts(y, None)  # each cell its own unit
    assert counts.loc["HEM"].tolist() == [8, 0, 8]


def test_two_hem_subjects_make_specificity_not_estimable_but_not_recall():
    # the case: 2 test subjects per class, every HEM cell wrong: [0.000, 0.000] before
    y, subjects = cells(6, 2)
    y_pred = y.copy()
    y_pred[y == 0] = 1
    ci = guarded_bootstrap_ci(y, y_pred.astype(float), y_pred, groups=subjects, n_boot=200, seed=0)
    assert np.isnan(ci["specificity"].low) and np.isnan(ci["specificity"].high)
    assert ci["specificity"].reason == "not estimable (2 HEM subjects)"
    assert ci["recall"].reason == "" and ci["recall"].low == ci["recall"].high == 1.0
    assert all(ci[m].reason == "not estimable (2 HEM subjects)" for m in METRICS if m != "recall")


def test_enough_subjects_keep_the_plain_interval():
    y, subjects = cells(5, 5)
    rng = np.random.default_rng(0)
    y_pred = np.where(rng.random(len(y)) < 0.8, y, 1 - y)
    ci = guarded_bootstrap_ci(y, y_pred.astype(float), y_pred, groups=subjects, n_boot=200, seed=0)
    assert all(ci[m].reason == "" and np.isfinite(ci[m].low) for m in METRICS)
    assert small_sample_warning(y, subjects) == ""


def test_too_few_resampled_cells_without_subjects():
    y = np.array([1, 1, 1, 1, 0, 0])
    assert class_reasons(y, None) == {"ALL": "", "HEM": "not estimable (2 HEM cells)"}
    assert class_reasons(y, ["", "", "", "", "", ""]) == {"ALL": "", "HEM": "not estimable (2 HEM cells)"}


def test_blocks_are_named_in_the_reason_and_the_warning():
    y, groups = cells(4, 6)
    assert class_reasons(y, groups, unit_name="blocks") == {"ALL": "not estimable (4 ALL blocks)", "HEM": ""}
    warning = small_sample_warning(y, groups, unit_name="blocks")
    assert warning.startswith("Warning: the test cells come from 4 ALL blocks and 6 HEM blocks")
    assert "fewer than 5 blocks" in warning
