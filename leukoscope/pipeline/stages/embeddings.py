"""The ``embeddings`` stage: frozen-CNN embeddings of every cell as CSV.

``run_embeddings(config, run, samples)`` writes, for each backbone in
``config.features.backbones``::

    RUN/features/cnn_<backbone>.csv   sample_id, subject, label, split, weights,
                                      cnn_<backbone>_0000 ... (global average pooling)
    RUN/features/cache/cnn_<backbone>-<settings>/<key>.npz   avg and max pooled, per sample
    RUN/features/cnn_<backbone>.parquet   with features.format "parquet": a typed (float32) copy
                                          (:mod:`leukoscope.pipeline.parquet_copies`)

The pooled features are streamed by :func:`leukoscope.pipeline.embedding_stream.iter_pooled`
(the segmentation masks zero the background when ``features.mask_background`` is set); the CSV
is written batch by batch, one batch behind the network.
"""

from __future__ import annotations

import io
import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa

from leukoscope.features.backbones import BackboneSpec
from leukoscope.pipeline.atomic import atomic_path
from leukoscope.pipeline.config import Config
from leukoscope.pipeline.embedding_stream import (
    EmbeddingJob,
    NetworkCache,
    check_backbones,
    embedding_job,
    iter_pooled,
    set_keras_threads,
)
from leukoscope.pipeline.freshness import settings_of
from leukoscope.pipeline.layout import META_COLUMNS, WEIGHTS_COLUMN, RunLayout, Stage, cnn_name
from leukoscope.pipeline.parquet_copies import embeddings_dictionary, sync_copy, written
from leukoscope.pipeline.rundir import RunDir
from leukoscope.pipeline.stage import StageSpec

log = logging.getLogger(__name__)


def embedding_columns(spec: BackboneSpec) -> list[str]:
    """``cnn_<backbone>_0000`` ... column names of one backbone's embeddings."""
    return [f"{cnn_name(spec.name.value)}_{i:04d}" for i in range(spec.embedding_size)]


def write_embeddings(job: EmbeddingJob, run: RunDir, samples: pd.DataFrame, *, quiet: bool = False,
                     networks: NetworkCache | None = None) -> dict[str, int]:
    """Stream one backbone's average-pooled embeddings into ``RUN/features/cnn_<backbone>.csv``.

    Rows are formatted and written by a background thread, one batch behind the network.
    ``networks`` as in :func:`iter_pooled`.

    Returns
    -------
    dict
        ``samples`` written, of which ``computed`` by the network and ``from_cache``.
    """
    run.stage_dir(Stage.EMBEDDINGS)
    target = run.embeddings_table(job.spec.name.value)
    columns = embedding_columns(job.spec)
    header = pd.DataFrame(columns=[*META_COLUMNS, WEIGHTS_COLUMN, *columns])
    counts, writing = {"samples": 0, "computed": 0, "from_cache": 0}, None
    with atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="leukoscope-csv") as writer:
        header.to_csv(fh, index=False, lineterminator="\n")
        for positions, pooled in iter_pooled(job, run, samples, quiet=quiet, networks=networks, counts=counts):
            meta = samples.iloc[positions][META_COLUMNS].assign(**{WEIGHTS_COLUMN: job.weights.label})
            if writing is not None:
                writing.result()  # one batch in flight: bounded memory, errors surface here
            writing = writer.submit(_append_rows, fh, meta, pooled["avg"])
            counts["samples"] += len(meta)
        if writing is not None:
            writing.result()
    return counts


def _append_rows(fh: io.TextIOBase, meta: pd.DataFrame, values: np.ndarray) -> None:
    fh.write(_csv_rows(meta, values))


def _csv_rows(meta: pd.DataFrame, values: np.ndarray) -> str:
    """CSV lines of text columns followed by float32 columns (``%.9g``: exact for float32).

    Formats the numbers with NumPy, several times faster than ``DataFrame.to_csv`` on wide
    tables, so writing stays a small part of the step.
    """
    text, numbers = io.StringIO(), io.StringIO()
    meta.to_csv(text, index=False, header=False, lineterminator="\n")
    np.savetxt(numbers, values, fmt="%.9g", delimiter=",")
    return "".join(f"{a},{b}\n" for a, b in zip(text.getvalue().splitlines(), numbers.getvalue().splitlines()))


def run_embeddings(config: Config, run: RunDir, samples: pd.DataFrame, consumers: tuple = ()) -> None:
    """Write ``RUN/features/cnn_<backbone>.csv`` for every backbone in ``config.features.backbones``.

    Parameters
    ----------
    config : Config
        ``features``: backbones, weights, input_size (0: each backbone's default), batch_size,
        mask_background, threads; ``run``: seed, quiet.
    run : RunDir
        Everything is written inside it; the weights used are recorded in run.json.
    samples : DataFrame
        The samples table (``sample_id, path, label, subject, split, sha256``).

    Raises
    ------
    WeightsUnavailableError
        ImageNet weights were asked for and cannot be had (the message names the file and
        where to put it).
    """
    set_keras_threads(config.features.threads)
    samples = samples.reset_index(drop=True)
    run.clear_rejected(Stage.EMBEDDINGS.value)
    for backbone in config.features.backbones:
        job = embedding_job(config, backbone, size=config.features.input_size,
                            mask_background=config.features.mask_background)
        run.update_info(weights={job.spec.name.value: job.weights.info()})
        counts = write_embeddings(job, run, samples, quiet=config.run.quiet)
        sync_copy(run.embeddings_table(backbone.value), config.features.format, float_type=pa.float32(),
                  dictionary=embeddings_dictionary(backbone.value, embedding_columns(job.spec)))
        run.update_info(features={cnn_name(job.spec.name.value): {**job.settings(), **counts}})
        log.info("%s: %d samples x %d columns (weights %s; %d from the cache) in %s", job.namespace,
                 counts["samples"], job.spec.embedding_size, job.weights.label, counts["from_cache"],
                 run.embeddings_table(job.spec.name.value))


def _done(config: Config, layout: RunLayout) -> bool:
    return written([layout.embeddings_table(b.value) for b in config.features.backbones], config.features.format)


STAGE = StageSpec(
    name=Stage.EMBEDDINGS,
    run=run_embeddings,
    needs=lambda config: (Stage.SEGMENTATION,) if config.features.mask_background else (),
    active=lambda config: bool(config.features.backbones),
    done=_done,
    settings=settings_of("features", "run.seed"),
    check=lambda config, samples: check_backbones(config.features.backbones, weights=config.features.weights),
)

__all__ = ["STAGE", "embedding_columns", "run_embeddings", "write_embeddings"]
