"""White-cell detection in whole smear fields: BCCD scores, ALL-IDB2 check, CPU time per field.

Runs :func:`leukoscope.segmentation.fields.detect_white_cells` with its default settings
(or those changed with ``--set``) and prints:

1. BCCD (292 fields of 640x480, Pascal-VOC boxes read by
   :func:`leukoscope.pipeline.fields_sources.load_voc`): the median side of its red-cell
   boxes; recall, precision and F1 of the white cells at IoU >= 0.5 and at IoU >= 0.3
   (one-to-one optimal matching, :mod:`leukoscope.segmentation.detection_metrics`), and the
   fields with a miss or a false positive (``--overlays DIR`` writes those fields as PNG with
   the boxes and outlines drawn); then the cells found in the widest strip of each field clear
   of every annotated white cell (at least 200 pixels wide, full height), with the settings
   and with ``min_nucleus_contrast`` 0 (the three-class Otsu split alone);
2. ALL-IDB2 (260 single-cell crops of 257x257 cut from ALL-IDB1 fields, so at ALL-IDB1's
   resolution, with expert masks), for each ``--allidb2-diameters`` value of
   ``red_cell_diameter``: in how many crops a detected cell holds the crop's centre, and the
   mean Dice of that cell's mask with the expert's whole-cell mask;
3. the CPU time of one detection on a 640x480 BCCD field, and on 2592x1944 fields (ALL-IDB1's
   size) made of BCCD fields tiled and reflected at the border: 4x4 fields as they are
   (``red_cell_diameter`` 100), and 7x7 fields scaled by 0.6 (``red_cell_diameter`` 60, the
   cell size of ALL-IDB1 found in 2). Each is given as a rate and as a ratio to the bare
   decoding of a JPEG of the same size (``read_image``), which is steadier than the rate on
   a shared machine. CPU time (``time.process_time``, all threads of this one process) does
   not count time spent waiting for a core.

Usage::

    .venv/bin/python bench/fields.py [--data ../shared/data] [--set cytoplasm_level=0.2] [--overlays DIR]
        [--allidb2-diameters 60,80,100] [--no-timing]

Takes about a minute of CPU.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from leukoscope.pipeline.fields_sources import load_voc
from leukoscope.pipeline.groundtruth import match_masks, read_expert_mask
from leukoscope.pipeline.imageio import read_image
from leukoscope.segmentation.detection_metrics import DetectionCounts, detection_counts
from leukoscope.segmentation.fields import detect_white_cells
from leukoscope.segmentation.metrics import dice
from leukoscope.segmentation.overlay import draw_field_overlay

REPO = Path(__file__).resolve().parents[1]
IOUS = (0.5, 0.3)
LARGE = (2592, 1944)  # ALL-IDB1's field, width x height
DEFAULT_DIAMETER = 100.0  # detect_white_cells' default red_cell_diameter
REPEATS = 5  # 2592x1944 fields timed per construction
#: 2592x1944 fields: (name, BCCD fields per side, their scale, red_cell_diameter)
LARGE_FIELDS = (("4x4 BCCD fields", 4, 1.0, DEFAULT_DIAMETER), ("7x7 BCCD fields scaled 0.6", 7, 0.6, 60.0))


def parse_settings(pairs: list[str]) -> dict[str, float]:
    """``["cytoplasm_level=0.2"]`` -> ``{"cytoplasm_level": 0.2}``."""
    settings = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        try:
            settings[name.strip()] = float(value)
        except ValueError:
            sys.exit(f"--set {pair!r}: expected NAME=NUMBER, e.g. --set cytoplasm_level=0.2")
    return settings


def cpu_per_call(function, arguments: list, **keywords) -> float:
    """Mean CPU seconds of ``function(argument, **keywords)`` over the arguments."""
    start = time.process_time()
    for argument in arguments:
        function(argument, **keywords)
    return (time.process_time() - start) / len(arguments)


def tiled_field(images: list[np.ndarray], side: int, scale: float) -> np.ndarray:
    """``side`` x ``side`` fields scaled by ``scale``, as a mosaic cut or reflected to 2592x1944."""
    if scale != 1.0:
        images = [cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) for image in images]
    rows = [np.hstack(images[row * side : row * side + side]) for row in range(side)]
    mosaic = np.vstack(rows)[: LARGE[1], : LARGE[0]]
    bottom, right = LARGE[1] - mosaic.shape[0], LARGE[0] - mosaic.shape[1]
    return cv2.copyMakeBorder(mosaic, 0, bottom, 0, right, cv2.BORDER_REFLECT_101)


def score_bccd(
    bccd: Path, settings: dict[str, float], overlays: Path | None
) -> tuple[list[np.ndarray], list[str], float]:
    """Print BCCD's scores; return its fields, their paths and the CPU seconds per detection."""
    source = load_voc(bccd)
    truth = {key: group[["x0", "y0", "x1", "y1"]].to_numpy() for key, group in source.annotations.groupby("field_id")}
    paths = list(source.fields["path"])
    images = [read_image(path) for path in paths]
    start = time.process_time()
    found = [detect_white_cells(image, **settings) for image in images]
    cpu = (time.process_time() - start) / len(images)
    counts = {iou: DetectionCounts(0, 0, 0) for iou in IOUS}
    errors = []
    for field_id, image, detections in zip(source.fields["field_id"], images, found):
        boxes = np.array([d.box for d in detections]).reshape(-1, 4)
        annotated = truth.get(field_id, np.zeros((0, 4)))
        field_counts = {iou: detection_counts(boxes, annotated, min_iou=iou) for iou in IOUS}
        counts = {iou: counts[iou] + field_counts[iou] for iou in IOUS}
        main = field_counts[IOUS[0]]
        if main.matched < max(main.detected, main.truth):
            errors.append(f"{field_id} (missed {main.truth - main.matched}, false {main.detected - main.matched})")
            if overlays:
                overlays.mkdir(parents=True, exist_ok=True)
                picture = draw_field_overlay(image, detections, truth=[tuple(box) for box in annotated])
                cv2.imwrite(str(overlays / f"{field_id}.png"), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    red = load_voc(bccd, classes=["RBC"]).annotations
    red_side = np.median(((red["x1"] - red["x0"]) + (red["y1"] - red["y0"])) / 2)
    print(f"BCCD: {len(images)} fields of {images[0].shape[1]}x{images[0].shape[0]}, "
          f"{counts[IOUS[0]].truth} annotated white cells; settings: {settings or 'defaults'}")
    print(f"  red-cell boxes: {len(red)}, median side {red_side:.0f} pixels")
    for iou in IOUS:
        c = counts[iou]
        print(f"  IoU >= {iou}: recall {c.recall:.3f} ({c.matched}/{c.truth}), "
              f"precision {c.precision:.3f} ({c.matched}/{c.detected}), F1 {c.f1:.3f}")
    print(f"  fields with a miss or a false positive at IoU >= {IOUS[0]}: {', '.join(errors) or 'none'}")
    ids = list(source.fields["field_id"])
    check_clear_strips(ids, images, [truth.get(key, np.zeros((0, 4))) for key in ids], settings)
    return images, paths, cpu


def clear_strip(image: np.ndarray, boxes: np.ndarray, margin: int = 20) -> np.ndarray | None:
    """The widest full-height strip at least ``margin`` pixels clear of every box, if 200 or more wide."""
    busy = np.zeros(image.shape[1] + 1, dtype=bool)
    busy[-1] = True
    for x0, _, x1, _ in boxes.astype(int):
        busy[max(0, x0 - margin) : x1 + margin] = True
    best, start = (0, 0), None
    for x, taken in enumerate(busy):
        if not taken and start is None:
            start = x
        elif taken and start is not None:
            best, start = max(best, (start, x), key=lambda run: run[1] - run[0]), None
    return np.ascontiguousarray(image[:, best[0] : best[1]]) if best[1] - best[0] >= 200 else None


def check_clear_strips(
    ids: list[str], images: list[np.ndarray], boxes: list[np.ndarray], settings: dict[str, float]
) -> None:
    """Print the cells found in BCCD strips that hold no annotated white cell."""
    strips = [(key, strip) for key, image, annotated in zip(ids, images, boxes)
              if (strip := clear_strip(image, annotated)) is not None]
    unfloored = {**settings, "min_nucleus_contrast": 0.0}
    for name, options in (("these settings", settings), ("min_nucleus_contrast 0", unfloored)):
        found = [(key, len(detect_white_cells(strip, **options))) for key, strip in strips]
        fields = [key for key, count in found if count]
        listed = f" ({', '.join(fields[:4])}{', ...' if len(fields) > 4 else ''})" if fields else ""
        print(f"  {len(strips)} strips clear of annotated white cells, {name}: "
              f"{sum(count for _, count in found)} cells found in {len(fields)} strips{listed}")


def check_allidb2(folder: Path, diameters: list[float], settings: dict[str, float]) -> None:
    """Print, per red-cell diameter, the crops whose centre lies in a detection and its mean Dice."""
    paths = sorted(str(p) for p in (folder / "img").glob("*.tif"))
    if not paths:
        print(f"ALL-IDB2: no crops in {folder / 'img'}; skipped")
        return
    matches = match_masks(paths, folder / "masks")
    pairs = [(read_image(path), read_expert_mask(match.path) > 0) for path, match in zip(paths, matches)]
    print(f"ALL-IDB2: {len(pairs)} crops cut from ALL-IDB1 fields, the expert's whole-cell mask as truth")
    for diameter in diameters:
        found, scores = 0, []
        for image, truth in pairs:
            height, width = truth.shape
            detections = detect_white_cells(image, **{**settings, "red_cell_diameter": diameter})
            central = [d for d in detections if d.contains((width - 1) / 2, (height - 1) / 2)]
            if central:
                found += 1
                mask = np.zeros_like(truth)
                x0, y0, x1, y1 = central[0].box
                mask[y0:y1, x0:x1] = central[0].mask
                scores.append(dice(mask, truth))
        print(f"  red_cell_diameter {diameter:g}: the central cell found in {found}/{len(pairs)} crops, "
              f"mean whole-cell Dice {np.mean(scores):.3f} over those")


def time_fields(images: list[np.ndarray], paths: list[str], small_cpu: float, settings: dict[str, float]) -> None:
    """Print the CPU time per 640x480 field and per 2592x1944 field, as rates and as decodes."""
    small_decode = cpu_per_call(read_image, paths)
    print(f"640x480 field: {small_cpu * 1e3:.1f} ms CPU per field = {1 / small_cpu:.0f} fields/s; "
          f"{small_cpu / small_decode:.1f} decodes (read_image: {small_decode * 1e3:.1f} ms CPU)")
    for name, side, scale, diameter in LARGE_FIELDS:
        per_field = side * side
        fields = [tiled_field(images[k * per_field : (k + 1) * per_field], side, scale) for k in range(REPEATS)]
        options = {**settings, "red_cell_diameter": diameter}
        with tempfile.TemporaryDirectory(prefix="leukoscope-bench-") as tmp:
            path = str(Path(tmp) / "field.jpg")
            cv2.imwrite(path, cv2.cvtColor(fields[0], cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
            decode = cpu_per_call(read_image, [path] * REPEATS)
        cpu = cpu_per_call(detect_white_cells, fields, **options)
        cells = sum(len(detect_white_cells(field, **options)) for field in fields) / REPEATS
        print(f"{LARGE[0]}x{LARGE[1]} field ({name}, red_cell_diameter {diameter:g}, "
              f"{cells:.0f} cells found per field): "
              f"{cpu * 1e3:.0f} ms CPU per field = {1 / cpu:.1f} fields/s; {cpu / decode:.1f} decodes "
              f"(read_image of that field as JPEG: {decode * 1e3:.0f} ms CPU)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("LEUKOSCOPE_SHARED_DATA", str(REPO.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=Path(default),
                        help="shared data folder (holding bccd/, all-idb2/)")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="NAME=VALUE",
                        help="a detect_white_cells setting other than its default (repeatable)")
    parser.add_argument("--allidb2-diameters", default="60,80,100",
                        help="red_cell_diameter values tried on ALL-IDB2 (comma-separated; empty to skip)")
    parser.add_argument("--overlays", type=Path,
                        help="write the BCCD fields with a miss or a false positive here as PNG")
    parser.add_argument("--no-timing", action="store_true", help="scores only: skip the CPU times (part 3)")
    args = parser.parse_args()
    settings = parse_settings(args.settings)
    bccd = args.data / "bccd"
    if not (bccd / "Annotations").is_dir():
        sys.exit(f"no BCCD at {bccd}; pass --data with the shared data folder")
    images, paths, small_cpu = score_bccd(bccd, settings, args.overlays)
    diameters = [float(value) for value in args.allidb2_diameters.split(",") if value.strip()]
    if diameters:
        check_allidb2(args.data / "all-idb2", diameters, settings)
    if not args.no_timing:
        time_fields(images, paths, small_cpu, settings)


if __name__ == "__main__":
    main()
