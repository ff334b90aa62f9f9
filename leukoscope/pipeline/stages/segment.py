"""The ``segment`` stage: label masks, overlays, a montage and (with expert masks) Dice.

Writes, inside the run directory::

    segmentation/masks/<sample_id>.png      uint8 labels: 0 background, 1 cytoplasm, 2 nucleus
    segmentation/overlays/<sample_id>.png   the image round the cell (cell_window), contrast-stretched,
                                            cell outline cyan, nucleus outline yellow, with a legend
    segmentation/montage.png, montage_qc.png, gallery.html, qc_summary.csv
                                            for a person to check (:mod:`..segmentation_qc`)
    segmentation/segmentation.csv           one row per segmented sample (see MEASUREMENT_COLUMNS;
                                            qc_flag, qc_score and excluded_area: docs/segmentation.md)
    segmentation/summary.csv                with --masks: Dice/IoU per class (also printed)
    segmentation/cache/segment-<settings>/<image sha256>.npz   one entry per finished sample

A sample's entry (its measurements and the SHA-256 of its mask and overlay) is written after
its PNGs, so a run killed half way resegments only the samples without an entry, and a rerun
with nothing changed segments nothing (scores against expert masks are always recomputed,
from the mask written).

Unreadable and blank images go to ``rejected.csv`` (stage ``segmentation``) and get no row; so do
expert masks that cannot be used (unreadable, in no known format, of another size than their
image, or ambiguous), whose images are still segmented but not scored. Images without an
expert mask are segmented, not scored, and counted in the summary.
"""

from __future__ import annotations

import collections
import functools
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from leukoscope import __version__
from leukoscope.pipeline.atomic import remove_leftovers, write_csv, write_png
from leukoscope.pipeline.cache import ResultCache
from leukoscope.pipeline.config import Config
from leukoscope.pipeline.freshness import settings_of
from leukoscope.pipeline.groundtruth import MISSING, ExpertMaskError, MaskMatch, match_masks, read_expert_mask
from leukoscope.pipeline.imageio import ImageReadError, read_image
from leukoscope.pipeline.layout import META_COLUMNS, RunLayout, Stage, sha256_file
from leukoscope.pipeline.parallel import parallel_map
from leukoscope.pipeline.refiner_model import refine_segmentation, refiner_info, refiner_model_path
from leukoscope.pipeline.rundir import RunDir
from leukoscope.pipeline.segmentation_qc import write_qc_outputs
from leukoscope.pipeline.segmentation_settings import method_name, segmentation_options
from leukoscope.pipeline.stage import CellConsumer, StageSpec
from leukoscope.segmentation.cell import segment_cell
from leukoscope.segmentation.choices import QCFlag
from leukoscope.segmentation.metrics import label_scores
from leukoscope.segmentation.overlay import cell_window, draw_overlay

log = logging.getLogger(__name__)

MEASUREMENT_COLUMNS = [
    "background", "cell_threshold", "nucleus_threshold", "cell_area", "nucleus_area",
    "cytoplasm_area", "nucleus_cell_ratio", "qc_flag", "qc_score", "excluded_area",
]
SCORE_COLUMNS = ["mask_status", "dice_cell", "dice_nucleus", "iou_cell", "iou_nucleus"]
#: ``mask_status`` values: the expert mask was scored, or why not
MASK_OK, MASK_MISSING, MASK_UNUSABLE = "ok", MISSING, "unusable"
NO_MASK = MaskMatch("", MASK_MISSING)  # the job of a run without --masks
#: cache entry fields beside the measurements: the files it was stored with
OUTPUT_HASHES = ("mask_sha256", "overlay_sha256")


@dataclass(frozen=True)
class _Job:
    sample_id: str
    path: str
    sha256: str  # of the image; "" when unknown (hashed by the worker)
    mask: MaskMatch


@dataclass(frozen=True)
class _Outcome:
    row: dict[str, Any] | None
    rejected: list[dict[str, str]]
    cached: bool = False
    refiner_skipped: str = ""  # why the refiner's labels were not used ("" when used, not run or cached)
    fused: tuple[Any, ...] = ()  # what each consumer returned, in order (empty when cached)


