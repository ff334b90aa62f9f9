"""White-cell detection in whole smear fields: BCCD scores and CPU time per field.

Runs :func:`leukoscope.segmentation.fields.detect_white_cells` with its default settings
(or those changed with ``--set``) on the 292 BCCD fields (640x480, Pascal-VOC boxes read by
:func:`leukoscope.pipeline.fields_sources.load_voc`) and prints, against the white-cell boxes:

- recall, precision and F1 at IoU >= 0.5 and at IoU >= 0.3 (one-to-one optimal matching,
  :mod:`leukoscope.segmentation.detection_metrics`), and the fields with a miss or a false
  positive (``--overlays DIR`` writes those fields as PNG with the boxes and outlines drawn);
- the CPU time of one detection on a 640x480 field, and on 2592x1944 fields (ALL-IDB1's size)
  built two ways: 4x4 BCCD fields tiled (2560x1920, reflected at the border to 2592x1944: the
  cells keep their size and a field holds about 16 white cells, like ALL-IDB1's crowded
  fields), and one BCCD field upscaled 4.05 times (``red_cell_diameter`` scaled with it: the
  same cells at four times the magnification). Each is given as a rate and as a ratio to the
  bare decoding of a JPEG of the same size (``read_image``), which is steadier than the rate
  on a shared machine. CPU time (``time.process_time``, one process) does not count time
  spent waiting for a core.

Usage::

    .venv/bin/python bench/fields.py [--data ../shared/data] [--set cytoplasm_level=0.2] [--overlays DIR]

Takes about a minute on one core.
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
from leukoscope.pipeline.imageio import read_image
from leukoscope.segmentation.detection_metrics import DetectionCounts, detection_counts
from leukoscope.segmentation.fields import detect_white_cells
from leukoscope.segmentation.overlay import draw_field_overlay

REPO = Path(__file__).resolve().parents[1]
IOUS = (0.5, 0.3)
LARGE = (2592, 1944)  # ALL-IDB1's field, width x height
DEFAULT_DIAMETER = 100.0  # detect_white_cells' default red_cell_diameter
REPEATS = 5  # 2592x1944 fields timed per construction


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


def cpu_per_call(function, arguments: list) -> float:
    """Mean CPU seconds of ``function(argument)`` over the arguments."""
    start = time.process_time()
    for argument in arguments:
        function(argument)
    return (time.process_time() - start) / len(arguments)


def tiled_field(images: list[np.ndarray]) -> np.ndarray:
    """16 fields of 640x480 as a 4x4 mosaic, reflected at the border to 2592x1944."""
    rows = [np.hstack(images[row * 4 : row * 4 + 4]) for row in range(4)]
    mosaic = np.vstack(rows)
    bottom, right = LARGE[1] - mosaic.shape[0], LARGE[0] - mosaic.shape[1]
    return cv2.copyMakeBorder(mosaic, 0, bottom, 0, right, cv2.BORDER_REFLECT_101)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("LEUKOSCOPE_SHARED_DATA", str(REPO.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=Path(default), help="shared data folder (holding bccd/)")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="NAME=VALUE",
                        help="a detect_white_cells setting other than its default (repeatable)")
    parser.add_argument("--overlays", type=Path, help="write the fields with a miss or a false positive here as PNG")
    args = parser.parse_args()
    settings = parse_settings(args.settings)
    bccd = args.data / "bccd"
    if not (bccd / "Annotations").is_dir():
        sys.exit(f"no BCCD at {bccd}; pass --data with the shared data folder")
    source = load_voc(bccd)
    truth = {field_id: group[["x0", "y0", "x1", "y1"]].to_numpy() for field_id, group in source.annotations.groupby("field_id")}
    images = [read_image(path) for path in source.fields["path"]]

    counts = {iou: DetectionCounts(0, 0, 0) for iou in IOUS}
    errors = []
    start = time.process_time()
    found = [detect_white_cells(image, **settings) for image in images]
    small_cpu = (time.process_time() - start) / len(images)
    for field_id, image, detections in zip(source.fields["field_id"], images, found):
        boxes = np.array([d.box for d in detections]).reshape(-1, 4)
        annotated = truth.get(field_id, np.zeros((0, 4)))
        field_counts = {iou: detection_counts(boxes, annotated, min_iou=iou) for iou in IOUS}
        counts = {iou: counts[iou] + field_counts[iou] for iou in IOUS}
        main_counts = field_counts[IOUS[0]]
        if main_counts.matched < max(main_counts.detected, main_counts.truth):
            errors.append(f"{field_id} (missed {main_counts.truth - main_counts.matched}, "
                          f"false {main_counts.detected - main_counts.matched})")
            if args.overlays:
                args.overlays.mkdir(parents=True, exist_ok=True)
                picture = draw_field_overlay(image, detections, truth=[tuple(b) for b in annotated])
                cv2.imwrite(str(args.overlays / f"{field_id}.png"), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))

    small_decode = cpu_per_call(read_image, list(source.fields["path"]))
    tiles = [tiled_field(images[k * 16 : k * 16 + 16]) for k in range(REPEATS)]
    factor = LARGE[0] / images[0].shape[1]
    upscaled = [cv2.resize(images[k], LARGE, interpolation=cv2.INTER_CUBIC) for k in range(REPEATS)]
    with tempfile.TemporaryDirectory(prefix="leukoscope-bench-") as tmp:
        large_path = str(Path(tmp) / "field.jpg")
        cv2.imwrite(large_path, cv2.cvtColor(tiles[0], cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        large_decode = cpu_per_call(read_image, [large_path] * REPEATS)
    tiled_cpu = cpu_per_call(lambda image: detect_white_cells(image, **settings), tiles)
    diameter = settings.get("red_cell_diameter", DEFAULT_DIAMETER) * factor
    upscaled_cpu = cpu_per_call(lambda image: detect_white_cells(image, **{**settings, "red_cell_diameter": diameter}), upscaled)
    cells = sum(len(detect_white_cells(image, **settings)) for image in tiles) / REPEATS

    print(f"BCCD: {len(images)} fields of {images[0].shape[1]}x{images[0].shape[0]}, "
          f"{counts[IOUS[0]].truth} annotated white cells; settings: {settings or 'defaults'}")
    for iou in IOUS:
        c = counts[iou]
        print(f"IoU >= {iou}: recall {c.recall:.3f} ({c.matched}/{c.truth}), "
              f"precision {c.precision:.3f} ({c.matched}/{c.detected}), F1 {c.f1:.3f}")
    print(f"fields with a miss or a false positive at IoU >= {IOUS[0]}: {', '.join(errors) or 'none'}")
    print(f"640x480 field: {small_cpu * 1e3:.1f} ms CPU per field = {1 / small_cpu:.0f} fields/s; "
          f"{small_cpu / small_decode:.1f} decodes (read_image: {small_decode * 1e3:.1f} ms CPU)")
    for name, cpu in ((f"4x4 tiled BCCD fields, {cells:.0f} cells each", tiled_cpu),
                      (f"one BCCD field upscaled {factor:.2f}x, red_cell_diameter {diameter:.0f}", upscaled_cpu)):
        print(f"{LARGE[0]}x{LARGE[1]} field ({name}): {cpu * 1e3:.0f} ms CPU per field = {1 / cpu:.1f} fields/s; "
              f"{cpu / large_decode:.1f} decodes (read_image of a {LARGE[0]}x{LARGE[1]} JPEG: {large_decode * 1e3:.0f} ms CPU)")


if __name__ == "__main__":
    main()
