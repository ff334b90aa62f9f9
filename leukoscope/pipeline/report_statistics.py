"""The report's section on the handcrafted features, feature by feature (docs/statistics.md).

:func:`statistics_blocks` turns the univariate table and the figures of the statistics stage into
report blocks (:class:`leukoscope.pipeline.report_html.Block`): what was tested and how, the
features sorted by the mixed model's q value, and the ranked effect sizes, the volcano plot and
the subject-median box plots. Its p values are those of tests with the subject as the unit (the
Mann-Whitney test of subject medians and the random-intercept model); a test over cells, which
counts a patient's cells as independent, is never shown. :func:`statistics_section` reads them
from a run directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from leukoscope.features.choices import QcRule
from leukoscope.features.univariate import CELL_LEVEL_NOTE, Level
from leukoscope.pipeline.layout import RunLayout
from leukoscope.pipeline.report_html import Block
from leukoscope.pipeline.statistics_record import read_record
from leukoscope.pipeline.tables import read_table

#: features shown in the report's table
TOP = 20
ALPHA = 0.05
#: what the columns of :func:`top_features` mean (merged into the report's glossary)
GLOSSARY = {
    "feature": "handcrafted feature (docs/features.md); tests with the subject as the unit (docs/statistics.md)",
    "subjects ALL / HEM": "subjects of each class with a value of the feature",
    "cells ALL / HEM": "cells of each class with a value of the feature, after the qc rule",
    "Cliff's delta [CI]": "P(ALL > HEM) - P(ALL < HEM) over the subject medians, in [-1, 1], with its 95 % "
                          "bootstrap interval (subjects resampled within each class)",
    "Hedges' g [CI]": "difference of the mean subject medians over their pooled SD, small-sample corrected, with "
                      "its 95 % bootstrap interval",
    "MW p": "two-sided Mann-Whitney test of the subject medians",
    "MW q": "Benjamini-Hochberg q value of MW p over all features",
    "mixed estimate (SE)": "ALL - HEM difference of the random-intercept model feature ~ label + (1 | subject) on "
                           "the cells, in the feature's unit, and its standard error",
    "mixed p": "two-sided p of the mixed-model difference (t with n_subjects - 2 degrees of freedom)",
    "mixed q": "Benjamini-Hochberg q value of mixed p over all features",
    "ICC": "intra-class correlation: the share of the feature's variance between subjects",
    "note": "why a value is missing or weaker than it looks",
}
QC_MEANINGS = {
    QcRule.KEEP: "cells with a qc_flag are kept; only their undefined values are skipped",
    QcRule.DROP_FLAGGED: "cells with a qc_flag are left out",
}


def _g(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.3g}"


def _interval(value: float, low: float, high: float) -> str:
    return f"{_g(value)} [{_g(low)}, {_g(high)}]"


def top_features(univariate: pd.DataFrame, top: int = TOP) -> pd.DataFrame:
    """The ``top`` features by mixed-model q (then p, then larger absolute Cliff's delta), as shown.

    Parameters
    ----------
    univariate : pandas.DataFrame
        :func:`leukoscope.features.univariate.univariate_table`.

    Returns
    -------
    pandas.DataFrame
        One row per feature, every value a formatted string; a ``note`` column only when a
        shown feature has a note other than the cell-level one (stated once above the table).
    """
    ranked = univariate.assign(_size=-univariate["cliffs_delta"].abs())
    ranked = ranked.sort_values(["mixed_q", "mixed_p", "_size"], na_position="last", kind="stable").head(top)
    shown = pd.DataFrame({
        "feature": ranked["feature"],
        "subjects ALL / HEM": [f"{a} / {h}" for a, h in zip(ranked["n_subjects_all"], ranked["n_subjects_hem"])],
        "cells ALL / HEM": [f"{a} / {h}" for a, h in zip(ranked["n_cells_all"], ranked["n_cells_hem"])],
        "Cliff's delta [CI]": [_interval(*v) for v in ranked[["cliffs_delta", "cliffs_delta_low",
                                                               "cliffs_delta_high"]].to_numpy()],
        "Hedges' g [CI]": [_interval(*v) for v in ranked[["hedges_g", "hedges_g_low", "hedges_g_high"]].to_numpy()],
        "MW p": ranked["mw_p"].map(_g), "MW q": ranked["mw_q"].map(_g),
        "mixed estimate (SE)": [f"{_g(e)} ({_g(s)})" for e, s in zip(ranked["mixed_estimate"], ranked["mixed_se"])],
        "mixed p": ranked["mixed_p"].map(_g), "mixed q": ranked["mixed_q"].map(_g),
        "ICC": ranked["mixed_icc"].map(_g),
    })
    notes = [n.replace(CELL_LEVEL_NOTE, "").strip("; ") for n in ranked["note"].fillna("")]
    if any(notes):
        shown["note"] = notes
    return shown.reset_index(drop=True)


def statistics_blocks(
    univariate: pd.DataFrame | None, *, qc: QcRule | str, n_boot: int, counts: dict[str, int],
    figures: dict[str, str], files: str, skipped: str = "", top: int = TOP,
) -> list[Block]:
    """The report section on the features, one by one.

    Parameters
    ----------
    univariate : pandas.DataFrame or None
        :func:`leukoscope.features.univariate.univariate_table`; None when it could not be made
        (``skipped`` says why).
    qc : QcRule
        The rule the tables were made with.
    n_boot : int
        Bootstrap replicates of the intervals.
    counts : dict
        ``subjects_all``, ``subjects_hem``, ``cells_all``, ``cells_hem`` (after the qc rule).
    figures : dict
        Image path relative to the report -> caption, in display order.
    files : str
        Where the full tables are, as the reader should be told.
    skipped : str
        Why there is no univariate table.
    top : int
        Features in the table.
    """
    qc = QcRule(qc)
    blocks = [Block("h2", "Handcrafted features one by one: ALL against HEM")]
    if univariate is None:
        return blocks + [Block("p", f"No univariate statistics: {skipped}. {files}")]
    n = len(univariate)
    found = {name: int((univariate[f"{name}_q"] < ALPHA).sum()) for name in ("mixed", "mw")}
    blocks += [
        Block("p", f"Every handcrafted feature compared between {counts['subjects_all']} ALL and "
                   f"{counts['subjects_hem']} HEM subjects ({counts['cells_all']} and {counts['cells_hem']} "
                   f"cells), with the subject (patient) as the unit: Cliff's delta and Hedges' g of the subject "
                   f"medians with 95 % percentile bootstrap intervals ({n_boot} replicates, subjects resampled "
                   "within each class); the Mann-Whitney test of the subject medians (MW); the random-intercept "
                   "model feature ~ label + (1 | subject) on the cells (REML; p from t with n_subjects - 2 "
                   "degrees of freedom; ICC: between-subject share of the variance); q: Benjamini-Hochberg over "
                   f"all {n} features. No test over cells is reported: it counts a patient's cells as "
                   "independent and gives p values far too small when a few subjects contribute most cells. "
                   f"QC rule '{qc.value}': {QC_MEANINGS[qc]}."),
        Block("p", f"{found['mixed']} of {n} features have mixed-model q < {ALPHA}, {found['mw']} Mann-Whitney "
                   f"q < {ALPHA}. The {min(top, n)} with the smallest mixed-model q are below; {files}"),
    ]
    if (univariate["level"] == Level.CELL.value).any():
        blocks.append(Block("p", f"Warning: {CELL_LEVEL_NOTE}."))
    blocks.append(Block("table", table=top_features(univariate, top)))
    return blocks + [Block("img", path, caption=caption) for path, caption in figures.items()]


def statistics_section(layout: RunLayout, report_folder: Path) -> list[Block]:
    """:func:`statistics_blocks` of the statistics in ``layout`` (none when they are missing), with
    paths relative to ``report_folder``. The compare stage calls it when it needs the statistics
    stage, so the stage graph has made them fresh."""
    record = read_record(layout)
    if record is None:
        return []

    def relative(path: Path) -> str:
        return Path(os.path.relpath(path, report_folder)).as_posix()

    tables = [f"{relative(layout.univariate_table)} (one row per feature)"] if record["univariate"] else []
    tables.append(f"{relative(layout.subjects_table)} (median and IQR of every feature per subject)")
    files = f"full tables: {' and '.join(tables)}, each with its data dictionary (.columns.csv)."
    univariate = read_table(layout.univariate_table) if record["univariate"] else None
    figures = {relative(layout.statistics_figure(name)): caption for name, caption in record["figures"].items()}
    return statistics_blocks(univariate, qc=record["qc"], n_boot=record["bootstrap"], counts=record["counts"],
                             figures=figures, files=files, skipped=record["skipped"])