def _score(job: _Job, image_shape: tuple[int, ...], labels: np.ndarray) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Dice/IoU against the expert mask, or NaN with the reason it could not be scored."""
    empty = dict.fromkeys(SCORE_COLUMNS[1:], float("nan"))
    if job.mask.problem == MASK_MISSING:
        return {"mask_status": MASK_MISSING, **empty}, []
    if job.mask.problem:  # several candidates: each is named (the image itself was segmented fine)
        return {"mask_status": MASK_UNUSABLE, **empty}, [
            {"path": path, "reason": job.mask.problem} for path in job.mask.candidates
        ]
    try:
        truth = read_expert_mask(job.mask.path, image_shape=image_shape)
    except ExpertMaskError as exc:
        return {"mask_status": MASK_UNUSABLE, **empty}, [{"path": job.mask.path, "reason": str(exc)}]
    return {"mask_status": MASK_OK, **label_scores(labels, truth)}, []


def _outputs(job: _Job, layout: RunLayout) -> tuple[Path, Path]:
    """The mask and overlay files of one sample."""
    return layout.mask_path(job.sample_id), layout.overlay_path(job.sample_id)


def _image_key(job: _Job) -> str:
    """The image's SHA-256 (the cache key), or "" when the file cannot be read (read_image says why)."""
    try:
        return job.sha256 or sha256_file(job.path)
    except OSError:
        return ""


def _cached_row(cache: ResultCache, key: str, outputs: tuple[Path, Path]) -> dict[str, Any] | None:
    """The measurements stored under ``key`` when the sample's mask and overlay are still the
    files they were stored with; ``None`` otherwise."""
    entry = cache.load(key) if key else None
    if entry is None or any(name not in entry for name in [*MEASUREMENT_COLUMNS, *OUTPUT_HASHES]):
        return None
    for path, name in zip(outputs, OUTPUT_HASHES):
        if not path.exists() or sha256_file(path) != str(entry[name]):
            return None
    return {name: entry[name].item() for name in MEASUREMENT_COLUMNS}


def _segment_one(job: _Job, *, options: dict[str, Any], layout: RunLayout, evaluate: bool, in_worker: bool,
                 cache: ResultCache, refiner: str = "", flips: bool = False,
                 consumers: tuple[CellConsumer, ...] = ()) -> _Outcome:
    """Segment one image (and refine it with the ``refiner`` model file, if any), write its mask
    and overlay, cache its measurements, hand the cell to the fused later stages' ``consumers``,
    return its table row (worker side); a sample cached with its files intact is not segmented
    again."""
    if in_worker:
        cv2.setNumThreads(1)  # one process per core already: OpenCV's own threads would oversubscribe
    outputs = _outputs(job, layout)
    key = _image_key(job)
    measurements = _cached_row(cache, key, outputs)
    cached = measurements is not None
    fused: tuple[Any, ...] = ()
    if not cached:
        name = Path(job.path).name
        try:
            image = read_image(job.path)
        except ImageReadError as exc:
            return _Outcome(None, [{"path": job.path, "reason": str(exc)}])
        result = segment_cell(image, **options)
        if result.qc_flag == QCFlag.BLANK_IMAGE.value:
            colour = ", ".join(str(int(v)) for v in image[0, 0])
            reason = f"'{name}' is blank (every pixel is about RGB {colour}); there is no cell to segment"
            return _Outcome(None, [{"path": job.path, "reason": reason}])
        picture, skipped = image, ""
        if refiner:  # the overlay then shows the threshold outlines under the refined ones
            result, picture, skipped = refine_segmentation(refiner, image, result, min_size=options["min_size"],
                                                           flips=flips)
        window = cell_window(result.labels)
        digests = (write_png(result.labels, outputs[0]),
                   write_png(draw_overlay(picture[window], result.labels[window], stretch=True, legend=True),
                             outputs[1]))
        measurements = result.measurements()
        fused = tuple(consume(image, result.labels, key, digests[0]) for consume in consumers)
        cache.save(key, {**{k: np.asarray(v) for k, v in measurements.items()},
                         **{h: np.asarray(d) for h, d in zip(OUTPUT_HASHES, digests)}})
    row: dict[str, Any] = {"sample_id": job.sample_id, **measurements}
    rejected: list[dict[str, str]] = []
    if evaluate:
        labels = cv2.imread(str(outputs[0]), cv2.IMREAD_UNCHANGED) if cached else result.labels
        scores, rejected = _score(job, labels.shape, labels)
        row.update(scores)
    return _Outcome(row, rejected, cached, "" if cached else skipped, fused)


