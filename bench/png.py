"""PNG encoding of the per-cell files: leukoscope's encoder (ISA-L, or zlib) against OpenCV's.

    .venv/bin/python bench/png.py [--cells 40]

Draws ``--cells`` demo cells (450x450, C-NMC layout), segments them, and encodes each cell's
label mask and overlay (the window round the cell, stretched, with its legend, as the segment
stage writes them) with :func:`leukoscope.pipeline.png.encode_png` (ISA-L's deflate where
``isal`` is installed, and with zlib's run-length strategy) and with ``cv2.imencode``. Prints
the CPU milliseconds per file and the mean file size of each, and the ratio of each encoder's
time to OpenCV's, measured in the same run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from leukoscope.pipeline import png
from leukoscope.pipeline.demo import generate_demo
from leukoscope.pipeline.imageio import read_image
from leukoscope.segmentation.cell import segment_cell
from leukoscope.segmentation.overlay import cell_window, draw_overlay


def timed(encode: Callable[[np.ndarray], bytes], images: list[np.ndarray], repeats: int = 5) -> tuple[float, float]:
    """CPU milliseconds per image (best of ``repeats``) and mean bytes of ``encode`` over ``images``."""
    best = np.inf
    for _ in range(repeats):
        start = time.process_time()
        sizes = [len(encode(image)) for image in images]
        best = min(best, time.process_time() - start)
    return 1e3 * best / len(images), float(np.mean(sizes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=40, help="demo cells (default 40)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="leukoscope-png-") as tmp:
        generate_demo(Path(tmp), subjects=4, cells=args.cells, jobs=1, quiet=True)
        masks, overlays = [], []
        for path in sorted(Path(tmp).rglob("*.bmp")):
            image = read_image(path)
            labels = segment_cell(image).labels
            window = cell_window(labels)
            masks.append(labels)
            overlays.append(draw_overlay(image[window], labels[window], stretch=True, legend=True))

    def opencv(image: np.ndarray) -> bytes:
        return cv2.imencode(".png", image if image.ndim == 2 else image[..., ::-1])[1].tobytes()

    def with_zlib(image: np.ndarray) -> bytes:
        saved, png.ISAL_ZLIB = png.ISAL_ZLIB, None
        try:
            return png.encode_png(image)
        finally:
            png.ISAL_ZLIB = saved

    encoders = {"cv2.imencode": opencv, "encode_png, zlib": with_zlib}
    if png.ISAL_ZLIB is not None:
        encoders["encode_png, ISA-L (default)"] = png.encode_png
    print(f"{len(masks)} demo cells; CPU ms per file (best of 5), mean size; ratio to cv2.imencode's time")
    for kind, images in (("mask", masks), ("overlay", overlays)):
        measured = {name: timed(encode, images) for name, encode in encoders.items()}
        for name, (ms, size) in measured.items():
            print(f"{kind:<8} {name:<28} {ms:6.2f} ms {size / 1024:7.1f} KB   {ms / measured['cv2.imencode'][0]:5.2f}x")


if __name__ == "__main__":
    main()
