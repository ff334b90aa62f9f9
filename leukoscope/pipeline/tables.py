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

The features stages stream their per-cell CSVs row block by row block and keep them as they are
(the CSV is what the compare stage reads, :func:`read_features`); :func:`csv_to_parquet` gives
a CSV a typed Parquet copy beside it the same way, one block of rows in memory at a time.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Collection
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from leukoscope import __version__
from leukoscope.classifiers.featuresets import NON_FEATURE_COLUMNS
from leukoscope.pipeline.atomic import atomic_path
from leukoscope.pipeline.choices import TableFormat

DICTIONARY_KEY = b"leukoscope.dictionary"
VERSION_KEY = b"leukoscope.version"
DICTIONARY_SUFFIX = ".columns.csv"
#: bytes of CSV text :func:`csv_to_parquet` converts at a time (one Parquet row group each)
BLOCK_BYTES = 32 << 20
FLOAT64 = pa.float64()


def table_path(path: str | Path, format: TableFormat | str) -> Path:
    """``path`` with the suffix of ``format`` (``.csv`` or ``.parquet``) in place of its own."""
    return Path(path).with_suffix(f".{TableFormat(format).value}")


def dictionary_path(path: str | Path) -> Path:
    """Where the data dictionary of the CSV table ``path`` is written: ``<stem>.columns.csv``."""
    path = Path(path)
    return path.with_name(path.stem + DICTIONARY_SUFFIX)


def _with_dtypes(columns: list[str], dtypes: list[str], dictionary: pd.DataFrame | None) -> pd.DataFrame:
    """The dictionary checked against the table's columns, in their order, with a ``dtype`` column."""
    if dictionary is None:
        dictionary = pd.DataFrame({"name": columns})
    if "name" not in dictionary.columns:
        raise ValueError(f"a data dictionary needs a 'name' column; got columns {list(dictionary.columns)}")
    names = list(dictionary["name"])
    missing = [c for c in columns if c not in names]
    unknown = [n for n in names if n not in columns]
    if missing or unknown:
        raise ValueError(f"the data dictionary does not match the table: columns without an entry {missing[:5]}, "
                         f"entries without a column {unknown[:5]}; describe exactly the table's columns")
    out = dictionary.drop(columns="dtype", errors="ignore").set_index("name").loc[columns].reset_index()
    out["dtype"] = dtypes
    return out.fillna("")


def _parquet_writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    """A writer with zstd compression, byte-stream-split floats and dictionary-encoded other columns."""
    floats = [f.name for f in schema if pa.types.is_floating(f.type)]
    # store_schema False: the serialised Arrow schema would hold all the metadata a second time
    return pq.ParquetWriter(path, schema, compression="zstd", use_byte_stream_split=floats or False,
                            store_schema=False, use_dictionary=[f.name for f in schema if f.name not in floats])


def _metadata(schema: pa.Schema, described: pd.DataFrame) -> dict[bytes, bytes]:
    """The file's key-value metadata: the schema's own (pandas' dtypes), the dictionary, the version."""
    return {**(schema.metadata or {}), DICTIONARY_KEY: described.to_json(orient="records").encode(),
            VERSION_KEY: __version__.encode()}


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
    described = _with_dtypes(list(frame.columns), [str(frame[c].dtype) for c in frame.columns], dictionary)
    frame = frame.reset_index(drop=True)
    if TableFormat(format) is TableFormat.CSV:
        with atomic_path(target) as tmp:
            frame.to_csv(tmp, index=False, float_format=None, lineterminator="\n")
        with atomic_path(dictionary_path(target)) as tmp:
            described.to_csv(tmp, index=False, lineterminator="\n")
        return target
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with atomic_path(target) as tmp, _parquet_writer(tmp, table.schema) as writer:
        writer.write_table(table)
        writer.add_key_value_metadata(_metadata(table.schema, described))
    return target


def csv_to_parquet(
    path: str | Path,
    *,
    text_columns: Collection[str] = NON_FEATURE_COLUMNS,
    float_type: pa.DataType = FLOAT64,
    dictionary: pd.DataFrame | None = None,
    block_bytes: int = BLOCK_BYTES,
) -> Path:
    """Atomically write a typed Parquet copy of a CSV beside it, ``block_bytes`` of CSV at a time.

    The CSV is never read whole: each block of whole lines is parsed by pyarrow, written as a row
    group and dropped, so memory stays near one block whatever the table's size
    (``bench/features_tables.py``). pyarrow's own streaming reader is not used: it reads ahead
    as far as it can while the parsing lags, which held most of a 357 MB CSV in memory.

    Parameters
    ----------
    path : str or Path
        A CSV with a header row and no line break inside a field, as the features stages write
        (``handcrafted.csv``, ``cnn_<backbone>.csv``).
    text_columns : collection of str
        Columns kept as strings, empty fields as ``""`` (ids, labels, ``qc_flag``); every other
        column is a number of ``float_type``, empty fields NaN.
    float_type : pyarrow.DataType
        ``pa.float64()``, or ``pa.float32()`` for values computed in float32 (the CNN
        embeddings: their 9 significant digits parse back to the same float32).
    dictionary : pandas.DataFrame, optional
        The data dictionary (``name``, ``description``, ``unit``...), stored in the file's metadata
        as by :func:`write_table`.
    block_bytes : int
        CSV bytes parsed at a time (then up to the end of the line).

    Returns
    -------
    Path
        ``<stem>.parquet`` beside the CSV.

    Raises
    ------
    ValueError
        The dictionary does not name exactly the CSV's columns.
    pyarrow.ArrowInvalid
        A row with another number of fields than the header, or a number column holding text.
    """
    path = Path(path)
    with open(path, "rb") as handle:
        header = next(csv.reader([handle.readline().decode("utf-8")]), [])
        schema = pa.schema([(name, pa.string() if name in text_columns else float_type) for name in header])
        dtypes = [str(dtype) for dtype in schema.empty_table().to_pandas().dtypes]  # what pandas.read_parquet gives
        described = _with_dtypes(header, dtypes, dictionary)
        options = (pacsv.ReadOptions(column_names=header),
                   pacsv.ConvertOptions(column_types=dict(zip(schema.names, schema.types)), strings_can_be_null=False))
        target = table_path(path, TableFormat.PARQUET)
        with atomic_path(target) as tmp, _parquet_writer(tmp, schema) as writer:
            while block := handle.read(block_bytes):
                block += handle.readline()  # to the end of the last line
                writer.write_table(pacsv.read_csv(pa.py_buffer(block), read_options=options[0],
                                                  convert_options=options[1]))
            writer.add_key_value_metadata(_metadata(schema, described))
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


def read_features(path: str | Path) -> pd.DataFrame:
    """A features CSV (``handcrafted.csv``, ``cnn_<backbone>.csv``) with its id, label, weights and
    ``qc_flag`` columns as str, as written (``""`` when empty, ``"NA"`` stays ``"NA"``), and the rest
    as float64 (NaN when empty)."""
    header = pd.read_csv(path, nrows=0).columns
    numbers = [name for name in header if name not in NON_FEATURE_COLUMNS]
    return pd.read_csv(path, dtype={name: str if name in NON_FEATURE_COLUMNS else "float64" for name in header},
                       keep_default_na=False, na_values={name: [""] for name in numbers})
