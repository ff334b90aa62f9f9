"""The statistics stage's record, ``RUN/features/statistics.json``: what it was run with and wrote.

::

    {"settings": {"qc": "keep", "bootstrap": 2000, "seed": 0, "format": "csv",
                  "handcrafted_sha256": "...", "leukoscope": "0.1.0"},
     "univariate": true,          # false when the cells lack ALL or HEM labels
     "skipped": "",               # why there is no univariate table, when there is none
     "counts": {"features": 389, "subjects_all": 6, "subjects_hem": 6, "cells_all": 120, ...},
     "figures": {"effect_sizes": "caption", "volcano": "caption", "subject_boxplots": "caption"}}

The statistics are :func:`up_to_date` when the record's settings are those of the config and of
the ``handcrafted.csv`` now in the run directory, and every file it implies exists; the stage
graph reruns the stage otherwise, and the report shows only up-to-date statistics.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from leukoscope import __version__
from leukoscope.pipeline.choices import TableFormat
from leukoscope.pipeline.config import Config
from leukoscope.pipeline.layout import RunLayout, sha256_file
from leukoscope.pipeline.tables import dictionary_path, table_path

#: the figures of the univariate table, by name (``RUN/features/<name>.png``)
FIGURES = ("effect_sizes", "volcano", "subject_boxplots")


def settings(config: Config, layout: RunLayout) -> dict[str, Any] | None:
    """The settings the statistics of ``config`` are made with; None without a ``handcrafted.csv``."""
    if not layout.handcrafted_table.exists():
        return None
    return {"qc": config.compare.qc.value, "bootstrap": config.features.statistics_bootstrap,
            "seed": config.run.seed, "format": config.features.format.value,
            "handcrafted_sha256": sha256_file(layout.handcrafted_table), "leukoscope": __version__}


def outputs(layout: RunLayout, format: TableFormat | str, *, univariate: bool) -> list[Path]:
    """Every file the stage writes: the tables (CSV, their dictionaries, Parquet under ``parquet``)
    and, with the univariate table, its figures."""
    tables = [layout.subjects_table] + ([layout.univariate_table] if univariate else [])
    files = [f for t in tables for f in (t, dictionary_path(t))]
    if TableFormat(format) is TableFormat.PARQUET:
        files += [table_path(t, TableFormat.PARQUET) for t in tables]
    return files + ([layout.statistics_figure(name) for name in FIGURES] if univariate else [])


def read_record(layout: RunLayout) -> dict[str, Any] | None:
    """The record, or None when there is none (or a damaged one)."""
    try:
        return json.loads(layout.statistics_record.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def up_to_date(config: Config, layout: RunLayout) -> dict[str, Any] | None:
    """The record when the statistics in ``layout`` are those of ``config`` and complete, else None."""
    record = read_record(layout)
    if record is None or record.get("settings") != settings(config, layout):
        return None
    files = outputs(layout, config.features.format, univariate=bool(record.get("univariate")))
    return record if all(f.exists() for f in files) else None
