"""The field step: the white cells of whole smear fields, cut out as C-NMC-style cells.

A dataset of whole fields (``data.dataset`` ``allidb1``, ``voc`` or ``fields``; ``auto`` finds
the first two by their folders, :func:`field_kind`) has no samples until its white cells are
found. :func:`cut_out_fields` runs before the sample manifest is written (``cli.prepare_run``):
it finds every white cell of every field
(:func:`~leukoscope.segmentation.fields.detect_white_cells` with the ``[fields]`` settings),
cuts each out on black, centred in a ``fields.cutout_size`` square
(:func:`~leukoscope.segmentation.cutout.cut_out`), and returns the cut-outs as the run's
samples, so that every later stage reads them as it reads C-NMC cells. It writes, inside the
run directory (paths: :mod:`~leukoscope.pipeline.layout`)::

    fields/cells/<field_id>__<k>.bmp   cell k = 1, 2, ... of the field (the detector's order)
    fields/overlays/<field_id>.png     the field: each cell's box (magenta) with its k, outline
                                       (cyan) and nucleus (yellow); blast centroids as green
                                       crosses; with fields.boxes the annotated boxes (green)
    fields/montage.png                 up to 64 cut-outs cropped round the cell, captioned with
                                       the label ("?": unlabelled) and "edge" (touches_edge)
    fields/cells.csv                   one row per cut-out (CELL_COLUMNS)
    fields/fields.csv                  one row per field (FIELD_TABLE_COLUMNS)
    fields/detection_scores.json       with blast centroids (allidb1) or fields.boxes (voc)
    fields/cache/fields-<settings>/<key>.npz   one entry per finished field

Rules:

- ``subject`` of a cut-out is its field's id, the group of every subject-safe split: the cells
  of one field come from one smear, so they stay on one side of any split (ALL-IDB1 names no
  patients; fields of one patient can still fall on both sides).
- ``label``: ALL-IDB1's rule (:func:`~leukoscope.pipeline.fields_sources.allidb1_cell_labels`:
  a cell holding a blast centroid is ``ALL``, the other cells of an ``ImNNN_0`` field ``HEM``,
  those of an ``ImNNN_1`` field unlabelled); cells of VOC and plain-folder fields are unlabelled.
- Cells cut by the field's edge are kept and flagged (``touches_edge`` in cells.csv).
- A field that cannot be read, or whose side exceeds 4096 pixels (cut a whole-slide image into
  fields first), is listed in ``rejected.csv`` with stage ``fields``.
- Scores: detections matched one-to-one to annotated boxes at IoU >= 0.5 and >= 0.3
  (:mod:`~leukoscope.segmentation.detection_metrics`); a blast centroid is found when it lies
  in a detected cell; counts are summed over fields.
- A field's cache entry (its detections, and the SHA-256 of each file written from them) is
  keyed by the field's SHA-256 and the annotations drawn on its overlay, under the detection
  settings and cut-out size; a rerun reads a field again only when its entry or one of its
  files is missing or changed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leukoscope import __version__
from leukoscope.pipeline.atomic import remove_leftovers, write_csv, write_image, write_png
from leukoscope.pipeline.cache import ResultCache
from leukoscope.pipeline.choices import FIELD_KINDS, DatasetKind
from leukoscope.pipeline.config import Config, FieldsConfig
from leukoscope.pipeline.dataset_base import SAMPLE_COLUMNS, DatasetError, LoadedDataset, child_dir
from leukoscope.pipeline.fields_sources import (
    FieldSource,
    allidb1_cell_labels,
    load_allidb1,
    load_field_folder,
    load_voc,
)
from leukoscope.pipeline.fields_summary import IOUS, write_summary
from leukoscope.pipeline.imageio import ImageReadError, read_image
from leukoscope.pipeline.layout import RunLayout, Stage, cache_key, cutout_id, sha256_file
from leukoscope.pipeline.parallel import parallel_map
from leukoscope.pipeline.rundir import RunDir
from leukoscope.segmentation.choices import Background
from leukoscope.segmentation.cutout import cut_out
from leukoscope.segmentation.detection_metrics import centroid_hits, detection_counts
from leukoscope.segmentation.fields import DETECTION_COLUMNS, Detection, detect_white_cells
from leukoscope.segmentation.overlay import draw_field_overlay

log = logging.getLogger(__name__)

CELL_COLUMNS = ["sample_id", "field_id", "cell", "path", "label", "subject", *DETECTION_COLUMNS, "blasts"]
FIELD_TABLE_COLUMNS = ["field_id", "path", "label", "width", "height", "cells", "edge_cells",
                       "blasts", "blasts_found", "boxes", "matched_iou50", "matched_iou30"]
_ENTRY = ("shape", "boxes", "touches_edge", "sizes", "labels", "hashes")
_LOADERS = {DatasetKind.ALLIDB1: load_allidb1, DatasetKind.VOC: load_voc, DatasetKind.FIELDS: load_field_folder}


# ------------------------------------------------------------------------------ which layout
def detect_field_kind(root: Path) -> DatasetKind | None:
    """``allidb1`` when ``root`` (or a folder in it) holds ``im/`` and ``xyc/``, ``voc`` when it
    holds ``Annotations/`` and ``JPEGImages/``; ``None`` otherwise."""
    parents = [root, *sorted(p for p in root.iterdir() if p.is_dir())] if root.is_dir() else []
    for parent in parents:
        if child_dir(parent, "im") and child_dir(parent, "xyc"):
            return DatasetKind.ALLIDB1
        if child_dir(parent, "Annotations") and child_dir(parent, "JPEGImages"):
            return DatasetKind.VOC
    return None


def field_kind(root: str | Path, kind: DatasetKind, *, fields_command: bool = False) -> DatasetKind | None:
    """The layout of whole fields to read ``root`` as, or ``None`` for a layout of single cells.

    Parameters
    ----------
    root : str or Path
        ``data.path``.
    kind : DatasetKind
        ``data.dataset``: a field kind is kept; ``auto`` becomes :func:`detect_field_kind`'s
        answer, or ``fields`` (a plain folder of fields) for the ``fields`` command.
    fields_command : bool
        Whether the command is ``leukoscope fields``, which reads fields only.

    Raises
    ------
    DatasetError
        ``fields_command`` with a layout of single cells.
    """
    if kind in FIELD_KINDS:
        return kind
    if kind is DatasetKind.AUTO:
        return detect_field_kind(Path(root)) or (DatasetKind.FIELDS if fields_command else None)
    if fields_command:
        raise DatasetError(f"`leukoscope fields` reads whole smear fields, but --dataset is '{kind.value}' (single "
                           "cells); use --dataset allidb1, voc or fields (or auto)")
    return None


def resolve_field_dataset(config: Config, command: str) -> Config:
    """``config`` for a run of ``command`` on whole fields: ``data.dataset`` ``auto`` made the field
    layout ``data.path`` holds (:func:`field_kind`), so that the run and its report say how the data
    was read, and ``segmentation.background`` ``auto`` made ``black`` (the cut-outs' surround,
    which a cell scaled to fill its square would hide from the per-image guess). A config for
    single cells is returned as it is."""
    kind = field_kind(config.data.path, config.data.dataset, fields_command=command == "fields")
    if kind is None:
        return config
    if kind is not config.data.dataset:
        log.info("%s holds whole smear fields: read as --dataset %s", config.data.path, kind.value)
    overrides = {"data.dataset": kind.value}
    if config.segmentation.background is Background.AUTO:
        overrides["segmentation.background"] = Background.BLACK.value
    return config.with_overrides(overrides, source="whole fields")


def load_fields(config: Config) -> FieldSource:
    """The fields of ``data.path`` read as ``data.dataset`` (a field kind).

    Raises
    ------
    DatasetError
        No field in the folder, or ``fields.boxes`` for a layout without annotated boxes.
    """
    kind, root = config.data.dataset, Path(config.data.path)
    if config.fields.boxes and kind is not DatasetKind.VOC:
        raise DatasetError(f"fields.boxes (--boxes) scores against annotated boxes, which only a voc dataset has, "
                           f"not {kind.value}; leave --boxes out (ALL-IDB1's blast centroids are always scored)")
    source = _LOADERS[kind](root)
    if source.fields.empty:
        raise DatasetError(f"no fields found in '{root}' read as {kind.value} ({len(source.rejected)} files "
                           "rejected, see the log); check --data and --dataset")
    return source


def detection_options(fields: FieldsConfig) -> dict[str, float]:
    """The keyword arguments of :func:`~leukoscope.segmentation.fields.detect_white_cells`."""
    return {"red_cell_diameter": fields.red_cell_diameter, "min_nucleus_area": fields.min_nucleus_area,
            "min_nucleus_contrast": fields.min_nucleus_contrast, "lobe_gap": fields.lobe_gap,
            "cytoplasm_level": fields.cytoplasm_level, "reach": fields.reach}


# ------------------------------------------------------------------------------ one field
@dataclass(frozen=True)
class _Job:
    field_id: str
    path: str
    label: str
    allidb1: bool
    blasts: tuple[tuple[float, float], ...]  # ALL-IDB1 blast centroids (x, y)
    score_boxes: bool
    boxes: tuple[tuple[float, float, float, float], ...]  # annotated white cells (scored when score_boxes)

    def annotation_digest(self) -> str:
        """SHA-256 of what the overlay shows beside the detections ("" when nothing)."""
        drawn = [self.blasts, self.boxes if self.score_boxes else ()]
        return hashlib.sha256(json.dumps(drawn).encode()).hexdigest() if any(drawn) else ""


@dataclass(frozen=True)
class _Outcome:
    cells: list[dict[str, Any]]
    field: dict[str, Any] | None
    rejected: list[dict[str, str]]
    cached: bool = False


def _outputs(layout: RunLayout, field_id: str, count: int) -> list[Path]:
    """The cut-outs of a field's ``count`` cells, then its overlay."""
    cells = [layout.cutout_path(cutout_id(field_id, number)) for number in range(1, count + 1)]
    return [*cells, layout.field_overlay_path(field_id)]


