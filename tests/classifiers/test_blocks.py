"""Blocks of consecutive sample numbers and the blocked-cv protocol."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leukoscope.classifiers.blocks import block_ids, sample_numbers
from leukoscope.classifiers.choices import Protocol
from leukoscope.classifiers.errors import EvaluationError
from leukoscope.classifiers.splits import iter_splits, resolve_protocol, split_groups


def allidb_like(n_per_class: int = 40) -> pd.DataFrame:
    """ALL-IDB2-style names: Im001_1 ... blasts first, then normal cells, no subjects."""
    n = 2 * n_per_class
    return pd.DataFrame({
        "sample_id": [f"Im{k:03d}_{int(k <= n_per_class)}" for k in range(1, n + 1)],
        "label": ["ALL" if k <= n_per_class else "HEM" for k in range(1, n + 1)],
        "subject": "", "split": "",
    })


def test_sample_numbers_come_from_the_last_part_of_the_id():
    assert sample_numbers(["Im042_1", "img__Im007_0", "x1__Im120_0"]).tolist() == [42, 7, 120]
    with pytest.raises(EvaluationError, match="'cell_a' holds no number.*'stratified-cv'"):
        sample_numbers(["Im001_1", "cell_a"])


def test_blocks_are_runs_of_consecutive_numbers():
    ids = ["Im009_1", "Im010_1", "Im019_1", "Im020_0"]
    assert block_ids(ids, block_size=10).tolist() == ["block_0000", "block_0001", "block_0001", "block_0002"]
    assert block_ids(ids, block_size=1).tolist() == ["block_0009", "block_0010", "block_0019", "block_0020"]
    with pytest.raises(EvaluationError, match="block_size must be at least 1"):
        block_ids(ids, block_size=0)


def test_blocked_cv_keeps_every_block_on_one_side_and_stratifies():
    table = allidb_like()
    splits = list(iter_splits(table, protocol="blocked-cv", folds=4, seed=0, block_size=10))
    blocks = split_groups(table, Protocol.BLOCKED_CV, block_size=10)
    assert len(splits) == 4
    tested = np.concatenate([s.test for s in splits])
    assert sorted(tested.tolist()) == list(range(len(table)))  # a partition
    for split in splits:
        assert not set(blocks[split.train]) & set(blocks[split.test])
        assert set(table["label"].iloc[split.test]) == {"ALL", "HEM"}
    # another seed, other folds (repeats are possible)
    other = list(iter_splits(table, protocol="blocked-cv", folds=4, seed=1, block_size=10))
    assert any(not np.array_equal(a.test, b.test) for a, b in zip(splits, other))


def test_blocked_cv_needs_enough_blocks_and_no_subjects():
    expected = "blocked-cv with 4 folds needs at least 4 blocks per class.*3 ALL and 3 HEM blocks"
    with pytest.raises(EvaluationError, match=expected):
        list(iter_splits(allidb_like(), protocol="blocked-cv", folds=4, block_size=20))
    with_subjects = allidb_like().assign(subject=[f"s{k % 8}" for k in range(80)])
    with pytest.raises(EvaluationError, match="'blocked-cv' splits images.*8 subject.*'group-cv'"):
        resolve_protocol(with_subjects, "blocked-cv")
    unnamed = allidb_like().assign(sample_id=[f"cell_{chr(97 + k % 26)}{k // 26}x" for k in range(80)])
    unnamed.loc[0, "sample_id"] = "cell_a"
    with pytest.raises(EvaluationError, match="holds no number"):
        resolve_protocol(unnamed, "blocked-cv")


def test_split_groups_name_the_unit_of_each_protocol():
    table = allidb_like(3).assign(subject=["a", "a", "b", "c", "c", "d"])
    assert split_groups(table, "group-cv").tolist() == ["a", "a", "b", "c", "c", "d"]
    assert split_groups(table, "stratified-cv").tolist() == [""] * 6
    assert split_groups(table, "blocked-cv", block_size=2).tolist() == [
        "block_0000", "block_0001", "block_0001", "block_0002", "block_0002", "block_0003"]
    with pytest.raises(EvaluationError, match="concrete protocol"):
        split_groups(table, "auto")
