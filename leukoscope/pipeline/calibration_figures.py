"""The reliability diagram of P(ALL), drawn from :func:`leukoscope.classifiers.calibration.reliability_bins`.

Pure: tables in, ``(image, caption)`` out, the image an (H, W, 3) uint8 RGB array rendered with
:func:`leukoscope.pipeline.figures.figure_to_array` (write it with
:func:`leukoscope.pipeline.atomic.write_png`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from leukoscope.pipeline.figures import figure_to_array


def reliability_figure(bins: Mapping[str, pd.DataFrame]) -> tuple[np.ndarray, str]:
    """Reliability diagrams of several rows on one set of axes, and what they show.

    Parameters
    ----------
    bins : mapping of str to DataFrame
        Legend label (e.g. ``"svm / handcrafted, Brier 0.020"``) ->
        :func:`~leukoscope.classifiers.calibration.reliability_bins`.

    Returns
    -------
    image : (H, W, 3) uint8 ndarray
        Share of ALL cells against mean P(ALL) per non-empty bin, marker area proportional to
        the bin's share of the row's cells, and the diagonal of perfect calibration.
    caption : str
    """
    fig = Figure(figsize=(6.0, 5.5), dpi=90)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    for label, table in bins.items():
        shown = table[table["cells"] > 0]
        (line,) = ax.plot(shown["mean_score"], shown["fraction_all"], linewidth=1, label=label)
        size = 200 * shown["cells"] / max(int(table["cells"].sum()), 1)
        ax.scatter(shown["mean_score"], shown["fraction_all"], s=np.maximum(size, 4), color=line.get_color())
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean P(ALL) in the bin")
    ax.set_ylabel("share of ALL cells in the bin")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    n_bins = max((len(t) for t in bins.values()), default=0)
    caption = (f"Reliability diagram ({n_bins} equal-width bins of P(ALL)): share of ALL cells against the mean "
               "P(ALL) of each bin; on the dotted diagonal a score of 0.8 means 80 % ALL. Marker area: the bin's "
               "share of the cells.")
    return figure_to_array(fig), caption


__all__ = ["reliability_figure"]
