"""Subject calls: the documented rule, by hand, and the same whatever the chunking."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leukoscope.classifiers.metrics import subject_vote_accuracy
from leukoscope.classifiers.subjects import SUBJECT_COLUMNS, SubjectTally, subject_call


def test_majority_then_mean_score_on_a_tie():
    fraction = np.array([0.75, 0.25, 0.5, 0.5])
    mean = np.array([0.1, 0.9, 0.5, 0.49])
    assert subject_call(fraction, mean).tolist() == [True, False, True, False]


def test_table_by_hand():
    tally = SubjectTally()
    tally.add(["a", "a", "a", "b", "b", ""], [0.9, 0.6, 0.2, 0.4, 0.7, 0.99], [1, 1, 0, 0, 1, 1],
              ["ALL", "ALL", "HEM", "", "", "ALL"])
    table = tally.table()
    assert list(table.columns) == SUBJECT_COLUMNS
    a, b = table.to_dict("records")
    assert a == {"subject": "a", "cells": 3, "called_all": 2, "fraction_all": 2 / 3, "mean_p_all": a["mean_p_all"],
                 "call": "ALL", "label": "ALL", "labelled_cells": 3}
    assert np.isclose(a["mean_p_all"], 1.7 / 3)
    # b: one of two called ALL, mean 0.55 >= 0.5 -> ALL; no known label
    assert (b["fraction_all"], b["call"], b["label"], b["labelled_cells"]) == (0.5, "ALL", "", 0)


def test_unscored_cells_are_not_counted():
    tally = SubjectTally()
    tally.add(["a", "a"], [np.nan, 0.2], [0, 0], ["HEM", "HEM"])
    assert tally.table()["cells"].tolist() == [1]


def test_chunks_give_the_same_table_as_one_call():
    rng = np.random.default_rng(0)
    subjects = rng.choice(["s1", "s2", "s3", "H1"], size=200)
    score = rng.random(200)
    pred = (score >= 0.5).astype(int)
    labels = np.where(np.char.startswith(subjects.astype(str), "H"), "HEM", "ALL")
    whole, parts = SubjectTally(), SubjectTally()
    whole.add(subjects, score, pred, labels)
    for start in range(0, 200, 37):
        parts.add(subjects[start:start + 37], score[start:start + 37], pred[start:start + 37], labels[start:start + 37])
    pd.testing.assert_frame_equal(whole.table(), parts.table())


def test_subject_accuracy_uses_the_same_rule():
    rng = np.random.default_rng(1)
    subjects = rng.choice(["s1", "s2", "s3", "s4", "H1", "H2"], size=120)
    y_true = (~np.char.startswith(subjects.astype(str), "H")).astype(int)
    score = np.clip(0.3 * y_true + rng.random(120) * 0.7, 0, 1)
    pred = (score >= 0.5).astype(int)
    tally = SubjectTally()
    tally.add(subjects, score, pred, np.where(y_true == 1, "ALL", "HEM"))
    table = tally.table()
    accuracy, n = subject_vote_accuracy(y_true, score, pred, subjects)
    assert n == len(table) and accuracy == (table["call"] == table["label"]).mean()


def test_no_subject_gives_an_empty_table():
    tally = SubjectTally()
    tally.add(["", ""], [0.1, 0.9], [0, 1], ["", ""])
    assert tally.table().empty and list(tally.table().columns) == SUBJECT_COLUMNS
