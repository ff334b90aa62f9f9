"""Contrast enhancement: percentile stretch, global equalisation, CLAHE."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from leukoscope.segmentation.choices import Enhancement
from leukoscope.segmentation.enhance import clahe, enhance_channel, equalize_histogram, stretch_contrast


def test_stretch_maps_percentiles_to_the_full_range():
    channel = np.array([[50, 60, 70, 80, 90]], np.uint8)
    # low 0 / high 100 percentiles are 50 and 90: 50 -> 0, 70 -> 127.5 -> 128, 90 -> 255
    assert stretch_contrast(channel, low=0, high=100).tolist() == [[0, 64, 128, 191, 255]]


def test_stretch_statistics_from_a_mask_only():
    channel = np.array([[0, 100, 200]], np.uint8)
    mask = np.array([[False, True, True]])
    # percentiles of {100, 200}: 100 -> 0, 200 -> 255; 0 clips to 0
    assert stretch_contrast(channel, low=0, high=100, mask=mask).tolist() == [[0, 0, 255]]


def test_stretch_of_a_constant_or_empty_region_changes_nothing():
    channel = np.full((3, 3), 9, np.uint8)
    np.testing.assert_array_equal(stretch_contrast(channel), channel)
    np.testing.assert_array_equal(stretch_contrast(channel, mask=np.zeros((3, 3), bool)), channel)


def test_stretch_checks_percentiles():
    with pytest.raises(ValueError, match="low < high"):
        stretch_contrast(np.zeros((2, 2), np.uint8), low=60, high=40)


def test_equalize_matches_opencv_without_mask():
    channel = np.random.default_rng(0).integers(20, 120, (16, 16)).astype(np.uint8)
    np.testing.assert_array_equal(equalize_histogram(channel), cv2.equalizeHist(channel))


def test_equalize_with_mask_uses_region_histogram():
    channel = np.array([[5, 10, 20, 30]], np.uint8)
    mask = np.array([[False, True, True, True]])
    # region cdf: 10 -> 1, 20 -> 2, 30 -> 3; (cdf - 1) / (3 - 1) * 255 -> 0, 128, 255; 5 is below: 0
    assert equalize_histogram(channel, mask=mask).tolist() == [[0, 0, 128, 255]]


def test_clahe_is_opencv_clahe():
    channel = np.random.default_rng(1).integers(0, 256, (32, 32)).astype(np.uint8)
    expected = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(channel)
    np.testing.assert_array_equal(clahe(channel), expected)


@pytest.mark.parametrize("method", list(Enhancement))
def test_dispatch_keeps_shape_and_dtype(method):
    channel = np.random.default_rng(2).integers(0, 256, (12, 10)).astype(np.uint8)
    out = enhance_channel(channel, method)
    assert out.shape == channel.shape and out.dtype == np.uint8
    if method is Enhancement.NONE:
        np.testing.assert_array_equal(out, channel)


def test_rgb_input_is_refused():
    with pytest.raises(ValueError, match="extract_channel"):
        enhance_channel(np.zeros((4, 4, 3), np.uint8), Enhancement.CLAHE)
