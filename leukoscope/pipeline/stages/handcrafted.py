"""The ``handcrafted`` stage: handcrafted features of every segmented cell.

Reads each image and its label mask ``RUN/segmentation/masks/<sample_id>.png``, computes the
configured families (:mod:`leukoscope.features.registry`) in parallel with bounded memory,
and writes::

    RUN/features/handcrafted.csv   sample_id, subject, label, split, <features>, qc_flag
    RUN/features/columns.csv       name, family, region, description, unit
    RUN/features/surround.csv      sample_id, subject, label, split, surround_* (the colour outside
                                   the cell, for compare's confound check; not a feature family)
    RUN/features/handcrafted.parquet   with features.format "parquet": a typed copy with its data
                                       dictionary (:mod:`leukoscope.pipeline.parquet_copies`)
    RUN/features/cache/handcrafted-<settings>/<key>.npz   one entry per finished sample

When the segmentation runs in the same command, its workers measure each cell while it is in
memory (:class:`MeasureCell`, fused by :mod:`leukoscope.pipeline.graph`), cache the rows and send
them back, and this stage only writes them. The cache key of a sample is the SHA-256 of its image's and its
mask's SHA-256 (:func:`~leukoscope.pipeline.layout.cache_key`), and the cache folder is named by
the feature settings, so a run killed half way recomputes only the samples without an entry, a
rerun with nothing changed computes nothing, and the final CSV is the same whatever the
interruption, job count, backend or fusion. Floats are written in their shortest exact form, so
the CSV reads back bit for bit, as float columns.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from leukoscope import __version__
from leukoscope.features.choices import Family
from leukoscope.features.registry import (
    compute_features,
    data_dictionary,
    feature_names,
    resolve_families,
)
from leukoscope.features.surround import SURROUND_COLUMNS, surround_features
from leukoscope.pipeline.atomic import atomic_path, remove_leftovers, write_csv
from leukoscope.pipeline.cache import ResultCache
from leukoscope.pipeline.config import Config
from leukoscope.pipeline.freshness import settings_of
from leukoscope.pipeline.imageio import ImageReadError, MaskReadError, read_image, read_label_mask
from leukoscope.pipeline.layout import (
    META_COLUMNS,
    QC_COLUMN,
    RunLayout,
    Stage,
    cache_key,
    missing_mask_reason,
    sha256_file,
)
from leukoscope.pipeline.parallel import parallel_map
from leukoscope.pipeline.parquet_copies import handcrafted_dictionary, sync_copy, written
from leukoscope.pipeline.rundir import RunDir
from leukoscope.pipeline.stage import StageSpec

log = logging.getLogger(__name__)

CHUNK_ROWS = 256


class _Task(NamedTuple):
    sample_id: str
    path: str
    mask_path: str
    key: str


class _Outcome(NamedTuple):
    values: np.ndarray | None
    surround: np.ndarray | None
    qc_flag: str
    error: str


def _measure(image: np.ndarray, labels: np.ndarray, *, families: tuple[Family, ...], names: list[str],
             distance: int, levels: int) -> _Outcome:
    result = compute_features(image, labels, families=families, haralick_distance=distance, haralick_levels=levels)
    values = np.array([result.values[name] for name in names], dtype=np.float64)
    surround = np.array(list(surround_features(image, labels).values()), dtype=np.float64)
    return _Outcome(values, surround, result.qc_flag, "")


def _entry(outcome: _Outcome) -> dict[str, np.ndarray]:
    """The cache entry of a measured sample."""
    return {"values": outcome.values, "surround": outcome.surround, "qc_flag": np.array(outcome.qc_flag)}


def measure_sample(task: _Task, *, families: tuple[Family, ...], names: list[str], distance: int,
                   levels: int) -> _Outcome:
    """Features of one sample (runs in a worker); unusable files give an error, not an exception."""
    try:
        image = read_image(task.path)
        labels = read_label_mask(task.mask_path, image_shape=image.shape[:2], image_name=Path(task.path).name)
    except (ImageReadError, MaskReadError) as exc:
        return _Outcome(None, None, "", str(exc))
    return _measure(image, labels, families=families, names=names, distance=distance, levels=levels)


def _cached(cache: ResultCache, key: str, n_values: int) -> tuple[np.ndarray, np.ndarray, str] | None:
    entry = cache.load(key)
    if (entry is None or entry.get("values", np.empty(0)).shape != (n_values,) or "qc_flag" not in entry
            or entry.get("surround", np.empty(0)).shape != (len(SURROUND_COLUMNS),)):
        return None
    return entry["values"], entry["surround"], str(entry["qc_flag"])


class _Planned(NamedTuple):
    meta: tuple[str, ...]  # META_COLUMNS of the sample
    task: _Task
    cached: bool
    fused: _Outcome | None = None  # measured by a segmentation worker in this command


class _Row(NamedTuple):
    meta: tuple[str, ...]
    values: np.ndarray
    surround: np.ndarray
    qc_flag: str
    computed: bool


def _plan(samples: pd.DataFrame, run: RunDir, cache: ResultCache,
          fused: dict[str, tuple[str, _Outcome]]) -> tuple[list[_Planned], list[dict[str, str]]]:
    """Which samples have a mask, and whether their features were measured by the segmentation
    workers (``fused``: sample id -> cache key and outcome) or are cached; the others rejected.

    A sample the segmentation stage rejected without writing a mask is left out silently (its
    reason is in rejected.csv already); one it rejected for another reason (e.g. an unusable
    expert mask) but segmented still gets its features.
    """
    rejected = run.read_rejected()
    failed_segmentation = set(rejected.loc[rejected["stage"] == Stage.SEGMENTATION.value, "path"])
    plan, rejects = [], []
    for sample in samples.itertuples(index=False):
        mask_path = run.mask_path(sample.sample_id)
        if not mask_path.exists():
            if sample.path in failed_segmentation:
                continue  # already in rejected.csv with the segmentation's reason
            rejects.append({"path": sample.path, "reason": missing_mask_reason(mask_path)})
            continue
        meta = tuple(getattr(sample, c) for c in META_COLUMNS)
        if sample.sample_id in fused:
            key, outcome = fused[sample.sample_id]
            plan.append(_Planned(meta, _Task(sample.sample_id, sample.path, str(mask_path), key), True, outcome))
            continue
        key = cache_key(sample.sha256 or sha256_file(sample.path), mask_path)
        task = _Task(sample.sample_id, sample.path, str(mask_path), key)
        plan.append(_Planned(meta, task, key in cache))
    return plan, rejects


def _rows(plan: list[_Planned], outcomes: Iterator[_Outcome], worker: Callable[[_Task], _Outcome],
          cache: ResultCache, n_values: int, rejects: list[dict[str, str]]) -> Iterator[_Row]:
    """The rows in sample order: cached ones read back, the others taken from the workers."""
    for item in plan:
        if item.fused is not None:  # measured and cached by a segmentation worker
            yield _Row(item.meta, item.fused.values, item.fused.surround, item.fused.qc_flag, computed=True)
            continue
        if item.cached:
            hit = _cached(cache, item.task.key, n_values)
            if hit is not None:
                yield _Row(item.meta, *hit, computed=False)
                continue
            outcome = worker(item.task)  # the entry vanished or was damaged since planning
        else:
            outcome = next(outcomes)  # pending tasks come back in plan order
        if outcome.error:
            rejects.append({"path": item.task.path, "reason": outcome.error})
            continue
        cache.save(item.task.key, _entry(outcome))
        yield _Row(item.meta, outcome.values, outcome.surround, outcome.qc_flag, computed=True)


def _write_rows(rows: Iterator[_Row], names: list[str], layout: RunLayout) -> dict[str, int]:
    """Stream the rows into handcrafted.csv and surround.csv, :data:`CHUNK_ROWS` at a time; return the counts.

    surround.csv is renamed into place first, so a run killed between the two renames has no
    handcrafted.csv and reruns the stage.
    """
    counts = {"samples": 0, "computed": 0, "flagged": 0}
    hand_columns, surround_columns = [*META_COLUMNS, *names, QC_COLUMN], [*META_COLUMNS, *SURROUND_COLUMNS]
    with (atomic_path(layout.handcrafted_table) as hand_tmp, atomic_path(layout.surround_table) as surround_tmp,
          open(hand_tmp, "w", encoding="utf-8", newline="") as hand,
          open(surround_tmp, "w", encoding="utf-8", newline="") as surround):
        header = True
        while chunk := list(itertools.islice(rows, CHUNK_ROWS)):
            meta = pd.DataFrame([row.meta for row in chunk], columns=META_COLUMNS)
            frames = {
                hand: pd.concat([meta, pd.DataFrame(np.stack([row.values for row in chunk]), columns=names),
                                 pd.DataFrame({QC_COLUMN: [row.qc_flag for row in chunk]})], axis=1),
                surround: pd.concat([meta, pd.DataFrame(np.stack([row.surround for row in chunk]),
                                                        columns=SURROUND_COLUMNS)], axis=1),
            }
            for handle, frame in frames.items():
                frame.to_csv(handle, header=header, index=False, float_format=None, lineterminator="\n")
            header = False
            counts["samples"] += len(chunk)
            counts["computed"] += sum(row.computed for row in chunk)
            counts["flagged"] += sum(bool(row.qc_flag) for row in chunk)
        if header:  # no rows: the headers alone
            for handle, columns in ((hand, hand_columns), (surround, surround_columns)):
                pd.DataFrame(columns=columns).to_csv(handle, index=False, lineterminator="\n")
    return counts


def _cache(config: Config, layout: RunLayout) -> ResultCache:
    """The handcrafted cache of ``config``'s feature settings."""
    settings = config.features
    families = resolve_families(settings.families)
    return ResultCache(layout.cache_root(Stage.HANDCRAFTED), "handcrafted", {
        "families": [f.value for f in families],
        "haralick_distance": settings.haralick_distance,
        "haralick_levels": settings.haralick_levels,
        "columns": hashlib.sha256(",".join(feature_names(families)).encode()).hexdigest()[:16],
        "leukoscope": __version__,
    })


