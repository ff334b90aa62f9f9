"""Surround features: colour outside the cell mask, black padding left out."""

from __future__ import annotations

import numpy as np
import pytest

from leukoscope.features.registry import FAMILIES
from leukoscope.features.surround import SURROUND_COLUMNS, surround_features, surround_pixels


def crop() -> tuple[np.ndarray, np.ndarray]:
    image = np.zeros((3, 3, 3), np.uint8)
    image[0, :] = (100, 50, 20)
    image[1, :] = (200, 60, 40)
    image[1, 2] = (5, 250, 250)    # the cell: never measured
    labels = np.zeros((3, 3), np.uint8)
    labels[1, 2] = 2
    image[2, 1] = (10, 10, 10)     # black (every channel <= 10): padding, left out
    image[2, 0] = (11, 0, 0)       # not black: measured
    image[2, 2] = (0, 0, 0)
    return image, labels


def test_values_worked_out_by_hand():
    image, labels = crop()
    assert len(surround_pixels(image, labels)) == 6
    f = surround_features(image, labels)
    assert list(f) == list(SURROUND_COLUMNS) and len(f) == 15
    red = np.array([100, 100, 100, 200, 200, 11.0])
    assert f["surround_mean_red"] == pytest.approx(red.mean())
    assert f["surround_std_red"] == pytest.approx(red.std())
    assert f["surround_p50_red"] == pytest.approx(100.0)  # sorted 11, 100, 100, 100, 200, 200
    assert f["surround_p10_red"] == pytest.approx(11 + 0.5 * 89)  # position 0.5 between 11 and 100
    assert f["surround_mean_blue"] == pytest.approx((3 * 20 + 2 * 40) / 6)


def test_invariant_to_what_is_inside_the_cell_and_to_black_padding():
    image, labels = crop()
    base = surround_features(image, labels)
    image[1, 2] = (0, 0, 255)
    padded = np.zeros((5, 5, 3), np.uint8)
    padded[1:4, 1:4] = image
    labels_padded = np.zeros((5, 5), np.uint8)
    labels_padded[1:4, 1:4] = labels
    assert surround_features(image, labels) == base
    assert surround_features(padded, labels_padded) == pytest.approx(base)


def test_no_surround_gives_nan_and_it_is_not_a_registered_family():
    image, labels = crop()
    f = surround_features(image, np.full_like(labels, 1))
    assert all(np.isnan(v) for v in f.values())
    assert all(not c.name.startswith("surround") for spec in FAMILIES.values() for c in spec.columns)
    with pytest.raises(ValueError, match="labels are 2x3 but the image is 3x3"):
        surround_features(image, labels[:2])


def test_histogram_statistics_equal_numpy_on_the_surround_pixels():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    labels = np.zeros((40, 50), np.uint8)
    labels[10:30, 15:35] = 1
    pixels = surround_pixels(image, labels).astype(float)
    expected = np.vstack([pixels.mean(axis=0), pixels.std(axis=0), np.percentile(pixels, [10, 50, 90], axis=0)])
    got = np.array(list(surround_features(image, labels).values())).reshape(3, 5).T
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
