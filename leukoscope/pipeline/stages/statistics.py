"""The ``statistics`` stage: the handcrafted features per subject, and ALL against HEM feature by feature.

Reads ``RUN/features/handcrafted.csv`` (and ``columns.csv`` for the features' descriptions and
units) and writes, with the qc rule ``compare.qc`` and ``features.statistics_bootstrap``
bootstrap replicates (docs/statistics.md)::

    RUN/features/subjects.csv     + subjects.columns.csv     one row per subject (subject_table)
    RUN/features/univariate.csv   + univariate.columns.csv   one row per feature (univariate_table)
    RUN/features/subjects.parquet, univariate.parquet        with features.format "parquet"
    RUN/features/effect_sizes.png, volcano.png, subject_boxplots.png
    RUN/features/statistics.json  settings, counts, figure captions (statistics_record)

The univariate table and its figures need ALL and HEM cells; without both (an unlabelled
dataset) only the subject table is written and ``statistics.json`` says why. Its settings are
``compare.qc``, ``features.statistics_bootstrap`` and ``run.seed``; with the stage graph's
freshness records, a new qc rule or new handcrafted features make the next command recompute it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from leukoscope.classifiers.errors import EvaluationError
from leukoscope.features.subjects import LABEL, feature_columns, subject_dictionary, subject_ids, subject_labels
from leukoscope.features.subjects import subject_table as make_subject_table
from leukoscope.features.univariate import NEGATIVE, POSITIVE, univariate_dictionary
from leukoscope.features.univariate import univariate_table as make_univariate_table
from leukoscope.pipeline.atomic import write_json, write_png
from leukoscope.pipeline.choices import TableFormat
from leukoscope.pipeline.config import Config
from leukoscope.pipeline.freshness import settings_of
from leukoscope.pipeline.layout import RunLayout, Stage
from leukoscope.pipeline.rundir import RunDir
from leukoscope.pipeline.stage import StageSpec
from leukoscope.pipeline.statistics_record import FIGURES, outputs, read_record
from leukoscope.pipeline.tables import read_features, write_table
from leukoscope.pipeline.univariate_figures import effect_size_figure, subject_boxplots, volcano_figure

log = logging.getLogger(__name__)

#: features in the ranked effect-size figure
TOP_EFFECTS = 30


def read_cells(layout: RunLayout) -> pd.DataFrame:
    """``handcrafted.csv``, checked: every subject has one label.

    Raises
    ------
    EvaluationError
        The file is missing, or a subject has cells with different labels.
    """
    path = layout.handcrafted_table
    if not path.exists():
        raise EvaluationError(
            f"features file '{path}' is missing after the features stage ran; the statistics summarise it: "
            f"check '{layout.rejected_path}' for rejected samples, or run 'leukoscope features' with the same "
            "--config and --out"
        )
    cells = read_features(path)
    labelled = cells[LABEL].isin(["ALL", "HEM"])
    if labelled.any():  # a field run mixes labelled and unlabelled cut-outs: only the labelled have a class
        cells = cells[labelled].reset_index(drop=True)
    try:
        subject_labels(subject_ids(cells), cells[LABEL].to_numpy(dtype=object))
    except ValueError as exc:
        raise EvaluationError(f"{path}: {exc}") from None
    return cells


def _write(frame: pd.DataFrame, path: Path, formats: list[TableFormat], dictionary: pd.DataFrame) -> None:
    for format in formats:
        write_table(frame, path, format=format, dictionary=dictionary)


def run_statistics(config: Config, run: RunDir, samples: pd.DataFrame, consumers: tuple = ()) -> None:
    """Write the subject and univariate tables, their figures and the record (module docstring)."""
    cells = read_cells(run)
    qc, n_boot = config.compare.qc, config.features.statistics_bootstrap
    formats = [TableFormat.CSV] + ([TableFormat.PARQUET] if config.features.format is TableFormat.PARQUET else [])
    for stale in [run.statistics_record, *outputs(run, TableFormat.PARQUET, univariate=True)]:
        stale.unlink(missing_ok=True)
    features = feature_columns(cells)
    columns = pd.read_csv(run.columns_table, dtype=str, keep_default_na=False) if run.columns_table.exists() else None
    subjects = make_subject_table(cells, features, qc=qc)
    _write(subjects, run.subjects_table, formats, subject_dictionary(features, qc=qc, columns=columns))
    counts = _class_counts(subjects, len(features))
    captions: dict[str, str] = {}
    skipped = ""
    if not (counts["subjects_all"] and counts["subjects_hem"]):
        skipped = (f"the cells need both labels {POSITIVE} and {NEGATIVE} (this run has {counts['subjects_all']} "
                   f"{POSITIVE} and {counts['subjects_hem']} {NEGATIVE} subjects)")
        log.warning("statistics: no univariate table: %s", skipped)
    else:
        log.info("statistics: %d features of %d ALL and %d HEM subjects, %d bootstrap replicates (the bootstrap's "
                 "time grows with subjects x replicates: lower features.statistics_bootstrap for thousands of "
                 "cells without subject ids)", len(features), counts["subjects_all"], counts["subjects_hem"], n_boot)
        with np.errstate(divide="ignore", invalid="ignore"):  # features the model cannot fit get NaN and a note
            univariate = make_univariate_table(cells, features, qc=qc, n_boot=n_boot, seed=config.run.seed)
        _write(univariate, run.univariate_table, formats, univariate_dictionary())
        made = {"effect_sizes": effect_size_figure(univariate, top=TOP_EFFECTS), "volcano": volcano_figure(univariate),
                "subject_boxplots": subject_boxplots(subjects, univariate)}
        for name in FIGURES:
            image, captions[name] = made[name]
            write_png(image, run.statistics_figure(name))
    record = {"qc": qc.value, "bootstrap": n_boot, "seed": config.run.seed, "format": config.features.format.value,
              "univariate": not skipped, "skipped": skipped, "counts": counts, "figures": captions}
    write_json(record, run.statistics_record)
    run.update_info(statistics={"univariate": not skipped, "skipped": skipped, "counts": counts, "qc": qc.value,
                                "bootstrap": n_boot})
    log.info("statistics: %d subjects x %d features in %s (qc rule '%s')%s", len(subjects), len(features),
             run.subjects_table.parent, qc.value, "; no univariate table" if skipped else "")


def _class_counts(subjects: pd.DataFrame, n_features: int) -> dict[str, int]:
    """Features, and subjects and cells (after the qc rule) of each class, for the record and the report."""
    per_class = subjects.groupby(LABEL)["n_cells"].agg(["size", "sum"])
    counts = {"features": n_features}
    for label, name in ((POSITIVE, "all"), (NEGATIVE, "hem")):
        size, cells = per_class.loc[label] if label in per_class.index else (0, 0)
        counts[f"subjects_{name}"], counts[f"cells_{name}"] = int(size), int(cells)
    return counts

STAGE = StageSpec(
    name=Stage.STATISTICS,
    run=run_statistics,
    needs=lambda config: (Stage.HANDCRAFTED,),
    active=lambda config: bool(config.features.families),
    done=lambda config, layout: read_record(layout, config.features.format) is not None,
    settings=settings_of("compare.qc", "features.statistics_bootstrap", "run.seed"),
)

__all__ = ["STAGE", "read_cells", "run_statistics"]
