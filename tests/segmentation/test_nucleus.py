"""The nucleus threshold with its polarity and ring checks (the C-NMC failures of issue #15)."""

from __future__ import annotations

import numpy as np
import pytest

from leukoscope.segmentation.channels import extract_channel
from leukoscope.segmentation.choices import QCFlag
from leukoscope.segmentation.metrics import dice
from leukoscope.segmentation.nucleus import find_nucleus

from .drawn_cells import black_cell, discs, on_black

OPTIONS = {"channel": "stain", "method": "otsu", "enhance": "none", "min_size": 64}


def inverted_cell() -> tuple[np.ndarray, np.ndarray]:
    """Bright bluish cytoplasm (blue - green = 75) round a dark nucleus with less stain (40)."""
    labels = discs(96, (48, 48, 32, 1), (48, 52, 18, 2))
    return on_black(labels, {1: (150, 160, 235), 2: (70, 50, 90)}), labels


def halo_cell() -> tuple[np.ndarray, np.ndarray]:
    """A bright bluish rim (label 3, cytoplasm) round pale cytoplasm and a dark violet nucleus."""
    labels = discs(96, (48, 48, 34, 3), (48, 48, 30, 1), (48, 50, 16, 2))
    return on_black(labels, {3: (170, 180, 250), 1: (200, 185, 200), 2: (90, 45, 150)}), labels


def test_a_normal_nucleus_passes_unchanged():
    image, truth = black_cell()
    found = find_nucleus(image, truth > 0, **OPTIONS)
    assert found.flag is None
    assert dice(found.mask, truth == 2) > 0.98


def test_brighter_nucleus_is_thresholded_again_on_luminance():
    image, truth = inverted_cell()
    stain = extract_channel(image, "stain")
    assert stain[48, 20] > stain[48, 52]  # the stain channel is higher on the cytoplasm
    found = find_nucleus(image, truth > 0, **OPTIONS)
    assert found.flag is QCFlag.NUCLEUS_INVERTED_FIXED
    assert dice(found.mask, truth == 2) > 0.98


def test_ring_of_rim_and_nucleus_is_corrected():
    image, truth = halo_cell()
    found = find_nucleus(image, truth > 0, **OPTIONS)
    assert found.flag is QCFlag.NUCLEUS_INVERTED_FIXED
    assert dice(found.mask, truth == 2) > 0.98


def test_ring_that_no_channel_fixes_is_flagged():
    labels = discs(96, (48, 48, 34, 2), (48, 48, 20, 1))  # a thick dark rim, a pale inside
    image = on_black(labels, {2: (60, 40, 140), 1: (200, 190, 210)})
    found = find_nucleus(image, labels > 0, **OPTIONS)
    assert found.flag is QCFlag.RING_NUCLEUS
    assert found.mask.sum() == (labels > 0).sum()  # the rim filled: the whole cell


@pytest.mark.parametrize("channel", ["stain", "gray"])
def test_fallback_is_another_channel(channel):
    image, truth = inverted_cell()
    found = find_nucleus(image, truth > 0, **{**OPTIONS, "channel": channel})
    assert dice(found.mask, truth == 2) > 0.98  # gray is right first time; stain falls back to gray
