"""The comparison report's figures: confusion matrices and ROC curves, with no row singled out.

Pure: tables in, ``(image, caption)`` out, the image an (H, W, 3) uint8 RGB array rendered with
:func:`leukoscope.pipeline.figures.figure_to_array`. Rows are drawn in the results table's own
order (headline, baseline, then every model on every feature set, then the heads), never ranked
by their score: picking the best-looking row on the folds that scored it is the winner's curse.
Every panel whose features come from a CNN names its weights, so that a copied figure still says
"random weights".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from leukoscope.classifiers.metrics import confusion_matrix
from leukoscope.pipeline.evaluation import BASELINE
from leukoscope.pipeline.figures import figure_to_array

MAX_PANELS = 36
KEYS = ["model", "feature_set"]


def row_label(row: pd.Series) -> str:
    """``model / feature_set``, with ``(<weights> weights)`` when a CNN is behind it."""
    weights = str(row.get("weights", "none"))
    suffix = "" if weights in ("none", "", "unrecorded") else f"\n({weights} weights)"
    return f"{row['model']} / {row['feature_set']}{suffix}"


def _rows_of(predictions: pd.DataFrame, row: pd.Series) -> pd.DataFrame:
    mask = np.logical_and.reduce([predictions[k] == row[k] for k in KEYS])
    return predictions[mask]


def confusion_grid(results: pd.DataFrame, predictions: pd.DataFrame, *,
                   max_panels: int = MAX_PANELS) -> tuple[np.ndarray, str]:
    """Confusion matrices of the results rows as one image, on one colour scale, and what it shows.

    Parameters
    ----------
    results : DataFrame
        Results rows (``model``, ``feature_set``, ``weights``), in the order to draw.
    predictions : DataFrame
        Their prediction rows (``y_true``, ``y_pred``).
    max_panels : int
        The first ``max_panels`` rows get a panel; the caption says how many were left out.

    Returns
    -------
    image : (H, W, 3) uint8 ndarray
    caption : str
    """
    rows = results.head(max_panels)
    matrices = [confusion_matrix(_rows_of(predictions, row)["y_true"], _rows_of(predictions, row)["y_pred"])[::-1, ::-1]
                for _, row in rows.iterrows()]  # ALL first
    top = max([int(m.max()) for m in matrices] + [1])
    cols = min(5, max(len(rows), 1))
    nrows = max(1, -(-len(rows) // cols))
    fig = Figure(figsize=(2.7 * cols, 2.8 * nrows), dpi=90)
    for k, ((_, row), cm) in enumerate(zip(rows.iterrows(), matrices)):
        ax = fig.add_subplot(nrows, cols, k + 1)
        ax.imshow(cm, cmap="Blues", vmin=0, vmax=top)
        for i in range(2):
            for j in range(2):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="white" if cm[i, j] > top / 2 else "black")
        ax.set_xticks([0, 1], ["ALL", "HEM"], fontsize=7)
        ax.set_yticks([0, 1], ["ALL", "HEM"], fontsize=7)
        ax.set_xlabel("predicted", fontsize=7)
        ax.set_ylabel("true", fontsize=7)
        ax.set_title(row_label(row), fontsize=7)
    fig.tight_layout()
    left_out = len(results) - len(rows)
    shown = f"the first {len(rows)} rows of the results table ({left_out} more in results.csv)" if left_out else \
        "every row of the results table"
    return figure_to_array(fig), (f"Confusion matrices of {shown}, in its order; rows true, columns predicted; one "
                                  f"colour scale for all panels (white to dark blue: 0 to {top} cells).")


def roc_figure(results: pd.DataFrame, predictions: pd.DataFrame) -> tuple[np.ndarray, str]:
    """ROC curves: one panel per feature set with every model on it, the headline's first.

    The majority baseline has none: its score is one constant per fold.
    """
    panels = [fs for fs in dict.fromkeys(results["feature_set"]) if fs != BASELINE[1]]
    cols = min(3, len(panels))
    nrows = max(1, -(-len(panels) // max(cols, 1)))
    fig = Figure(figsize=(4.0 * max(cols, 1), 3.6 * nrows), dpi=90)
    for k, feature_set in enumerate(panels):
        ax = fig.add_subplot(nrows, max(cols, 1), k + 1)
        group = results[results["feature_set"] == feature_set]
        for _, row in group.iterrows():
            part = _rows_of(predictions, row)
            if part["y_true"].nunique() < 2:
                continue
            fpr, tpr, _ = roc_curve(part["y_true"], part["y_score"])
            ax.plot(fpr, tpr, linewidth=1.2, label=f"{row['model']}, AUC {row['roc_auc']:.3f}")
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        weights = str(group["weights"].iloc[0])
        ax.set_title(feature_set + ("" if weights in ("none", "unrecorded") else f" ({weights} weights)"), fontsize=8)
        ax.set_xlabel("1 - specificity (HEM called ALL)", fontsize=7)
        ax.set_ylabel("sensitivity (ALL found)", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    return figure_to_array(fig), ("ROC curves of every row, one panel per feature set (the headline's panel is "
                                  "'selected'; the majority baseline, a constant score per fold, has none); dotted: "
                                  "chance.")


__all__ = ["MAX_PANELS", "confusion_grid", "roc_figure", "row_label"]
