"""The ``features`` stage: handcrafted features of every segmented cell, then CNN embeddings.

Reads each image and its label mask ``RUN/segmentation/masks/<sample_id>.png`` (running the
segmentation stage first when ``RUN/segmentation/segmentation.csv`` is missing), computes the
configured families (:mod:`leukoscope.features.registry`) in parallel with bounded memory,
and writes::

    RUN/features/handcrafted.csv   sample_id, subject, label, split, <features>, qc_flag
    RUN/features/columns.csv       name, family, region, description, unit
    RUN/features/cache/handcrafted-<settings>/<key>.npz   one entry per finished sample

The cache key of a sample is the SHA-256 of its image's and its mask's SHA-256, and the
cache folder is named by the feature settings, so a run killed half way recomputes only the
samples without an entry, a rerun with nothing changed computes nothing, and the final CSV is
the same whatever the interruption, job count or backend. Floats are written in their
shortest exact form, so the CSV reads back bit for bit, as float columns.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import pandas as pd

from leukoscope import __version__
from leukoscope.features.choices import Family
from leukoscope.features.registry import (
    check_options,
    compute_features,
    data_dictionary,
    feature_names,
    resolve_families,
)
from leukoscope.features.regions import NUCLEUS
from leukoscope.pipeline.atomic import atomic_path, remove_leftovers, write_csv
from leukoscope.pipeline.cache import ResultCache
from leukoscope.pipeline.config import Config
from leukoscope.pipeline.imageio import ImageReadError, read_image
from leukoscope.pipeline.parallel import parallel_map
from leukoscope.pipeline.rundir import RunDir, sha256_file

log = logging.getLogger(__name__)

STAGE = "features"
SEGMENTATION_STAGE = "segmentation"
META_COLUMNS = ["sample_id", "subject", "label", "split"]
QC_COLUMN = "qc_flag"
CHUNK_ROWS = 256


class MaskReadError(ValueError):
    """A segmentation mask cannot be used with its image; the message says why."""


class _Task(NamedTuple):
    sample_id: str
    path: str
    mask_path: str
    key: str


class _Outcome(NamedTuple):
    values: np.ndarray | None
    qc_flag: str
    error: str


def read_label_mask(path: str | Path, *, image_shape: tuple[int, int], image_name: str) -> np.ndarray:
    """Read a label mask PNG written by the segmentation stage and check it against its image.

    Parameters
    ----------
    path : str or Path
        One-channel uint8 PNG: 0 background, 1 cytoplasm, 2 nucleus.
    image_shape : (int, int)
        Height and width of the image the mask belongs to.
    image_name : str
        File name of that image, for the error message.

    Returns
    -------
    labels : (H, W) uint8 ndarray

    Raises
    ------
    MaskReadError
        The file is missing or unreadable, not one 8-bit channel, of another size than its
        image, or holds values other than 0, 1 and 2.
    """
    path = Path(path)
    labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if labels is None:
        raise MaskReadError(f"mask '{path.name}' cannot be read as an image; rerun 'leukoscope segment'")
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise MaskReadError(f"mask '{path.name}' must be one 8-bit channel of labels 0/1/2, "
                            f"got shape {labels.shape} {labels.dtype}; rerun 'leukoscope segment'")
    if labels.shape != tuple(image_shape):
        raise MaskReadError(f"mask '{path.name}' is {labels.shape[0]}x{labels.shape[1]} but its image "
                            f"'{image_name}' is {image_shape[0]}x{image_shape[1]}")
    if labels.max(initial=0) > NUCLEUS:
        bad = sorted(int(v) for v in np.unique(labels[labels > NUCLEUS]))[:5]
        raise MaskReadError(f"mask '{path.name}' holds label values {bad}; expected 0 (background), "
                            "1 (cytoplasm) and 2 (nucleus)")
    return labels


def measure_sample(task: _Task, *, families: tuple[Family, ...], distance: int, levels: int) -> _Outcome:
    """Features of one sample (runs in a worker); unusable files give an error, not an exception."""
    try:
        image = read_image(task.path)
        labels = read_label_mask(task.mask_path, image_shape=image.shape[:2], image_name=Path(task.path).name)
    except (ImageReadError, MaskReadError) as exc:
        return _Outcome(None, "", str(exc))
    result = compute_features(image, labels, families=families,
                              haralick_distance=distance, haralick_levels=levels)
    values = np.array([result.values[name] for name in feature_names(families)], dtype=np.float64)
    return _Outcome(values, result.qc_flag, "")


def _cache_key(image_sha: str, mask_path: Path) -> str:
    return hashlib.sha256(f"{image_sha}:{sha256_file(mask_path)}".encode()).hexdigest()


def _cached(cache: ResultCache, key: str, n_values: int) -> tuple[np.ndarray, str] | None:
    entry = cache.load(key)
    if entry is None or entry.get("values", np.empty(0)).shape != (n_values,) or "qc_flag" not in entry:
        return None
    return entry["values"], str(entry["qc_flag"])


class _Planned(NamedTuple):
    meta: tuple[str, ...]  # META_COLUMNS of the sample
    task: _Task
    cached: bool


class _Row(NamedTuple):
    meta: tuple[str, ...]
    values: np.ndarray
    qc_flag: str
    computed: bool


def _plan(samples: pd.DataFrame, run: RunDir, cache: ResultCache) -> tuple[list[_Planned], list[dict[str, str]]]:
    """Which samples have a mask, and whether their features are cached; the others rejected.

    A sample the segmentation stage rejected without writing a mask is left out silently (its
    reason is in rejected.csv already); one it rejected for another reason (e.g. an unusable
    expert mask) but segmented still gets its features.
    """
    masks = run.path / SEGMENTATION_STAGE / "masks"
    rejected = run.read_rejected()
    failed_segmentation = set(rejected.loc[rejected["stage"] == SEGMENTATION_STAGE, "path"])
    plan, rejects = [], []
    for sample in samples.itertuples(index=False):
        mask_path = masks / f"{sample.sample_id}.png"
        if not mask_path.exists():
            if sample.path in failed_segmentation:
                continue  # already in rejected.csv with the segmentation's reason
            rejects.append({"path": sample.path, "reason": f"no segmentation mask '{mask_path.name}' in "
                            f"{masks}; rerun 'leukoscope segment'"})
            continue
        key = _cache_key(sample.sha256 or sha256_file(sample.path), mask_path)
        task = _Task(sample.sample_id, sample.path, str(mask_path), key)
        plan.append(_Planned(tuple(getattr(sample, c) for c in META_COLUMNS), task, key in cache))
    return plan, rejects


def _rows(plan: list[_Planned], outcomes: Iterator[_Outcome], worker: Callable[[_Task], _Outcome],
          cache: ResultCache, n_values: int, rejects: list[dict[str, str]]) -> Iterator[_Row]:
    """The rows in sample order: cached ones read back, the others taken from the workers."""
    for item in plan:
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
        cache.save(item.task.key, {"values": outcome.values, "qc_flag": np.array(outcome.qc_flag)})
        yield _Row(item.meta, outcome.values, outcome.qc_flag, computed=True)


def _write_rows(rows: Iterator[_Row], names: list[str], target: Path) -> dict[str, int]:
    """Stream the rows into the CSV, :data:`CHUNK_ROWS` at a time; return the counts."""
    counts = {"samples": 0, "computed": 0, "flagged": 0}
    with atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8", newline="") as handle:
        header = True
        while chunk := list(itertools.islice(rows, CHUNK_ROWS)):
            frame = pd.concat([
                pd.DataFrame([row.meta for row in chunk], columns=META_COLUMNS),
                pd.DataFrame(np.stack([row.values for row in chunk]), columns=names),
                pd.DataFrame({QC_COLUMN: [row.qc_flag for row in chunk]}),
            ], axis=1)
            frame.to_csv(handle, header=header, index=False, float_format=None, lineterminator="\n")
            header = False
            counts["samples"] += len(chunk)
            counts["computed"] += sum(row.computed for row in chunk)
            counts["flagged"] += sum(bool(row.qc_flag) for row in chunk)
        if header:  # no rows: the header alone
            pd.DataFrame(columns=[*META_COLUMNS, *names, QC_COLUMN]).to_csv(handle, index=False, lineterminator="\n")
    return counts


def run_handcrafted(config: Config, run: RunDir, samples: pd.DataFrame) -> None:
    """Compute the handcrafted families of every segmented sample and write the CSVs.

    Rows stream from the workers (or the cache) into ``handcrafted.csv`` in sample order,
    :data:`CHUNK_ROWS` at a time, so memory stays flat whatever the number of samples.
    """
    settings = config.features
    families = resolve_families(settings.families)
    check_options(haralick_distance=settings.haralick_distance, haralick_levels=settings.haralick_levels)
    names = feature_names(families)
    out = run.stage_dir(STAGE)
    cache = ResultCache(out / "cache", "handcrafted", {
        "families": [f.value for f in families],
        "haralick_distance": settings.haralick_distance,
        "haralick_levels": settings.haralick_levels,
        "columns": hashlib.sha256(",".join(names).encode()).hexdigest()[:16],
        "leukoscope": __version__,
    })
    run.clear_rejected(STAGE)
    plan, rejects = _plan(samples, run, cache)
    worker = functools.partial(measure_sample, families=families, distance=settings.haralick_distance,
                               levels=settings.haralick_levels)
    pending = [item.task for item in plan if not item.cached]
    outcomes = iter(parallel_map(worker, pending, jobs=config.run.jobs, backend=config.run.backend,
                                 scheduler=config.run.scheduler, desc="handcrafted features",
                                 quiet=config.run.quiet))
    counts = _write_rows(_rows(plan, outcomes, worker, cache, len(names), rejects), names, out / "handcrafted.csv")
    write_csv(data_dictionary(families), out / "columns.csv")
    if rejects:
        run.reject(rejects, stage=STAGE)
        log.warning("%d samples rejected by the features stage; see %s", len(rejects), run.rejected_path)
    run.update_info(features={"handcrafted": {
        **cache.settings, **counts, "from_cache": counts["samples"] - counts["computed"], "rejected": len(rejects),
    }})
    log.info("handcrafted features: %d samples x %d columns (%d from the cache) in %s",
             counts["samples"], len(names), counts["samples"] - counts["computed"], out / "handcrafted.csv")


def run_features(config: Config, run: RunDir, samples: pd.DataFrame) -> None:
    """The ``features`` stage (see the module docstring).

    Parameters
    ----------
    config : Config
        ``features`` (families, Haralick options, backbones) and ``run`` (jobs, backend,
        scheduler, quiet) are read.
    run : RunDir
        The run directory; everything is written inside it.
    samples : pandas.DataFrame
        The samples table (``sample_id, path, label, subject, split, sha256``).
    """
    remove_leftovers(run.stage_dir(STAGE))  # of a run killed half way: its caches are whole
    if not (run.path / SEGMENTATION_STAGE / "segmentation.csv").exists():
        from leukoscope.pipeline.segment import run_segment

        run_segment(config, run, samples)
    if not config.features.families and not config.features.backbones:
        log.warning("features: no families and no backbones are configured; nothing to compute")
    if config.features.families:
        run_handcrafted(config, run, samples)
    if config.features.backbones:
        from leukoscope.pipeline.embeddings import run_embeddings

        run_embeddings(config, run, samples)
