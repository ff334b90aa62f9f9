"""Keras-style element-wise metrics: they reproduce the pattern of the paper's Table 1."""

from __future__ import annotations

import numpy as np
import pytest

from leukoscope.classifiers.keras_metrics import keras_elementwise_metrics
from leukoscope.classifiers.metrics import binary_metrics


def test_both_sigmoids_on_gives_the_papers_efficientnet_row_whatever_the_balance():
    # the paper's EfficientNet B0: accuracy 0.5000, precision 0.5000, recall 1.0000
    y = np.array([1] * 68 + [0] * 32)  # C-NMC-like: two thirds ALL
    outputs = np.full((100, 2), 0.9)
    assert keras_elementwise_metrics(y, outputs) == {"accuracy": 0.5, "precision": 0.5, "recall": 1.0}
    # the ALL-class metrics of "everything ALL" differ: precision is the ALL share
    called = np.ones(100, dtype=int)
    assert binary_metrics(y, called.astype(float), called)["precision"] == pytest.approx(0.68)


def test_hand_counted_elements():
    y = np.array([1, 0, 1, 0])
    outputs = np.array([[0.2, 0.8],   # ALL cell, ALL on: TP (ALL col), TN (HEM col)
                        [0.6, 0.7],   # HEM cell, both on: TP (HEM col), FP (ALL col)
                        [0.1, 0.3],   # ALL cell, none on: FN (ALL col), TN (HEM col)
                        [0.4, 0.9]])  # HEM cell, ALL on: FN (HEM col), FP (ALL col)
    # TP 2, FP 2, FN 2, TN 2 of 8 elements
    assert keras_elementwise_metrics(y, outputs) == {"accuracy": 0.5, "precision": 0.5, "recall": 0.5}


def test_single_score_models_set_one_column_so_all_three_equal_accuracy():
    y = np.array([1, 1, 1, 0, 0])
    p_all = np.array([0.9, 0.5, 0.2, 0.1, 0.7])  # 0.5 is ALL by the threshold rule
    m = keras_elementwise_metrics(y, p_all)
    assert m == {"accuracy": 0.6, "precision": 0.6, "recall": 0.6}
    with pytest.raises(ValueError, match=r"\(N,\) P\(ALL\) or \(N, 2\)"):
        keras_elementwise_metrics(y, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="y_true has 5 cells but outputs 4"):
        keras_elementwise_metrics(y, p_all[:4])