def _remove_outputs_of_others(layout: RunLayout, sample_ids: set[str]) -> None:
    """Delete the masks and overlays of samples no longer in the dataset (removed since a rerun)."""
    for folder in layout.sample_folders:
        for path in sorted(folder.glob("*.png")) if folder.is_dir() else []:
            if path.stem not in sample_ids:
                path.unlink(missing_ok=True)


def summarize(table: pd.DataFrame, *, method: str) -> pd.DataFrame:
    """Mean and median Dice (and mean IoU) per class and over all scored samples.

    Parameters
    ----------
    table : DataFrame
        ``segmentation.csv`` rows with ``label``, ``mask_status`` and the score columns.
    method : str
        Name of the segmentation settings (first column).

    Returns
    -------
    DataFrame
        One row per class (``ALL``, ``HEM``, ``unlabelled``) present, then ``all``, with the
        number of samples, how many were scored, lacked a mask or had an unusable one.
    """
    rows = []
    classes = [(c or "unlabelled", table["label"] == c) for c in sorted(table["label"].unique())]
    for name, members in classes + [("all", pd.Series(True, index=table.index))]:
        part = table[members]
        scored = part[part["mask_status"] == MASK_OK]
        row = {
            "method": method, "class": name, "samples": len(part), "scored": len(scored),
            "missing_mask": int((part["mask_status"] == MASK_MISSING).sum()),
            "unusable_mask": int((part["mask_status"] == MASK_UNUSABLE).sum()),
        }
        for column in ("dice_nucleus", "dice_cell"):
            row[f"{column}_mean"] = scored[column].mean()
            row[f"{column}_median"] = scored[column].median()
        row["iou_nucleus_mean"] = scored["iou_nucleus"].mean()
        row["iou_cell_mean"] = scored["iou_cell"].mean()
        rows.append(row)
    return pd.DataFrame(rows)


