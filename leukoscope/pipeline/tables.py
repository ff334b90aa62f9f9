"""Write and read result tables as CSV or Parquet, each with its data dictionary.

:func:`write_table` writes atomically (:func:`leukoscope.pipeline.atomic.atomic_path`):

- ``csv``: ``<stem>.csv`` with floats in their shortest exact form (they read back bit for bit)
  and the data dictionary beside it as ``<stem>.columns.csv``;
- ``parquet``: ``<stem>.parquet`` with typed columns (pyarrow; zstd compression, floats
  byte-stream-split) and the data dictionary as JSON records in the file's key-value metadata
  under :data:`DICTIONARY_KEY`
  (``json.loads(pyarrow.parquet.read_schema(path).metadata[b"leukoscope.dictionary"])``).

Both record each column's dtype in the dictionary (column ``dtype``), so :func:`read_table`
gives back the same dtypes and values from either format.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from leukoscope import __version__
from leukoscope.pipeline.atomic import atomic_path

DICTIONARY_KEY = b"leukoscope.dictionary"
VERSION_KEY = b"leukoscope.version"
DICTIONARY_SUFFIX = ".columns.csv"


class TableFormat(str, Enum):
    """File format of a written table."""

    CSV = "csv"
    PARQUET = "parquet"


def table_path(path: str | Path, format: TableFormat | str) -> Path:
    """``path`` with the suffix of ``format`` (``.csv`` or ``.parquet``) in place of its own."""
    return Path(path).with_suffix(f".{TableFormat(format).value}")


def dictionary_path(path: str | Path) -> Path:
    """Where the data dictionary of the CSV table ``path`` is written: ``<stem>.columns.csv``."""
    path = Path(path)
    return path.with_name(path.stem + DICTIONARY_SUFFIX)


def _with_dtypes(frame: pd.DataFrame, dictionary: pd.DataFrame | None) -> pd.DataFrame:
    """The dictionary checked against the frame's columns, in their order, with a ``dtype`` column."""
    if dictionary is None:
        dictionary = pd.DataFrame({"name": frame.columns})
    if "name" not in dictionary.columns:
        raise ValueError(f"a data dictionary needs a 'name' column; got columns {list(dictionary.columns)}")
    names = list(dictionary["name"])
    missing = [c for c in frame.columns if c not in names]
    unknown = [n for n in names if n not in frame.columns]
    if missing or unknown:
        raise ValueError(f"the data dictionary does not match the table: columns without an entry {missing[:5]}, "
                         f"entries without a column {unknown[:5]}; describe exactly the table's columns")
    out = dictionary.drop(columns="dtype", errors="ignore").set_index("name").loc[list(frame.columns)].reset_index()
    out["dtype"] = [str(frame[c].dtype) for c in frame.columns]
    return out.fillna("")


def write_table(
    frame: pd.DataFrame,
    path: str | Path,
    *,
    format: TableFormat | str = TableFormat.CSV,
    dictionary: pd.DataFrame | None = None,
) -> Path:
    """Atomically write ``frame`` (without its index) and its data dictionary.

    Parameters
    ----------
    frame : pandas.DataFrame
        Columns of numeric, bool or string dtypes.
    path : str or Path
        Target; its suffix is replaced by the format's (``subjects`` -> ``subjects.parquet``).
    format : TableFormat
        ``csv`` or ``parquet``.
    dictionary : pandas.DataFrame, optional
        One row per column of ``frame``: ``name`` and any of ``description``, ``unit``...
        (e.g. :func:`leukoscope.features.subjects.subject_dictionary`).

    Returns
    -------
    Path
        The table's path.

    Raises
    ------
    ValueError
        The dictionary does not name exactly the table's columns.
    """
    target = table_path(path, format)
    described = _with_dtypes(frame, dictionary)
    frame = frame.reset_index(drop=True)
    if TableFormat(format) is TableFormat.CSV:
        with atomic_path(target) as tmp:
            frame.to_csv(tmp, index=False, float_format=None, lineterminator="\n")
        with atomic_path(dictionary_path(target)) as tmp:
            described.to_csv(tmp, index=False, lineterminator="\n")
        return target
    table = pa.Table.from_pandas(frame, preserve_index=False)
    floats = [f.name for f in table.schema if pa.types.is_floating(f.type)]
    metadata = {**(table.schema.metadata or {}),  # the pandas metadata restores the dtypes
                DICTIONARY_KEY: described.to_json(orient="records").encode(), VERSION_KEY: __version__.encode()}
    # without the serialised Arrow schema, which would hold all the metadata a second time
    options = {"compression": "zstd", "use_byte_stream_split": floats or False, "store_schema": False,
               "use_dictionary": [f.name for f in table.schema if f.name not in floats]}
    with atomic_path(target) as tmp, pq.ParquetWriter(tmp, table.schema, **options) as writer:
        writer.write_table(table)
        writer.add_key_value_metadata(metadata)
    return target


def read_dictionary(path: str | Path) -> pd.DataFrame | None:
    """The data dictionary of a table written by :func:`write_table`; None if it has none."""
    path = Path(path)
    if path.suffix == ".parquet":
        raw = (pq.read_schema(path).metadata or {}).get(DICTIONARY_KEY)
        return None if raw is None else pd.DataFrame(json.loads(raw)).astype(str)
    sidecar = dictionary_path(path)
    return pd.read_csv(sidecar, dtype=str, keep_default_na=False) if sidecar.exists() else None


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a table written by :func:`write_table` with the dtypes it was written with.

    A CSV without its ``.columns.csv`` is read with pandas' type inference.
    """
    path = Path(path)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    dictionary = read_dictionary(path)
    if dictionary is None:
        return pd.read_csv(path)
    dtypes = dict(zip(dictionary["name"], dictionary["dtype"]))
    numeric = [name for name, dtype in dtypes.items() if pd.api.types.pandas_dtype(dtype).kind in "fiub"]
    return pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values={name: [""] for name in numeric})
