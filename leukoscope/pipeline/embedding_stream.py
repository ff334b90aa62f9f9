"""Frozen-CNN pooled features of every cell, streamed in batches with bounded memory and cached.

The machinery the embeddings and heads stages share. :func:`iter_pooled` reads each image, zeroes
its background with the segmentation mask when the job asks for it, pads it to a square, resizes
it to the backbone's input, preprocesses it with the backbone's own ``preprocess_input`` and runs
it through Keras' compiled inference step (``predict_on_batch``). A background thread prepares
the next batch while the current one runs and another writes the previous batch's cache entries,
so at most three batches are in memory whatever the dataset size. The cache folder is named by
everything that shapes the result (backbone, input size, weights, masking, Keras version,
backend and dtype policy), so a rerun computes only the samples without an entry and never
builds the network when every sample is cached.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leukoscope.features.backbones import BackboneSpec, get_backbone
from leukoscope.features.embeddings import POOLINGS, build_extractor, embed_batch, prepare_batch
from leukoscope.pipeline.cache import ResultCache
from leukoscope.pipeline.config import Config
from leukoscope.pipeline.console import Progress, import_keras
from leukoscope.pipeline.imageio import ImageReadError, MaskReadError, read_image, read_label_mask
from leukoscope.pipeline.layout import Stage, cache_key, cnn_name, missing_mask_reason, sha256_file
from leukoscope.pipeline.rundir import RunDir
from leukoscope.pipeline.weights import AUTO, RANDOM, ResolvedWeights, WeightsUnavailableError, resolve_weights

log = logging.getLogger(__name__)



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
        return cnn_name(self.spec.name.value) + ("_mirror" if self.mirror else "")

    def settings(self) -> dict[str, Any]:
        """Everything that changes the pooled features (names the cache folder)."""
        keras = import_keras()

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
    keras = import_keras()

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
    keras = import_keras()

    keras.utils.set_random_seed(job.seed)
    try:
        return job.spec.build(input_size=job.size, weights_path=job.weights.path)
    except ValueError as exc:  # a weights file of another network
        raise WeightsUnavailableError(str(exc)) from exc


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
    skipped: set[str] = set()
    if job.mask_background:
        rejected = run.read_rejected()
        skipped = set(rejected.loc[rejected["stage"] == Stage.SEGMENTATION.value, "path"])
    planned = _Planned({}, [])
    for position, sample in enumerate(samples.itertuples(index=False)):
        if sample.path in skipped:
            continue
        mask_path = run.mask_path(sample.sample_id) if job.mask_background else None
        if mask_path is not None and not mask_path.exists():
            rejects.append({"path": sample.path, "reason": missing_mask_reason(mask_path)})
            continue
        key = cache_key(sample.sha256 or sha256_file(sample.path), mask_path)
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
    cache = ResultCache(run.cache_root(Stage.EMBEDDINGS), job.namespace, job.settings())
    networks = NetworkCache() if networks is None else networks
    counts = {} if counts is None else counts
    counts.setdefault("computed", 0)
    counts.setdefault("from_cache", 0)
    rejects: list[dict[str, str]] = []
    extractor = None
    bar = Progress(len(samples), f"{job.namespace} embeddings", quiet=quiet)

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
            run.reject(rejects, stage=Stage.EMBEDDINGS.value)
            log.warning("%s: %d samples rejected; see %s", job.namespace, len(rejects), run.rejected_path)


def embedding_job(config: Config, backbone: str, *, size: int, mask_background: bool,
                  mirror: bool = False) -> EmbeddingJob:
    """The job of one backbone under ``config`` (weights resolved and recorded nowhere yet)."""
    spec = get_backbone(backbone)
    return EmbeddingJob(spec=spec, weights=resolve_weights(spec, config.features.weights),
                        size=spec.check_input_size(size), mask_background=mask_background, mirror=mirror,
                        batch_size=max(1, config.features.batch_size), seed=config.run.seed)


def check_backbones(backbones: tuple[Any, ...], *, weights: str) -> None:
    """Fail before any work when ``imagenet`` weights (or those of a folder) cannot be had
    (the config checked the names, the folder and the input sizes when it was loaded;
    ``auto`` and ``random`` always resolve).

    Raises
    ------
    WeightsUnavailableError
        The weights cannot be had; the message says where to put them.
    """
    if weights in (AUTO, RANDOM):
        return
    for backbone in backbones:
        resolve_weights(get_backbone(backbone), weights)


__all__ = ["EmbeddingJob", "check_backbones", "NetworkCache", "build_network", "embedding_job", "iter_pooled", "set_keras_threads"]
