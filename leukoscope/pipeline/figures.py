"""Matplotlib figures rendered to arrays, so that every PNG goes through the atomic writer."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def figure_to_array(fig: Figure) -> np.ndarray:
    """Render a matplotlib figure.

    Returns
    -------
    image : (H, W, 3) uint8 ndarray
        The figure's pixels, RGB.
    """
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def learning_curve(history: pd.DataFrame, *, title: str, ylabel: str, groups: Sequence[str] = (),
                   secondary: Sequence[tuple[str, str, str]] = (), secondary_label: str = "",
                   note: str = "") -> np.ndarray:
    """Training (solid) and validation (dashed, same colour) loss per epoch (whole-number epoch ticks).

    Parameters
    ----------
    history : DataFrame
        ``epoch``, ``loss`` and ``val_loss`` columns, plus those named in ``groups`` and ``secondary``.
    title, ylabel : str
        Figure title and loss axis label.
    groups : sequence of str
        Columns whose value combinations each get their own pair of lines (e.g. fold, phase).
    secondary : sequence of (column, label, colour)
        Further lines on a second y axis (e.g. validation Dice).
    secondary_label : str
        Label of that axis.
    note : str
        A sentence printed small under the axes (e.g. why training loss can sit above validation).

    Returns
    -------
    (H, W, 3) uint8 ndarray
        The rendered figure.
    """
    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    ax = fig.add_subplot()
    parts = history.groupby(list(groups), sort=False) if groups else [((), history)]
    for key, part in parts:
        prefix = " ".join(str(k) for k in key) + " " if groups else ""
        line, = ax.plot(part["epoch"], part["loss"], marker="o", ms=3, label=f"{prefix}train" if groups else "training loss")
        ax.plot(part["epoch"], part["val_loss"], ls="--", color=line.get_color(),
                label=f"{prefix}validation" if groups else "validation loss")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if secondary:
        other = ax.twinx()
        for column, label, colour in secondary:
            other.plot(history["epoch"], history[column], ls=":", color=colour, label=label)
        other.set_ylabel(secondary_label)
        handles = ax.get_legend_handles_labels()[0] + other.get_legend_handles_labels()[0]
        ax.legend(handles=handles, fontsize=7, loc="center right")
    else:
        ax.legend(fontsize=6, ncol=2)
    if note:
        fig.text(0.01, 0.01, note, fontsize=6, color="#444", wrap=True)
        fig.tight_layout(rect=(0, 0.06, 1, 1))
    else:
        fig.tight_layout()
    return figure_to_array(fig)