def _entry(detections: list[Detection], shape: tuple[int, int], hashes: list[str]) -> dict[str, np.ndarray]:
    labels = [d.labels.ravel() for d in detections]
    return {"shape": np.array(shape, np.int64), "boxes": np.array([d.box for d in detections], np.int64).reshape(-1, 4),
            "touches_edge": np.array([d.touches_edge for d in detections], bool),
            "sizes": np.array([d.labels.shape for d in detections], np.int64).reshape(-1, 2),
            "labels": np.concatenate(labels) if labels else np.zeros(0, np.uint8), "hashes": np.array(hashes, str)}


def _cached(
    cache: ResultCache, key: str, layout: RunLayout, field_id: str
) -> tuple[list[Detection], tuple[int, ...]] | None:
    """The detections and field shape stored under ``key`` when every file written from them is intact."""
    entry = cache.load(key)
    if entry is None or any(name not in entry for name in _ENTRY):
        return None
    ends = np.cumsum([0, *(int(h) * int(w) for h, w in entry["sizes"])])
    detections = [Detection(box=(int(x0), int(y0), int(x1), int(y1)), labels=entry["labels"][start:end].reshape(size),
                            touches_edge=bool(edge))
                  for (x0, y0, x1, y1), size, edge, start, end in zip(entry["boxes"], entry["sizes"],
                                                                      entry["touches_edge"], ends[:-1], ends[1:])]
    paths, hashes = _outputs(layout, field_id, len(detections)), [str(h) for h in entry["hashes"]]
    if len(paths) != len(hashes) or any(not p.exists() or sha256_file(p) != h for p, h in zip(paths, hashes)):
        return None
    return detections, tuple(int(v) for v in entry["shape"])