class MeasureCell:
    """The handcrafted stage's per-cell work, done in a segmentation worker (a
    :class:`~leukoscope.pipeline.stage.CellConsumer`): measure the cell, cache its row and send it
    back, so that :func:`run_handcrafted` writes it without reading the cache again.

    The main process keeps at most :attr:`limit` rows (3.2 KB each with every family: 64 MB for
    20,000 cells); the rows of the cells after that are read back from the cache.
    """

    limit = 20_000

    def __init__(self, config: Config, layout: RunLayout) -> None:
        settings = config.features
        self.families = resolve_families(settings.families)
        self.names = feature_names(self.families)
        self.distance, self.levels = settings.haralick_distance, settings.haralick_levels
        self.cache = _cache(config, layout)
        self.rows: dict[str, tuple[str, _Outcome]] = {}  # filled in the main process by collect()

    def __call__(self, image: np.ndarray, labels: np.ndarray, image_sha256: str,
                 mask_sha256: str) -> tuple[str, _Outcome] | None:
        key = cache_key(image_sha256, mask_sha256=mask_sha256)
        if key in self.cache:
            return None  # the stage reads it from the cache
        outcome = _measure(image, labels, families=self.families, names=self.names, distance=self.distance,
                           levels=self.levels)
        self.cache.save(key, _entry(outcome))
        return key, outcome

    def __getstate__(self) -> dict:
        """What a worker gets: everything but the collected rows (sent with every batch of tasks)."""
        return {**self.__dict__, "rows": {}}

    def collect(self, sample_id: str, result: tuple[str, _Outcome] | None) -> None:
        """Keep what a worker measured for ``sample_id`` (main process)."""
        if result is not None and len(self.rows) < self.limit:
            self.rows[sample_id] = result


