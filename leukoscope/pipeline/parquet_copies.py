"""Parquet copies of the per-cell features CSVs (``features.format = "parquet"``).

The CSVs stay the contract: the compare stage reads them, and they are written row block by row
block as the cells are measured. With ``format = "parquet"`` each features stage then streams its
CSV into a typed copy beside it (:func:`leukoscope.pipeline.tables.csv_to_parquet`, one block
of rows in memory at a time), with its data dictionary in the file's metadata::

    RUN/features/handcrafted.parquet      ids and qc_flag as strings, features float64
    RUN/features/cnn_<backbone>.parquet   ids and weights as strings, embeddings float32
                                          (the precision the network computes them in)

With ``format = "csv"`` a copy left by an earlier run is removed, so a Parquet file beside a CSV
always holds that CSV's rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa

from leukoscope.pipeline.choices import TableFormat
from leukoscope.pipeline.layout import META_COLUMNS, QC_COLUMN, WEIGHTS_COLUMN
from leukoscope.pipeline.tables import FLOAT64, csv_to_parquet, table_path

#: name -> description of the columns every features table starts with, and of its last text column
TEXT_DESCRIPTIONS = {
    "sample_id": "the cell's id, unique in the run (manifest.csv)",
    "subject": "subject (patient) id; empty where the dataset names none",
    "label": "diagnosis: ALL (blast), HEM (normal) or empty (unknown)",
    "split": "the dataset's own split of the cell (C-NMC: fold_0..2, prelim_test, final_test); may be empty",
    WEIGHTS_COLUMN: "CNN weights the embedding was computed with: imagenet, random, or a weights folder",
    QC_COLUMN: "family:region:reason for every region where a feature is undefined (NaN); empty when none",
}


def _text_rows(names: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({"name": list(names), "description": [TEXT_DESCRIPTIONS[n] for n in names], "unit": ""})


def handcrafted_dictionary(columns: pd.DataFrame) -> pd.DataFrame:
    """The data dictionary of ``handcrafted.csv``: its text columns and the features' ``columns.csv``.

    Parameters
    ----------
    columns : pandas.DataFrame
        :func:`leukoscope.features.registry.data_dictionary` of the run's families
        (``name, family, region, description, unit``).
    """
    rows = pd.concat([_text_rows(META_COLUMNS), columns, _text_rows([QC_COLUMN])], ignore_index=True)
    return rows[list(columns.columns)].fillna("")


def embeddings_dictionary(backbone: str, columns: Sequence[str]) -> pd.DataFrame:
    """The data dictionary of ``cnn_<backbone>.csv`` with embedding columns ``columns``."""
    values = pd.DataFrame({
        "name": list(columns),
        "description": [f"{backbone} embedding, dimension {k}: global average pooling of the last convolutional "
                        "feature map" for k in range(len(columns))],
        "unit": "1",
    })
    return pd.concat([_text_rows([*META_COLUMNS, WEIGHTS_COLUMN]), values], ignore_index=True)


def sync_copy(
    path: Path, format: TableFormat | str, *, dictionary: pd.DataFrame, float_type: pa.DataType = FLOAT64
) -> Path | None:
    """Write the Parquet copy of the CSV ``path`` under ``parquet``; remove a stale one under ``csv``.

    Returns
    -------
    Path or None
        The copy, or None under ``csv``.
    """
    if TableFormat(format) is TableFormat.PARQUET:
        return csv_to_parquet(path, dictionary=dictionary, float_type=float_type)
    table_path(path, TableFormat.PARQUET).unlink(missing_ok=True)
    return None


def written(paths: Iterable[Path], format: TableFormat | str) -> bool:
    """Whether every CSV of ``paths`` exists, with its Parquet copy under ``parquet``."""
    parquet = TableFormat(format) is TableFormat.PARQUET
    return all(p.exists() and (not parquet or table_path(p, TableFormat.PARQUET).exists()) for p in paths)