def _write_outputs(
    image: np.ndarray, detections: list[Detection], job: _Job, size: int, layout: RunLayout
) -> list[str]:
    """Write the field's cut-outs and overlay; return their SHA-256 in :func:`_outputs`' order."""
    paths = _outputs(layout, job.field_id, len(detections))
    hashes = [write_image(cut_out(image, detection, size=size)[0], path) for detection, path in zip(detections, paths)]
    overlay = draw_field_overlay(image, detections, truth=job.boxes if job.score_boxes else (), points=job.blasts,
                                 captions=[str(number) for number in range(1, len(detections) + 1)])
    return [*hashes, write_png(overlay, paths[-1])]


def _cut_field(job: _Job, *, options: dict[str, float], size: int, layout: RunLayout, cache: ResultCache) -> _Outcome:
    """Detect, cut out and draw one field (worker side); a field cached with its files intact is not read."""
    try:
        key = cache_key(sha256_file(job.path), mask_sha256=job.annotation_digest())
    except OSError as exc:
        return _Outcome([], None, [{"path": job.path, "reason": f"field cannot be read ({exc.strerror or exc})"}])
    found = _cached(cache, key, layout, job.field_id)
    if found is None:
        try:
            image = read_image(job.path)
        except ImageReadError as exc:
            return _Outcome([], None, [{"path": job.path, "reason": str(exc)}])
        detections, shape = detect_white_cells(image, **options), image.shape[:2]
        cache.save(key, _entry(detections, shape, _write_outputs(image, detections, job, size, layout)))
    else:
        detections, shape = found
    blasts = np.array(job.blasts, np.float64).reshape(-1, 2)
    labels = allidb1_cell_labels(detections, blasts, job.label) if job.allidb1 else [""] * len(detections)
    hits = centroid_hits(blasts, detections)
    inside = np.bincount(hits[hits >= 0], minlength=len(detections))
    cells = []
    for number, (detection, label) in enumerate(zip(detections, labels), start=1):
        sample_id = cutout_id(job.field_id, number)
        cells.append({"sample_id": sample_id, "field_id": job.field_id, "cell": number,
                      "path": str(layout.cutout_path(sample_id)), "label": label, "subject": job.field_id,
                      **detection.row(), "blasts": int(inside[number - 1])})
    field: dict[str, Any] = {
        "field_id": job.field_id, "path": job.path, "label": job.label, "width": shape[1], "height": shape[0],
        "cells": len(detections), "edge_cells": sum(d.touches_edge for d in detections),
        "blasts": len(job.blasts) if job.allidb1 else None,
        "blasts_found": int((hits >= 0).sum()) if job.allidb1 else None,
        "boxes": len(job.boxes) if job.score_boxes else None,
    }
    detected = np.array([d.box for d in detections]).reshape(-1, 4)
    for column, iou in IOUS.items():
        field[column] = detection_counts(detected, job.boxes, min_iou=iou).matched if job.score_boxes else None
    return _Outcome(cells, field, [], found is not None)