def run_segment(config: Config, run: RunDir, samples: pd.DataFrame, consumers: tuple[CellConsumer, ...] = ()) -> None:
    """Segment every sample; see the module docstring for the files written.

    Parameters
    ----------
    config : Config
        Uses ``[segmentation]``, ``data.masks`` (expert masks folder, "" for none) and
        ``[run]`` (jobs, backend, quiet).
    run : RunDir
        The run directory.
    samples : DataFrame
        The samples table (``sample_id, path, label, subject, split``...).
    consumers : tuple of CellConsumer
        Per-cell work of later stages fused into this one (:mod:`leukoscope.pipeline.graph`),
        done for every cell segmented anew.

    Raises
    ------
    ExpertMaskError
        ``data.masks`` is set but is not a folder, or none of the images has a mask in it.
    """
    folder = run.stage_dir(Stage.SEGMENTATION)
    evaluate = bool(config.data.masks)
    paths = list(samples["path"])
    if evaluate:
        matches = match_masks(paths, config.data.masks)
        if paths and all(m.problem == MASK_MISSING for m in matches):
            raise ExpertMaskError(
                f"no image has an expert mask in '{config.data.masks}' (masks are matched by file "
                "stem, e.g. Im001_1.tif <-> Im001_1.tif); check --masks"
            )
        mask_of = {m.path: Path(p).name for p, m in zip(paths, matches) if m.path}
    else:
        matches, mask_of = [NO_MASK] * len(paths), {}
    hashes = samples["sha256"] if "sha256" in samples.columns else [""] * len(paths)  # "": hashed by the worker
    jobs = [_Job(*job) for job in zip(samples["sample_id"], paths, hashes, matches)]
    refiner = refiner_model_path(config.segmentation)
    refined = refiner_info(refiner) if refiner else {}
    options = segmentation_options(config.segmentation)
    remove_leftovers(folder)  # of a run killed half way: its cache entries are whole
    run.clear_rejected(Stage.SEGMENTATION)
    cache = ResultCache(run.cache_root(Stage.SEGMENTATION), "segment", {
        **options, "refiner_sha256": refined.get("sha256", ""), "leukoscope": __version__,
        **({"refiner_flips": True} if refiner and config.segmentation.refiner_flips else {}),
        **({"refiner_record_sha256": refined["record_sha256"]} if "record_sha256" in refined else {}),
    })
    worker = functools.partial(_segment_one, options=options, layout=RunLayout(run.path), evaluate=evaluate,
                               in_worker=config.run.jobs > 1, cache=cache, refiner=refiner,
                               flips=config.segmentation.refiner_flips, consumers=consumers)
    rows, rejected, from_cache, reasons = [], [], 0, collections.Counter()
    for outcome in parallel_map(worker, jobs, jobs=config.run.jobs, backend=config.run.backend,
                                scheduler=config.run.scheduler, desc="segment", quiet=config.run.quiet):
        from_cache += outcome.cached
        if outcome.refiner_skipped:
            reasons[re.sub(r"\d+(\.\d+)?", "N", outcome.refiner_skipped)] += 1
        if outcome.row is not None:
            rows.append(outcome.row)
            for consumer, result in zip(consumers, outcome.fused):
                consumer.collect(outcome.row["sample_id"], result)
        for row in outcome.rejected:
            owner = mask_of.get(str(Path(row["path"]).resolve())) if outcome.row is None else None
            if owner:  # e.g. Zheng's 001.png, listed as an image beside 001.bmp
                row = {**row, "reason": f"'{Path(row['path']).name}' is the expert mask of '{owner}' "
                                        f"(--masks), not a cell image; {row['reason']}"}
            rejected.append(row)
    if rejected:
        run.reject(rejected, stage=Stage.SEGMENTATION.value)
        log.warning("segment: %d files rejected; see %s", len(rejected), run.rejected_path)

    columns = META_COLUMNS + MEASUREMENT_COLUMNS + (SCORE_COLUMNS if evaluate else [])
    table = pd.DataFrame(rows, columns=["sample_id"] + MEASUREMENT_COLUMNS + (SCORE_COLUMNS if evaluate else []))
    table = samples[META_COLUMNS].merge(table, on="sample_id", how="inner")[columns]
    write_csv(table, run.segmentation_table)
    _remove_outputs_of_others(run, set(samples["sample_id"]))
    counts = write_qc_outputs(table, run)
    flagged = int((table["qc_flag"] != "").sum())
    by_flag = counts[counts["qc_flag"] != ""].groupby("qc_flag")["cells"].sum()
    info: dict[str, Any] = {"segmented": len(table), "rejected": len(samples) - len(table), "qc_flagged": flagged,
                            "qc_flags": {k: int(v) for k, v in by_flag.items()},
                            "computed": len(rows) - from_cache, "from_cache": from_cache}
    if flagged:
        log.info("segment: %d of %d cells flagged (%s); most doubtful first in %s and %s", flagged, len(table),
                 ", ".join(f"{k} {v}" for k, v in info["qc_flags"].items()), run.montage_qc_path, run.gallery_path)
    if refiner:
        skipped = info["qc_flags"].get(QCFlag.REFINER_SKIPPED.value, 0)
        info["refiner"] = {**refined, "flips": config.segmentation.refiner_flips, "skipped": skipped,
                           "skipped_share": round(skipped / max(1, len(table)), 4),
                           "skipped_reasons": dict(reasons.most_common())}
        log.warning("segment: the refiner was skipped on %d of %d cells (%.0f %%; qc_flag refiner_skipped, their "
                    "threshold masks are kept)%s", skipped, len(table), 100 * skipped / max(1, len(table)),
                    "".join(f"\n  {count} x {reason}" for reason, count in reasons.most_common()))
    if evaluate:
        summary = summarize(table, method=method_name(config.segmentation))
        write_csv(summary, run.segmentation_summary)
        total = summary.iloc[-1]
        print(f"segmentation vs expert masks in {config.data.masks} ({method_name(config.segmentation)}):")
        print(summary.drop(columns="method").to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        if total["missing_mask"]:
            print(f"{total['missing_mask']} of {total['samples']} images had no expert mask; they are not scored")
        info.update(masks=str(config.data.masks), scored=int(total["scored"]),
                    missing_mask=int(total["missing_mask"]), unusable_mask=int(total["unusable_mask"]))
    run.update_info(segmentation=info)


STAGE = StageSpec(
    name=Stage.SEGMENTATION,
    run=run_segment,
    needs=lambda config: (),
    active=lambda config: True,
    done=lambda config, layout: layout.segmentation_table.exists(),
    settings=settings_of("segmentation", "data.masks"),
)
