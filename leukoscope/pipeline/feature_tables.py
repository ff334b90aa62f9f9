"""Reading a run's feature tables into feature sets, whole (compare, train) or streamed (predict).

The compare and train stages build the configured feature sets (handcrafted, ``cnn_<backbone>``,
``hybrid_<backbone>``) from the same tables in the same row order, so a model trained by
``leukoscope train`` sees exactly the rows ``compare`` trained on. The predict stage streams
the tables a model needs chunk by chunk, joined on ``sample_id``, so memory stays flat whatever
the number of cells.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from leukoscope.classifiers.choices import FeatureSetKind
from leukoscope.classifiers.featuresets import ID_COLUMNS, FeatureSet, hybrid_set, single_set
from leukoscope.pipeline.config import Config
from leukoscope.pipeline.layout import QC_COLUMN, WEIGHTS_COLUMN, RunLayout, cnn_name
from leukoscope.pipeline.tables import read_features

#: the text columns of a features table (everything else is a number)
TEXT_COLUMNS = (*ID_COLUMNS, WEIGHTS_COLUMN, QC_COLUMN)
CHUNK_ROWS = 1024
FEATURE_SET_COLUMNS = ["feature_set", "weights", "n_features", "n_labelled", "n_missing", "n_dropped",
                       "n_imputed", "pca_components"]


def wanted_backbones(config: Config) -> list[str]:
    """The backbones whose embeddings the configured feature sets use (cnn and hybrid sets)."""
    kinds = set(config.compare.feature_sets)
    if kinds & {FeatureSetKind.CNN, FeatureSetKind.HYBRID}:
        return [b.value for b in config.features.backbones]
    return []


def wanted_heads(config: Config) -> list[str]:
    """The backbones whose fine-tuned heads the configured feature sets use (``head``)."""
    if FeatureSetKind.HEAD not in config.compare.feature_sets:
        return []
    return [b.value for b in config.heads.backbones]


def needs_handcrafted(config: Config) -> bool:
    """Whether a configured feature set uses the handcrafted features (handcrafted and hybrid)."""
    return bool(set(config.compare.feature_sets) & {FeatureSetKind.HANDCRAFTED, FeatureSetKind.HYBRID})


def _text_dtypes() -> dict[str, type]:
    return dict.fromkeys(TEXT_COLUMNS, str)


def _fill_text(table: pd.DataFrame) -> pd.DataFrame:
    present = [c for c in TEXT_COLUMNS if c in table.columns]
    table[present] = table[present].fillna("")
    return table


def table_columns(path: Path) -> list[str]:
    """The feature columns of a features CSV, in order, read from its header alone."""
    header = pd.read_csv(path, nrows=0).columns
    return [c for c in header if c not in TEXT_COLUMNS]


def build_feature_sets(config: Config, layout: RunLayout,
                       labelled_ids: set[str]) -> tuple[list[FeatureSet], pd.DataFrame]:
    """The configured feature sets, restricted to the labelled samples, and their row counts.

    Returns
    -------
    sets : list of FeatureSet
        ``handcrafted``, then ``cnn_<backbone>`` and ``hybrid_<backbone>`` per backbone, as
        ``compare.feature_sets`` asks.
    counts : DataFrame
        Per set: ``feature_set, weights, n_features, n_labelled, n_missing, n_dropped,
        n_imputed, pca_components``.
    """
    kinds = set(config.compare.feature_sets)

    def restricted(path: Path) -> pd.DataFrame:
        table = read_features(path)
        return table[table["sample_id"].isin(labelled_ids)].reset_index(drop=True)

    hand = restricted(layout.handcrafted_table) if needs_handcrafted(config) else None
    sets = []
    if FeatureSetKind.HANDCRAFTED in kinds:
        sets.append(single_set("handcrafted", hand, source=str(layout.handcrafted_table)))
    for backbone in wanted_backbones(config):
        path = layout.embeddings_table(backbone)
        emb = restricted(path)
        if FeatureSetKind.CNN in kinds:
            sets.append(single_set(cnn_name(backbone), emb, source=str(path)))
        if FeatureSetKind.HYBRID in kinds:
            sets.append(hybrid_set(backbone, hand, emb, sources=(str(layout.handcrafted_table), str(path))))
    counts = pd.DataFrame(
        [
            {
                "feature_set": fs.name,
                "weights": fs.weights,
                "n_features": len(fs.columns),
                "n_labelled": len(labelled_ids),
                "n_missing": len(labelled_ids) - len(fs.sample_ids) - fs.n_dropped,
                "n_dropped": fs.n_dropped,
                "n_imputed": fs.n_imputed,
                "pca_components": min(config.compare.hybrid_pca, len(fs.pca_columns)),
            }
            for fs in sets
        ],
        columns=FEATURE_SET_COLUMNS,
    )
    return sets, counts


def iter_joined(paths: list[Path], columns: list[list[str]], order: dict[str, int], *,
                chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """Stream the rows present in every table, joined on ``sample_id``, in sample order.

    Every table lists its samples in the order of ``order`` (as the features stages write
    them), so the join needs only the rows around the current chunk in memory. Rows of
    samples missing from ``order`` are skipped.

    Parameters
    ----------
    paths : list of Path
        The features CSVs (one or two: handcrafted, and a backbone's embeddings).
    columns : list of list of str
        The feature columns to keep from each table (the first also keeps ``qc_flag``).
    order : dict of str to int
        ``sample_id`` -> position in the samples table.
    chunk_rows : int
        Rows read from the first table at a time.

    Yields
    ------
    DataFrame
        ``sample_id``, the first table's ``qc_flag`` (when it has one), then every table's
        columns in the order given; at most ``chunk_rows`` rows.
    """
    def reader(path: Path, keep: list[str], extra: tuple[str, ...]) -> Iterator[pd.DataFrame]:
        present = set(pd.read_csv(path, nrows=0).columns)
        usecols = ["sample_id", *(c for c in extra if c in present), *keep]
        for chunk in pd.read_csv(path, dtype=_text_dtypes(), usecols=usecols, chunksize=chunk_rows):
            yield _fill_text(chunk)[usecols]

    def position(table: pd.DataFrame) -> np.ndarray:
        return table["sample_id"].map(order).to_numpy(dtype=float)

    others = [reader(p, c, ()) for p, c in zip(paths[1:], columns[1:])]
    buffers = [pd.DataFrame(columns=["sample_id", *c]) for c in columns[1:]]
    for chunk in reader(paths[0], columns[0], (QC_COLUMN,)):
        chunk = chunk[chunk["sample_id"].isin(order)]  # rows of samples not in this run
        last = np.nanmax(position(chunk), initial=-1.0)
        for i, source in enumerate(others):
            while len(buffers[i]) == 0 or np.nanmax(position(buffers[i]), initial=-1.0) < last:
                more = next(source, None)
                if more is None:
                    break
                buffers[i] = more if len(buffers[i]) == 0 else pd.concat([buffers[i], more], ignore_index=True)
            chunk = chunk.merge(buffers[i], on="sample_id", how="inner")
            buffers[i] = buffers[i][position(buffers[i]) > last].reset_index(drop=True)
        yield chunk


__all__ = ["CHUNK_ROWS", "FEATURE_SET_COLUMNS", "TEXT_COLUMNS", "build_feature_sets", "iter_joined",
           "needs_handcrafted", "table_columns", "wanted_backbones", "wanted_heads"]
