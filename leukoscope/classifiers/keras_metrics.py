"""The reference paper's metrics as Keras computes them: element-wise over both one-hot outputs.

The paper's head ends in ``Dense(2, sigmoid)`` trained on one-hot targets with binary
cross-entropy, and reports Keras' ``accuracy``, ``Precision()`` and ``Recall()``. With that loss
Keras' ``accuracy`` is binary accuracy, and all three metrics treat the ``(N, 2)`` outputs as
``2N`` independent binary predictions, each output called 1 when it is above 0.5. Precision and
recall are then not those of the ALL class: every cell contributes one positive element (its
true class's column), so recall is the share of cells whose true-class output is on, and
precision the share of "on" outputs that sit in the true column.

The paper's numbers fit this reading, not the ALL-class one: its EfficientNet B0 "classified
the images into one class" yet shows accuracy 0.5000, precision 0.5000 and recall 1.0000. When
both sigmoids are above 0.5 for every cell, element-wise TP = N, FP = N, FN = 0 and TN = 0: of
the 2N elements N are right, so precision 1/2, recall 1 and binary accuracy 1/2, whatever the
class balance. ALL-class metrics of a classifier calling every cell ALL would give a precision
equal to the ALL share of the validation cells, about two thirds in C-NMC 2019 (7,272 of the
10,661 training cells, ../shared/docs/cnmc-layout.md), not 0.5.
So a side-by-side with the paper's Table 1 must compute our numbers with
:func:`keras_elementwise_metrics`, or say that the metrics differ.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from leukoscope.classifiers.metrics import THRESHOLD, predict_labels

KERAS_METRICS = ("accuracy", "precision", "recall")


def keras_elementwise_metrics(
    y_true: Sequence[int] | np.ndarray, outputs: Sequence[float] | np.ndarray
) -> dict[str, float]:
    """Keras' binary accuracy, ``Precision()`` and ``Recall()`` over both one-hot columns.

    Parameters
    ----------
    y_true : (N,) int array-like
        1 = ALL, 0 = HEM; the one-hot target of a cell is ``[HEM, ALL]``.
    outputs : (N,) or (N, 2) float array-like
        ``(N,)``: P(ALL) of a single-score model; its called class (P(ALL) >= 0.5, the
        project's one threshold rule) sets exactly one of the two columns, so the three metrics
        all equal the cell accuracy. ``(N, 2)``: two independent sigmoid outputs in
        ``(HEM, ALL)`` order, each on when at least :data:`THRESHOLD` (Keras uses "above";
        only an output of exactly 0.5 differs); both, one or none may be on.

    Returns
    -------
    dict of str to float
        ``accuracy`` (correct elements / 2N), ``precision`` (TP / (TP + FP)) and ``recall``
        (TP / (TP + FN)) over the 2N elements; NaN where a denominator is zero.
    """
    y_true = np.asarray(y_true, dtype=int).ravel()
    outputs = np.asarray(outputs, dtype=float)
    if outputs.ndim == 1:
        called = predict_labels(outputs)
        on = np.stack([called == 0, called == 1], axis=1)
    elif outputs.ndim == 2 and outputs.shape[1] == 2:
        on = outputs >= THRESHOLD
    else:
        raise ValueError(
            f"outputs must be (N,) P(ALL) or (N, 2) sigmoid outputs in (HEM, ALL) order, got {outputs.shape}"
        )
    if len(on) != len(y_true):
        raise ValueError(f"y_true has {len(y_true)} cells but outputs {len(on)}; give one per cell")
    target = np.stack([y_true == 0, y_true == 1], axis=1)
    tp, fp, fn = (on & target).sum(), (on & ~target).sum(), (~on & target).sum()
    total = target.size

    def ratio(num: int, den: int) -> float:
        return float(num / den) if den else float("nan")

    return {"accuracy": ratio(int((on == target).sum()), total), "precision": ratio(tp, tp + fp),
            "recall": ratio(tp, tp + fn)}


__all__ = ["KERAS_METRICS", "keras_elementwise_metrics"]
