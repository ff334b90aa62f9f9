"""String enums for the pipeline choices exposed in the config and the CLI."""

from __future__ import annotations

from enum import Enum


class DatasetKind(str, Enum):
    """Dataset layouts that :mod:`leukoscope.pipeline.datasets` can read."""

    AUTO = "auto"
    CNMC = "cnmc"
    ALLIDB2 = "allidb2"
    FOLDER = "folder"
    MANIFEST = "manifest"


class Backend(str, Enum):
    """joblib backend the per-image work runs on."""

    LOKY = "loky"
    THREADING = "threading"
    DASK = "dask"


class TableFormat(str, Enum):
    """File format of a written table (:mod:`leukoscope.pipeline.tables`)."""

    CSV = "csv"
    PARQUET = "parquet"
