"""String enums for the pipeline choices exposed in the config and the CLI."""

from __future__ import annotations

from enum import Enum


class DatasetKind(str, Enum):
    """Dataset layouts: single cells (:mod:`leukoscope.pipeline.datasets`) or whole fields (:data:`FIELD_KINDS`)."""

    AUTO = "auto"
    CNMC = "cnmc"
    ALLIDB2 = "allidb2"
    FOLDER = "folder"
    MANIFEST = "manifest"
    ALLIDB1 = "allidb1"
    VOC = "voc"
    FIELDS = "fields"


#: layouts of whole smear fields: the field step (:mod:`leukoscope.pipeline.fields_run`) cuts their
#: white cells out before any stage runs (ALL-IDB1 with blast centroids, Pascal-VOC boxes, a plain folder)
FIELD_KINDS = frozenset({DatasetKind.ALLIDB1, DatasetKind.VOC, DatasetKind.FIELDS})


class Backend(str, Enum):
    """joblib backend the per-image work runs on."""

    LOKY = "loky"
    THREADING = "threading"
    DASK = "dask"


class TableFormat(str, Enum):
    """File format of a written table (:mod:`leukoscope.pipeline.tables`)."""

    CSV = "csv"
    PARQUET = "parquet"