# ------------------------------------------------------------------------------ all fields
def _jobs(source: FieldSource, kind: DatasetKind, score_boxes: bool) -> list[_Job]:
    notes = source.annotations
    blasts = notes[notes["kind"] == "blast"].groupby("field_id")
    boxes = notes[notes["kind"] != "blast"].groupby("field_id")
    blast_of = {key: tuple(map(tuple, group[["x", "y"]].to_numpy().tolist())) for key, group in blasts}
    boxes_of = {key: tuple(map(tuple, group[["x0", "y0", "x1", "y1"]].to_numpy().tolist())) for key, group in boxes}
    return [_Job(field_id, path, label, kind is DatasetKind.ALLIDB1, blast_of.get(field_id, ()), score_boxes,
                 boxes_of.get(field_id, ()))
            for field_id, path, label in source.fields[["field_id", "path", "label"]].itertuples(index=False)]


def _remove_stale(layout: RunLayout, cells: pd.DataFrame, fields: pd.DataFrame) -> None:
    """Delete cut-outs and overlays of an earlier run that this run did not write."""
    keep = {layout.cutout_path(sample_id) for sample_id in cells["sample_id"]}
    keep |= {layout.field_overlay_path(field_id) for field_id in fields["field_id"]}
    for folder in (layout.cutouts_dir, layout.field_overlays_dir):
        for path in folder.iterdir() if folder.is_dir() else []:
            if path.is_file() and path not in keep:
                path.unlink()