def run_handcrafted(config: Config, run: RunDir, samples: pd.DataFrame, consumers: tuple = ()) -> None:
    """Compute the handcrafted families of every segmented sample and write the CSVs.

    ``consumers`` holds this stage's :class:`MeasureCell` when it was fused into the
    segmentation of the same command: its rows are written as they are, without a read.

    Rows stream from the workers (or the cache) into ``handcrafted.csv`` in sample order,
    :data:`CHUNK_ROWS` at a time, so memory stays flat whatever the number of samples.
    """
    settings = config.features
    families = resolve_families(settings.families)
    names = feature_names(families)
    out = run.stage_dir(Stage.HANDCRAFTED)
    remove_leftovers(out)  # of a run killed half way: its caches are whole
    cache = _cache(config, run)
    run.clear_rejected(Stage.HANDCRAFTED.value)
    fused = next((c.rows for c in consumers if isinstance(c, MeasureCell)), {})
    plan, rejects = _plan(samples, run, cache, fused)
    worker = functools.partial(measure_sample, families=families, names=names,
                               distance=settings.haralick_distance, levels=settings.haralick_levels)
    pending = [item.task for item in plan if not item.cached]
    outcomes = iter(parallel_map(worker, pending, jobs=config.run.jobs, backend=config.run.backend,
                                 scheduler=config.run.scheduler, desc="handcrafted features",
                                 quiet=config.run.quiet))
    counts = _write_rows(_rows(plan, outcomes, worker, cache, len(names), rejects), names, run)
    dictionary = data_dictionary(families)
    write_csv(dictionary, run.columns_table)
    sync_copy(run.handcrafted_table, settings.format, dictionary=handcrafted_dictionary(dictionary))
    if rejects:
        run.reject(rejects, stage=Stage.HANDCRAFTED.value)
        log.warning("%d samples rejected by the features stage; see %s", len(rejects), run.rejected_path)
    run.update_info(features={"handcrafted": {
        **cache.settings, **counts, "from_cache": counts["samples"] - counts["computed"], "rejected": len(rejects),
    }})
    log.info("handcrafted features: %d samples x %d columns (%d from the cache) in %s",
             counts["samples"], len(names), counts["samples"] - counts["computed"], run.handcrafted_table)


STAGE = StageSpec(
    name=Stage.HANDCRAFTED,
    run=run_handcrafted,
    needs=lambda config: (Stage.SEGMENTATION,),
    active=lambda config: bool(config.features.families),
    done=lambda config, layout: (written([layout.handcrafted_table], config.features.format)
                                 and layout.surround_table.exists()),
    settings=settings_of("features.families", "features.haralick_distance", "features.haralick_levels"),
    consumer=MeasureCell,
)
