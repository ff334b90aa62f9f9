"""Frozen-CNN embeddings of every cell, streamed in batches with bounded memory and cached.

``run_embeddings(config, run, samples)`` writes, for each backbone in
``config.features.backbones``::

    RUN/features/cnn_<backbone>.csv   sample_id, subject, label, split, weights,
                                      cnn_<backbone>_0000 ... (global average pooling)
    RUN/features/cache/cnn_<backbone>-<settings>/<key>.npz   avg and max pooled, per sample

Each image is read, its background zeroed with the segmentation mask
``RUN/segmentation/masks/<sample_id>.png`` when ``features.mask_background`` is set, padded to
a square, resized to the backbone's input, preprocessed with the backbone's own
``preprocess_input`` and run through Keras' compiled inference step (``predict_on_batch``).
A background thread prepares the next batch while the current one runs and another writes the
previous batch's cache entries, so at most three batches are in memory whatever the dataset
size, and the CSV is written batch by batch. The
cache folder is named by everything that shapes the result (backbone, input size, weights,
masking, Keras version, backend and dtype policy), so a rerun computes only the samples without an entry and
never builds the network when every sample is cached.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from leukoscope.features.backbones import BackboneSpec, get_backbone
from leukoscope.features.embeddings import POOLINGS, build_extractor, embed_batch, prepare_batch
from leukoscope.pipeline.atomic import atomic_path
from leukoscope.pipeline.cache import ResultCache
from leukoscope.pipeline.config import Config
from leukoscope.pipeline.features import (
    META_COLUMNS,
    SEGMENTATION_STAGE,
    MaskReadError,
    read_label_mask,
)
from leukoscope.pipeline.imageio import ImageReadError, read_image
from leukoscope.pipeline.rundir import RunDir, sha256_file
from leukoscope.pipeline.weights import RANDOM, ResolvedWeights, resolve_weights

log = logging.getLogger(__name__)

STAGE = "embeddings"
FEATURES_STAGE = "features"
WEIGHTS_COLUMN = "weights"


@dataclass(frozen=True)
class EmbeddingJob:
    """What one pass of a backbone over the samples computes.

    Attributes
    ----------
    spec : BackboneSpec
    weights : ResolvedWeights
    size : int
        Side of the network input.
    mask_background : bool
        Zero the pixels outside the segmentation mask first.
    mirror : bool
        Embed the left-right mirrored images (the heads' flip augmentation).
    batch_size : int
    seed : int
        Seed of the random weights (ignored for weight files).
    """

    spec: BackboneSpec
    weights: ResolvedWeights
    size: int
    mask_background: bool
    mirror: bool
    batch_size: int
    seed: int

    @property
    def namespace(self) -> str:
        return f"cnn_{self.spec.name.value}" + ("_mirror" if self.mirror else "")

    def settings(self) -> dict[str, Any]:
        """Everything that changes the pooled features (names the cache folder)."""
        import keras

        return {
            "backbone": self.spec.name.value, "input_size": self.size, "weights": self.weights.label,
            "weights_sha256": self.weights.sha256, "mask_background": self.mask_background,
            "mirror": self.mirror, "keras": metadata.version("keras"), "backend": keras.backend.backend(),
            "dtype_policy": keras.config.dtype_policy().name,
            **({"seed": self.seed} if self.weights.label == RANDOM else {}),
        }


def set_keras_threads(threads: int) -> None:
    """Limit the CPU threads of one Keras operation (0 keeps the framework default: all cores).

    Only the TensorFlow and PyTorch backends can be limited from inside a running process; the
    setting must come before TensorFlow runs its first operation, and is otherwise ignored with
    a warning.
    """
    if threads <= 0:
        return
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError as exc:
            log.warning("features.threads = %d ignored: TensorFlow has started already (%s)", threads, exc)
    elif backend == "torch":
        import torch

        torch.set_num_threads(threads)
    else:
        log.warning("features.threads = %d ignored: the %s backend takes its thread count from the "
                    "environment (e.g. XLA_FLAGS) before it starts", threads, backend)


def build_network(job: EmbeddingJob) -> Any:
    """The backbone of ``job`` with its weights (seeded when random)."""
    import keras

    keras.utils.set_random_seed(job.seed)
    return job.spec.build(input_size=job.size, weights_path=job.weights.path)


class NetworkCache:
    """Each job's backbone and pooling extractor, built once and shared by its passes.

    The plain and the mirrored pass of a job use one network, and an extractor reused across
    calls keeps its compiled inference step (no second tracing).
    """

    def __init__(self) -> None:
        self._backbones: dict[EmbeddingJob, Any] = {}
        self._extractors: dict[EmbeddingJob, Any] = {}

    def backbone(self, job: EmbeddingJob) -> Any:
        """The backbone of ``job`` (built on first use)."""
        key = dataclasses.replace(job, mirror=False)
        if key not in self._backbones:
            self._backbones[key] = build_network(job)
        return self._backbones[key]

    def extractor(self, job: EmbeddingJob) -> Any:
        """The backbone of ``job`` with its average and max pooling (built on first use)."""
        key = dataclasses.replace(job, mirror=False)
        if key not in self._extractors:
            self._extractors[key] = build_extractor(self.backbone(job))
        return self._extractors[key]


def ensure_segmentation(config: Config, run: RunDir, samples: pd.DataFrame) -> None:
    """Run the segmentation stage when its masks are needed and ``segmentation.csv`` is missing."""
    if not (run.path / SEGMENTATION_STAGE / "segmentation.csv").exists():
        from leukoscope.pipeline.segment import run_segment

        run_segment(config, run, samples)


def _sample_key(sha256: str, path: str, mask_path: Path | None) -> str:
    image_sha = sha256 or sha256_file(path)
    if mask_path is None:
        return image_sha
    return hashlib.sha256(f"{image_sha}:{sha256_file(mask_path)}".encode()).hexdigest()


@dataclass
class _Planned:
    """One batch of samples: those found in the cache and those to compute."""

    hits: dict[int, dict[str, np.ndarray]]
    todo: list[tuple[int, str, Path | None, str]]  # position, image path, mask path, cache key

    def __len__(self) -> int:
        return len(self.hits) + len(self.todo)


def _load_batch(job: EmbeddingJob, todo: list[tuple[int, str, Path | None, str]]
                ) -> tuple[list[int], np.ndarray | None, list[dict[str, str]]]:
    """Read and prepare the images of one batch; unusable files become reject rows."""
    positions, images, masks, rejects = [], [], [], []
    for position, path, mask_path, _key in todo:
        try:
            image = read_image(path)
            mask = None if mask_path is None else read_label_mask(
                mask_path, image_shape=image.shape[:2], image_name=Path(path).name)
        except (ImageReadError, MaskReadError) as exc:
            rejects.append({"path": path, "reason": str(exc)})
            continue
        positions.append(position)
        images.append(image)
        masks.append(mask)
    if not images:
        return positions, None, rejects
    batch = prepare_batch(images, size=job.size, preprocess=job.spec.preprocess, masks=masks, mirror=job.mirror)
    return positions, batch, rejects


def _save_entries(cache: ResultCache, entries: list[tuple[str, dict[str, np.ndarray]]]) -> None:
    for key, arrays in entries:
        cache.save(key, arrays)


def _plan(job: EmbeddingJob, run: RunDir, samples: pd.DataFrame, cache: ResultCache,
          rejects: list[dict[str, str]]) -> Iterator[_Planned]:
    """Group the samples into batches, reading cache hits and skipping unusable samples."""
    masks = run.path / SEGMENTATION_STAGE / "masks"
    skipped: set[str] = set()
    if job.mask_background:
        rejected = run.read_rejected()
        skipped = set(rejected.loc[rejected["stage"] == SEGMENTATION_STAGE, "path"])
    planned = _Planned({}, [])
    for position, sample in enumerate(samples.itertuples(index=False)):
        if sample.path in skipped:
            continue
        mask_path = masks / f"{sample.sample_id}.png" if job.mask_background else None
        if mask_path is not None and not mask_path.exists():
            rejects.append({"path": sample.path, "reason": f"no segmentation mask '{mask_path.name}' in "
                            f"{masks}; rerun 'leukoscope segment'"})
            continue
        key = _sample_key(sample.sha256, sample.path, mask_path)
        entry = cache.load(key)
        if entry is not None and all(entry.get(p, np.empty(0)).shape == (job.spec.embedding_size,)
                                     for p in POOLINGS):
            planned.hits[position] = entry
        else:
            planned.todo.append((position, sample.path, mask_path, key))
        if len(planned) == job.batch_size:
            yield planned
            planned = _Planned({}, [])
    if len(planned):
        yield planned


def iter_pooled(job: EmbeddingJob, run: RunDir, samples: pd.DataFrame, *, quiet: bool = False,
                networks: NetworkCache | None = None, counts: dict[str, int] | None = None
                ) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """Pooled features of every usable sample, batch by batch, in sample order.

    Cached samples are read back; the others are computed while a background thread prepares
    the next batch, and cached by another thread. The network is built only when some sample is not cached.
    Unusable samples are sent to ``rejected.csv`` (stage ``embeddings``) with their reason;
    samples the segmentation stage rejected are skipped when masks are used.

    Parameters
    ----------
    job : EmbeddingJob
    run : RunDir
    samples : DataFrame
        The samples table (``sample_id, path, ..., sha256``).
    quiet : bool
        Hide the progress bar.
    networks : NetworkCache or None
        Where to take the network from (and keep it for later passes); a new cache by default.
    counts : dict or None
        If given, its ``"computed"`` and ``"from_cache"`` entries are increased by the number
        of samples the network embedded and read back from the cache.

    Yields
    ------
    positions : (n,) int ndarray
        Row positions (``iloc``) into ``samples`` of the batch's usable samples.
    pooled : dict of str to (n, C) float32 ndarray
        ``"avg"`` and ``"max"`` pooled last feature maps.
    """
    cache = ResultCache(run.stage_dir(FEATURES_STAGE) / "cache", job.namespace, job.settings())
    networks = NetworkCache() if networks is None else networks
    counts = {} if counts is None else counts
    counts.setdefault("computed", 0)
    counts.setdefault("from_cache", 0)
    rejects: list[dict[str, str]] = []
    extractor = None
    bar = tqdm(total=len(samples), desc=f"{job.namespace} embeddings", disable=quiet, unit="img",
               dynamic_ncols=True)

    saving = None  # the previous batch's cache writes, in the saver thread

    def complete(planned: _Planned, loading: Any, saver: ThreadPoolExecutor
                 ) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        nonlocal extractor, saving
        merged = dict(planned.hits)
        counts["from_cache"] += len(planned.hits)
        if loading is not None:
            positions, batch, bad = loading.result()
            rejects.extend(bad)
            if batch is not None:
                if extractor is None:
                    extractor = networks.extractor(job)
                pooled = embed_batch(extractor, batch, pad_to=job.batch_size)
                counts["computed"] += len(positions)
                keys = {position: key for position, _path, _mask, key in planned.todo}
                entries = []
                for i, position in enumerate(positions):
                    merged[position] = {p: pooled[p][i] for p in POOLINGS}
                    entries.append((keys[position], merged[position]))
                if saving is not None:
                    saving.result()
                saving = saver.submit(_save_entries, cache, entries)
        bar.update(len(planned))
        if merged:
            order = np.array(sorted(merged), dtype=np.intp)
            yield order, {p: np.stack([merged[i][p] for i in order]).astype(np.float32) for p in POOLINGS}

    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="leukoscope-load") as loader, \
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="leukoscope-save") as saver:
            previous = None
            for planned in _plan(job, run, samples, cache, rejects):
                loading = loader.submit(_load_batch, job, planned.todo) if planned.todo else None
                if previous is not None:
                    yield from complete(*previous, saver)
                previous = (planned, loading)
            if previous is not None:
                yield from complete(*previous, saver)
            if saving is not None:
                saving.result()
    finally:
        bar.close()
        if rejects:
            run.reject(rejects, stage=STAGE)
            log.warning("%s: %d samples rejected; see %s", job.namespace, len(rejects), run.rejected_path)


def embedding_job(config: Config, backbone: str, *, size: int, mask_background: bool,
                  mirror: bool = False) -> EmbeddingJob:
    """The job of one backbone under ``config`` (weights resolved and recorded nowhere yet)."""
    spec = get_backbone(backbone)
    return EmbeddingJob(spec=spec, weights=resolve_weights(spec, config.features.weights),
                        size=spec.check_input_size(size), mask_background=mask_background, mirror=mirror,
                        batch_size=max(1, config.features.batch_size), seed=config.run.seed)


def embedding_columns(spec: BackboneSpec) -> list[str]:
    """``cnn_<backbone>_0000`` ... column names of one backbone's embeddings."""
    return [f"cnn_{spec.name.value}_{i:04d}" for i in range(spec.embedding_size)]


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
    target = run.stage_dir(FEATURES_STAGE) / f"cnn_{job.spec.name.value}.csv"
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


def run_embeddings(config: Config, run: RunDir, samples: pd.DataFrame) -> None:
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
    if config.features.mask_background:
        ensure_segmentation(config, run, samples)
    run.clear_rejected(STAGE)
    for backbone in config.features.backbones:
        job = embedding_job(config, backbone, size=config.features.input_size,
                            mask_background=config.features.mask_background)
        run.update_info(weights={job.spec.name.value: job.weights.info()})
        counts = write_embeddings(job, run, samples, quiet=config.run.quiet)
        run.update_info(features={f"cnn_{job.spec.name.value}": {**job.settings(), **counts}})
        log.info("%s: %d samples x %d columns (weights %s; %d from the cache) in %s", job.namespace,
                 counts["samples"], job.spec.embedding_size, job.weights.label, counts["from_cache"],
                 run.path / FEATURES_STAGE / f"cnn_{job.spec.name.value}.csv")


__all__ = [
    "EmbeddingJob",
    "NetworkCache",
    "build_network",
    "embedding_columns",
    "embedding_job",
    "ensure_segmentation",
    "iter_pooled",
    "run_embeddings",
    "set_keras_threads",
    "write_embeddings",
]
