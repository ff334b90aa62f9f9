"""Evaluation protocols: official split, group and stratified CV, and the leakage guard."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leukoscope.classifiers.choices import Protocol
from leukoscope.classifiers.errors import EvaluationError, LeakageError
from leukoscope.classifiers.splits import (
    check_no_leakage,
    encode_labels,
    iter_splits,
    resolve_protocol,
)


def table(labels, subjects=None, splits=None) -> pd.DataFrame:
    n = len(labels)
    return pd.DataFrame(
        {
            "sample_id": [f"s{i}" for i in range(n)],
            "label": labels,
            "subject": subjects if subjects is not None else [""] * n,
            "split": splits if splits is not None else [""] * n,
        }
    )


def subject_table(n_subjects_per_class=6, cells=4) -> pd.DataFrame:
    labels, subjects = [], []
    for c, prefix in (("ALL", ""), ("HEM", "H")):
        for s in range(n_subjects_per_class):
            labels += [c] * cells
            subjects += [f"{prefix}{s + 1}"] * cells
    return table(labels, subjects)


def test_encode_labels_maps_all_hem_unknown():
    assert encode_labels(["ALL", "HEM", "", "ALL"]).tolist() == [1, 0, -1, 1]
    with pytest.raises(EvaluationError, match="'blast'.*'ALL', 'HEM' or empty"):
        encode_labels(["ALL", "blast"])


def test_leakage_guard_refuses_a_subject_on_both_sides():
    with pytest.raises(LeakageError, match=r"1 subject\(s\).*'H10'"):
        check_no_leakage(["11", "H10", "H10"], ["12", "H10"])
    check_no_leakage(["11", "H10"], ["12", "H11"])
    check_no_leakage(["", ""], ["", "12"])  # unknown subjects cannot be checked


def test_auto_resolves_by_what_the_table_holds():
    cnmc = table(["ALL", "HEM", "ALL", "HEM", ""], ["1", "H1", "2", "H2", "3"],
                 ["fold_0", "fold_1", "prelim_test", "prelim_test", "final_test"])
    assert resolve_protocol(cnmc, "auto") is Protocol.OFFICIAL
    assert resolve_protocol(subject_table(), Protocol.AUTO) is Protocol.GROUP_CV
    assert resolve_protocol(table(["ALL", "HEM"] * 5), "auto") is Protocol.STRATIFIED_CV


def test_official_split_trains_on_folds_and_tests_on_prelim():
    t = table(["ALL", "HEM", "ALL", "HEM", "ALL", "HEM", ""],
              ["1", "H1", "2", "H2", "3", "H3", "4"],
              ["fold_0", "fold_1", "fold_2", "fold_2", "prelim_test", "prelim_test", "final_test"])
    (split,) = list(iter_splits(t, protocol="official"))
    assert split.fold == "prelim_test"
    assert split.train.tolist() == [0, 1, 2, 3]
    assert split.test.tolist() == [4, 5]
    unfolded = t.assign(split=t["split"].replace({"fold_0": "train", "fold_1": "train", "fold_2": "train"}))
    assert resolve_protocol(unfolded, "auto") is Protocol.OFFICIAL
    assert next(iter_splits(unfolded, protocol="official")).train.tolist() == [0, 1, 2, 3]


def test_official_split_refuses_shared_subjects():
    t = table(["ALL", "HEM", "ALL", "HEM"], ["1", "H1", "1", "H2"],
              ["fold_0", "fold_0", "prelim_test", "prelim_test"])
    with pytest.raises(LeakageError, match="'1'"):
        list(iter_splits(t, protocol="official"))


def test_group_cv_keeps_subjects_on_one_side_and_covers_every_row():
    t = subject_table()
    splits = list(iter_splits(t, protocol="group-cv", folds=3, seed=1))
    assert [s.fold for s in splits] == ["cv_0", "cv_1", "cv_2"]
    tested = np.concatenate([s.test for s in splits])
    assert sorted(tested.tolist()) == list(range(len(t)))
    for s in splits:
        assert not set(t.subject.iloc[s.train]) & set(t.subject.iloc[s.test])
        assert set(t.label.iloc[s.test]) == {"ALL", "HEM"}


def test_splits_are_deterministic_for_a_seed():
    t = subject_table()
    a = [s.test.tolist() for s in iter_splits(t, protocol="group-cv", folds=3, seed=4)]
    b = [s.test.tolist() for s in iter_splits(t, protocol="group-cv", folds=3, seed=4)]
    assert a == b


def test_unlabelled_rows_are_never_in_a_split():
    t = table(["ALL", "HEM", ""] * 6)
    unlabelled = set(range(2, 18, 3))
    for s in iter_splits(t, protocol="stratified-cv", folds=3):
        assert not unlabelled & (set(s.train.tolist()) | set(s.test.tolist()))


def test_stratified_cv_refuses_data_with_subjects():
    with pytest.raises(EvaluationError, match="use protocol 'group-cv'"):
        list(iter_splits(subject_table(), protocol="stratified-cv"))


def test_one_subject_stops_with_the_fix():
    t = table(["ALL", "HEM"] * 4, ["7"] * 8)
    with pytest.raises(EvaluationError, match="one subject only.*'7'.*add cells of other subjects"):
        resolve_protocol(t, "auto")


def test_single_class_data_stops():
    with pytest.raises(EvaluationError, match=r"one class only \(ALL among 3 rows\)"):
        resolve_protocol(table(["ALL", "ALL", "ALL", ""]), "auto")


def test_too_few_subjects_per_class_stops():
    # one ALL subject: the fold that tests it would train on HEM only
    t = table(["ALL"] * 4 + ["HEM"] * 8, ["1"] * 4 + ["H1"] * 4 + ["H2"] * 4)
    with pytest.raises(EvaluationError, match="needs at least 2 subjects per class.*1 ALL and 2 HEM"):
        list(iter_splits(t, protocol="group-cv", folds=2))


def test_single_class_training_part_stops():
    t = table(["ALL", "ALL", "ALL", "HEM"], ["1", "2", "3", "H1"],
              ["fold_0", "fold_1", "prelim_test", "prelim_test"])
    with pytest.raises(EvaluationError, match="training part of fold 'prelim_test'.*only ALL cells"):
        list(iter_splits(t, protocol="official"))


def test_group_cv_needs_a_subject_on_every_row():
    t = subject_table()
    t.loc[0, "subject"] = ""
    with pytest.raises(EvaluationError, match="1 of 48 have none"):
        resolve_protocol(t, "group-cv")


def test_official_needs_cnmc_splits():
    with pytest.raises(EvaluationError, match="'official' needs labelled rows with split 'fold_\\*' or 'train'"):
        resolve_protocol(subject_table(), "official")
