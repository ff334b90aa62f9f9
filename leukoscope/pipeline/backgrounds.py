"""The background kind of a dataset's cells, from a sample of its images."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from leukoscope.classifiers.shift import background_shares
from leukoscope.pipeline.imageio import ImageReadError, read_image
from leukoscope.segmentation.cell import detect_background

SAMPLE_IMAGES = 100


def background_of_files(paths: Sequence[str], *, limit: int = SAMPLE_IMAGES) -> dict[str, float]:
    """Share of each background kind (``black``, ``smear``) among up to ``limit`` images spread
    evenly over ``paths`` (:func:`~leukoscope.segmentation.cell.detect_background`; unreadable
    images are skipped)."""
    if not len(paths):
        return {}
    picked = np.unique(np.linspace(0, len(paths) - 1, min(limit, len(paths))).round().astype(int))
    kinds = []
    for i in picked:
        try:
            kinds.append(detect_background(read_image(paths[i])).value)
        except ImageReadError:
            continue
    return background_shares(kinds)


__all__ = ["SAMPLE_IMAGES", "background_of_files"]
