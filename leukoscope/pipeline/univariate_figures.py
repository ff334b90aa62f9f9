"""Figures of the univariate table: ranked effect sizes, volcano plot, subject-median box plots.

Each function is pure: tables in, ``(image, caption)`` out, the image an (H, W, 3) uint8 RGB
array rendered with :func:`leukoscope.pipeline.figures.figure_to_array` (write it with
:func:`leukoscope.pipeline.atomic.write_png`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from leukoscope.features.subjects import LABEL, MEDIAN, stat_column
from leukoscope.features.univariate import NEGATIVE, POSITIVE, Effect, Level, Test
from leukoscope.pipeline.figures import figure_to_array

EFFECT_NAMES = {Effect.CLIFFS_DELTA: "Cliff's delta", Effect.HEDGES_G: "Hedges' g"}
TEST_NAMES = {Test.MANN_WHITNEY: "Mann-Whitney test of subject medians", Test.MIXED: "mixed model on cells"}
CLASS_COLOURS = {POSITIVE: "tab:red", NEGATIVE: "tab:blue"}
SIGNIFICANT, OTHER = "tab:purple", "0.6"


def ranked_features(
    univariate: pd.DataFrame, effect: Effect | str = Effect.CLIFFS_DELTA, top: int = 30
) -> pd.DataFrame:
    """The ``top`` rows with the largest absolute ``effect`` (ties: larger absolute other effect first)."""
    effect = Effect(effect)
    other = next(e for e in Effect if e is not effect)
    order = univariate.assign(_size=-univariate[effect.value].abs(), _other=-univariate[other.value].abs())
    order = order.sort_values(["_size", "_other"], kind="stable")
    return order[order[effect.value].notna()].drop(columns=["_size", "_other"]).head(top)


def _level_remark(univariate: pd.DataFrame) -> str:
    cell = (univariate["level"] == Level.CELL.value).any()
    return " Cell-level: every subject has one cell, so cells are treated as independent." if cell else ""


def effect_size_figure(
    univariate: pd.DataFrame, *, effect: Effect | str = Effect.CLIFFS_DELTA, top: int = 30,
    test: Test | str = Test.MIXED, alpha: float = 0.05,
) -> tuple[np.ndarray, str]:
    """The ``top`` features by absolute effect size, with their bootstrap intervals.

    Parameters
    ----------
    univariate : pandas.DataFrame
        :func:`leukoscope.features.univariate.univariate_table`.
    effect : Effect
        Effect size shown.
    top : int
        Number of features.
    test : Test
        Test whose q value colours the points (q < ``alpha``: purple).
    alpha : float
        False discovery rate of the colouring.

    Returns
    -------
    image : (H, W, 3) uint8 ndarray
    caption : str
    """
    effect, test = Effect(effect), Test(test)
    rows = ranked_features(univariate, effect, top).iloc[::-1]
    fig = Figure(figsize=(7.5, 1.2 + 0.2 * max(len(rows), 1)), dpi=90)
    ax = fig.add_subplot()
    y = np.arange(len(rows))
    values = rows[effect.value].to_numpy()
    errors = np.abs(rows[[f"{effect.value}_low", f"{effect.value}_high"]].to_numpy().T - values)
    colours = np.where(rows[f"{test.value}_q"] < alpha, SIGNIFICANT, OTHER)
    ax.errorbar(values, y, xerr=np.nan_to_num(errors), fmt="none", ecolor="0.4", elinewidth=1, capsize=2)
    ax.scatter(values, y, c=colours, zorder=3, s=18)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, rows["feature"], fontsize=6)
    ax.set_xlabel(f"{EFFECT_NAMES[effect]} (ALL vs HEM subject medians; > 0: higher in ALL)")
    fig.tight_layout()
    caption = (f"The {len(rows)} features with the largest absolute {EFFECT_NAMES[effect]}, with "
               f"percentile bootstrap intervals over subjects; purple: {TEST_NAMES[test]} q < {alpha}."
               + _level_remark(univariate))
    return figure_to_array(fig), caption


def volcano_figure(
    univariate: pd.DataFrame, *, effect: Effect | str = Effect.CLIFFS_DELTA, test: Test | str = Test.MIXED,
    alpha: float = 0.05, labelled: int = 8,
) -> tuple[np.ndarray, str]:
    """Effect size against ``-log10 q`` for every feature; the ``labelled`` smallest q named.

    Returns
    -------
    image : (H, W, 3) uint8 ndarray
    caption : str
    """
    effect, test = Effect(effect), Test(test)
    rows = univariate[univariate[effect.value].notna() & univariate[f"{test.value}_q"].notna()]
    q = rows[f"{test.value}_q"].to_numpy()
    height = -np.log10(np.maximum(q, np.finfo(float).tiny))
    fig = Figure(figsize=(7.0, 5.0), dpi=90)
    ax = fig.add_subplot()
    ax.scatter(rows[effect.value], height, c=np.where(q < alpha, SIGNIFICANT, OTHER), s=12)
    ax.axhline(-np.log10(alpha), color="black", lw=0.8, ls="--")
    ax.axvline(0, color="black", lw=0.8)
    for k in np.argsort(q, kind="stable")[:labelled]:
        ax.annotate(rows["feature"].iloc[k], (rows[effect.value].iloc[k], height[k]), fontsize=6,
                    xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(f"{EFFECT_NAMES[effect]} (ALL vs HEM subject medians)")
    ax.set_ylabel(f"-log10 q ({TEST_NAMES[test]})")
    fig.tight_layout()
    caption = (f"Volcano plot of {len(rows)} features: {EFFECT_NAMES[effect]} against the Benjamini-Hochberg q "
               f"of the {TEST_NAMES[test]}; dashed: q = {alpha}." + _level_remark(univariate))
    return figure_to_array(fig), caption


def subject_boxplots(
    subjects: pd.DataFrame, univariate: pd.DataFrame, *, top: int = 6, effect: Effect | str = Effect.CLIFFS_DELTA,
) -> tuple[np.ndarray, str]:
    """Box plots of the subject medians per class for the ``top`` features by absolute effect.

    Parameters
    ----------
    subjects : pandas.DataFrame
        :func:`leukoscope.features.subjects.subject_table`, made with the same qc rule.
    univariate : pandas.DataFrame
        :func:`leukoscope.features.univariate.univariate_table`.

    Returns
    -------
    image : (H, W, 3) uint8 ndarray
    caption : str
    """
    rows = ranked_features(univariate, effect, top)
    cols = min(3, max(len(rows), 1))
    nrows = max(1, -(-len(rows) // cols))
    fig = Figure(figsize=(3.0 * cols, 2.8 * nrows), dpi=90)
    jitter = np.random.default_rng(0)
    for k, row in enumerate(rows.itertuples(index=False)):
        ax = fig.add_subplot(nrows, cols, k + 1)
        medians = subjects[stat_column(row.feature, MEDIAN)]
        groups = [medians[subjects[LABEL] == c].dropna().to_numpy() for c in (POSITIVE, NEGATIVE)]
        ax.boxplot(groups, showfliers=False, widths=0.5)
        for position, (values, colour) in enumerate(zip(groups, CLASS_COLOURS.values()), start=1):
            ax.scatter(position + jitter.uniform(-0.15, 0.15, len(values)), values, s=8, color=colour, zorder=3)
        ax.set_xticks([1, 2], [f"{POSITIVE} ({len(groups[0])})", f"{NEGATIVE} ({len(groups[1])})"], fontsize=7)
        ax.set_title(f"{row.feature}\ndelta {row.cliffs_delta:.2f}, mixed q {row.mixed_q:.2g}", fontsize=7)
        ax.tick_params(axis="y", labelsize=6)
    fig.tight_layout()
    caption = (f"Subject medians of the {len(rows)} features with the largest absolute "
               f"{EFFECT_NAMES[Effect(effect)]}, per class (number of subjects in brackets); one point per "
               "subject." + _level_remark(univariate))
    return figure_to_array(fig), caption