def cut_out_fields(config: Config, run: RunDir, source: FieldSource) -> LoadedDataset:
    """Find, cut out and draw the white cells of every field; return the cut-outs as samples.

    Parameters
    ----------
    config : Config
        ``[fields]`` (detection settings, cut-out size, boxes), ``data.dataset`` (a field kind)
        and ``[run]`` (jobs, backend, scheduler, quiet).
    run : RunDir
        The run directory; see the module docstring for the files written.
    source : FieldSource
        The fields (:func:`load_fields`).

    Returns
    -------
    LoadedDataset
        ``samples``: one row per cut-out (``sample_id, path, label, subject, split``; subject
        the field id, split empty); ``rejected``: the files the loader could not use.

    Raises
    ------
    DatasetError
        No white cell was found in any field (the overlays are written, to look at).
    """
    kind = DatasetKind(config.data.dataset)
    layout = RunLayout(run.path.resolve())  # the cut-outs' paths in the manifest are absolute
    remove_leftovers(run.stage_dir(Stage.FIELDS))
    run.clear_rejected(Stage.FIELDS.value)
    options = detection_options(config.fields)
    cache = ResultCache(run.cache_root(Stage.FIELDS), "fields",
                        {**options, "cutout_size": config.fields.cutout_size, "leukoscope": __version__})
    worker = functools.partial(_cut_field, options=options, size=config.fields.cutout_size, layout=layout, cache=cache)
    jobs = _jobs(source, kind, config.fields.boxes)
    cells: list[dict[str, Any]] = []
    fields, rejected, from_cache = [], [], 0
    for outcome in parallel_map(worker, jobs, jobs=config.run.jobs, backend=config.run.backend,
                                scheduler=config.run.scheduler, desc="fields", quiet=config.run.quiet, unit="field"):
        cells += outcome.cells
        fields += [outcome.field] if outcome.field is not None else []
        rejected += outcome.rejected
        from_cache += outcome.cached
    if rejected:
        run.reject(rejected, stage=Stage.FIELDS.value)
        log.warning("fields: %d fields rejected; see %s", len(rejected), run.rejected_path)
    table = pd.DataFrame(cells, columns=CELL_COLUMNS)
    per_field = pd.DataFrame(fields, columns=FIELD_TABLE_COLUMNS)
    write_csv(table, layout.cells_table)
    write_csv(per_field, layout.fields_table)
    _remove_stale(layout, table, per_field)
    scores = write_summary(layout, table, per_field)
    run.update_info(fields={"fields": len(per_field), "rejected": len(rejected), "cells": len(table),
                            "edge_cells": int(table["touches_edge"].sum()), "computed": len(per_field) - from_cache,
                            "from_cache": from_cache, **({"scores": scores} if scores else {})})
    if table.empty:
        raise DatasetError(f"no white cell found in the {len(per_field)} readable fields of '{config.data.path}' "
                           f"({len(rejected)} rejected); look at {layout.field_overlays_dir} and set "
                           "fields.red_cell_diameter to the red cells' diameter in pixels (docs/fields.md)")
    samples = table.assign(split="")[SAMPLE_COLUMNS].astype(str)
    return LoadedDataset(samples, kind, source.root, list(source.rejected))


__all__ = ["CELL_COLUMNS", "FIELD_TABLE_COLUMNS", "cut_out_fields", "detect_field_kind", "detection_options",
           "field_kind", "load_fields", "resolve_field_dataset"]
