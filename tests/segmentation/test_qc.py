"""QC flags: joining, scoring and the rules read from the labels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from leukoscope.segmentation.choices import QCFlag
from leukoscope.segmentation.qc import (
    NC_RATIO_LIMITS,
    QC_WEIGHTS,
    join_flags,
    label_flags,
    nucleus_contrast,
    qc_score,
    split_flags,
)


def test_every_flag_has_a_weight():
    assert set(QC_WEIGHTS) == set(QCFlag)
    assert all(weight > 0 for weight in QC_WEIGHTS.values())


def test_join_orders_and_deduplicates():
    text = join_flags(["debris_removed", QCFlag.MULTIPLE_CELLS, QCFlag.DEBRIS_REMOVED])
    assert text == "multiple_cells;debris_removed"
    assert split_flags(text) == (QCFlag.MULTIPLE_CELLS, QCFlag.DEBRIS_REMOVED)
    assert join_flags([]) == "" and split_flags("") == ()
    with pytest.raises(ValueError, match="not a valid QCFlag"):
        split_flags("multiple_cells;purple")


def test_score_is_the_sum_of_the_weights():
    assert qc_score("") == 0.0
    assert qc_score("multiple_cells;debris_removed") == 0.5 + 0.25
    assert qc_score("no_cell") == 1.0


def _two_tone(nucleus_grey: int, cytoplasm_grey: int) -> tuple[np.ndarray, np.ndarray]:
    labels = np.zeros((10, 10), np.uint8)
    labels[1:9, 1:9] = 1
    labels[3:7, 3:7] = 2
    image = np.zeros((10, 10, 3), np.uint8)
    image[labels == 1] = cytoplasm_grey
    image[labels == 2] = nucleus_grey
    return image, labels


def test_contrast_and_polarity_by_hand():
    image, labels = _two_tone(60, 200)
    assert nucleus_contrast(image, labels) == 140.0
    assert label_flags(image, labels) == []  # 16 / 64 = 0.25 of the cell is nucleus
    image, labels = _two_tone(200, 60)  # the "nucleus" is the bright part
    assert nucleus_contrast(image, labels) == -140.0
    assert label_flags(image, labels) == [QCFlag.NUCLEUS_INVERTED]
    assert math.isnan(nucleus_contrast(image, np.where(labels > 0, 2, 0).astype(np.uint8)))


def test_degenerate_and_extreme_ratios():
    image, labels = _two_tone(60, 200)
    assert label_flags(image, np.zeros_like(labels)) == [QCFlag.NO_CELL]
    assert label_flags(image, np.minimum(labels, 1)) == [QCFlag.NO_NUCLEUS]
    whole = np.where(labels > 0, 2, 0).astype(np.uint8)  # nucleus = cell: ratio 1
    assert label_flags(image, whole) == [QCFlag.NC_RATIO_EXTREME]
    speck = np.minimum(labels, 1)
    speck[4, 4] = 2  # 1 / 64 < 0.05
    assert 1 / 64 < NC_RATIO_LIMITS[0]
    assert label_flags(image, speck) == [QCFlag.NC_RATIO_EXTREME]
