"""The statistics stage's record, ``RUN/features/statistics.json``: what it was run with and wrote.

::

    {"qc": "keep", "bootstrap": 2000, "seed": 0, "format": "csv",
     "univariate": true,          # false when the cells lack ALL or HEM labels
     "skipped": "",               # why there is no univariate table, when there is none
     "counts": {"features": 389, "subjects_all": 6, "subjects_hem": 6, "cells_all": 120, "cells_hem": 120},
     "figures": {"effect_sizes": "caption", "volcano": "caption", "subject_boxplots": "caption"}}

The stage graph's own record (:mod:`leukoscope.pipeline.freshness`) says whether the statistics
were computed from the current ``handcrafted.csv`` and settings; this one says what the report
shows: the settings in words, the counts and the figures' captions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from leukoscope.pipeline.choices import TableFormat
from leukoscope.pipeline.layout import RunLayout
from leukoscope.pipeline.tables import dictionary_path, table_path

#: the figures of the univariate table, by name (``RUN/features/<name>.png``)
FIGURES = ("effect_sizes", "volcano", "subject_boxplots")


def outputs(layout: RunLayout, format: TableFormat | str, *, univariate: bool) -> list[Path]:
    """Every file the stage writes: the tables (CSV, their dictionaries, Parquet under ``parquet``)
    and, with the univariate table, its figures."""
    tables = [layout.subjects_table] + ([layout.univariate_table] if univariate else [])
    files = [f for t in tables for f in (t, dictionary_path(t))]
    if TableFormat(format) is TableFormat.PARQUET:
        files += [table_path(t, TableFormat.PARQUET) for t in tables]
    return files + ([layout.statistics_figure(name) for name in FIGURES] if univariate else [])


def read_record(layout: RunLayout, format: TableFormat | str = TableFormat.CSV) -> dict[str, Any] | None:
    """The record when it and every file it implies under ``format`` exist, else None."""
    try:
        record = json.loads(layout.statistics_record.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    files = outputs(layout, format, univariate=bool(record.get("univariate")))
    return record if all(f.exists() for f in files) else None
