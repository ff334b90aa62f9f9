"""Triangle (Zack) and Otsu thresholds: hand-computed histograms, scikit-image agreement."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.filters

from leukoscope.segmentation.channels import extract_channel
from leukoscope.segmentation.choices import Channel, ThresholdMethod
from leukoscope.segmentation.threshold import (
    compute_threshold,
    histogram,
    threshold_otsu,
    threshold_otsu3,
    threshold_triangle,
    threshold_zack,
)


def _values(counts: dict[int, int], dtype=np.uint8) -> np.ndarray:
    return np.concatenate([np.full(n, level, dtype=dtype) for level, n in counts.items()])


def test_triangle_hand_computed():
    # Peak 8 at level 10, tail 4, 2, 1, 1, 1 up to level 15. The longer tail is on the right,
    # so it is mirrored: the line runs from (level 15, height 0) to the peak (level 10, 8).
    # For the tail levels 15, 14, 13, 12, 11 (x = 0..4, counts 1, 1, 1, 2, 4) the distance
    # below the line is 8x - 5 count = -5, 3, 11, 14, 12: the farthest is level 12.
    values = _values({10: 8, 11: 4, 12: 2, 13: 1, 14: 1, 15: 1})
    assert threshold_triangle(values) == 12.0
    assert skimage.filters.threshold_triangle(values) == 12


def test_triangle_left_tail_is_not_mirrored():
    # Mirror image of the test above: peak at 15, tail towards 10 -> threshold 13.
    values = _values({15: 8, 14: 4, 13: 2, 12: 1, 11: 1, 10: 1})
    assert threshold_triangle(values) == 12.0 + 1.0
    assert skimage.filters.threshold_triangle(values) == 13


def test_otsu_hand_computed():
    # Levels 0 (x2), 4 (x1), 10 (x2). Split after 0: 2*3*(8-0)^2 = 384; after 4:
    # 3*2*(10-4/3)^2 = 450.7, larger; so the threshold is 4 (foreground > 4).
    values = _values({0: 2, 4: 1, 10: 2})
    assert threshold_otsu(values) == 4.0
    assert skimage.filters.threshold_otsu(values) == 4


def test_zack_is_triangle():
    assert threshold_zack is threshold_triangle
    values = np.random.default_rng(1).integers(0, 256, 500).astype(np.uint8)
    assert compute_threshold(values, "zack") == compute_threshold(values, ThresholdMethod.TRIANGLE)


@pytest.mark.parametrize("method", list(ThresholdMethod))
def test_constant_input_gives_empty_foreground(method):
    values = np.full((4, 4), 7, np.uint8)
    threshold = compute_threshold(values, method)
    assert threshold == 7.0
    assert not np.any(values > threshold)


@pytest.mark.parametrize("method", list(ThresholdMethod))
def test_empty_input_is_refused(method):
    with pytest.raises(ValueError, match="zero pixels"):
        compute_threshold(np.array([], np.uint8), method)


def test_nan_is_refused():
    with pytest.raises(ValueError, match="NaN"):
        threshold_otsu(np.array([0.0, np.nan, 1.0]))


def test_histogram_of_integers_has_one_bin_per_value():
    counts, centers = histogram(np.array([3, 5, 5], np.int32))
    assert counts.tolist() == [1, 0, 2]
    assert centers.tolist() == [3.0, 4.0, 5.0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_integer_dtypes_agree_and_floats_match_scikit_image(seed):
    rng = np.random.default_rng(seed)
    values = np.concatenate([rng.normal(60, 10, 3000), rng.normal(170, 15, 800)]).clip(0, 255)
    as_uint8 = values.round().astype(np.uint8)
    as_float = values / 255.0
    bin_width = (as_float.max() - as_float.min()) / 256
    for func, reference in ((threshold_otsu, skimage.filters.threshold_otsu),
                            (threshold_triangle, skimage.filters.threshold_triangle)):
        assert func(as_uint8) == func(as_uint8.astype(np.uint16)) == func(as_uint8.astype(np.int64))
        assert abs(func(as_float) - reference(as_float)) <= bin_width + 1e-12


@pytest.mark.shared_data
@pytest.mark.parametrize("channel", [Channel.SATURATION, Channel.GREEN, Channel.LAB_B, Channel.STAIN])
def test_agrees_with_scikit_image_on_real_images(shared_data, channel):
    from leukoscope.pipeline.imageio import read_image

    paths = sorted((shared_data / "all-idb2" / "img").glob("*.tif"))[::13]
    paths += sorted((shared_data / "zheng-wbc" / "dataset2").glob("*.bmp"))[::10]
    assert paths
    for path in paths:
        values = extract_channel(read_image(path), channel)
        assert abs(threshold_triangle(values) - skimage.filters.threshold_triangle(values)) <= 1, path.name
        assert abs(threshold_otsu(values) - skimage.filters.threshold_otsu(values)) <= 1, path.name


def test_otsu3_hand_computed():
    # Three equal spikes at 10, 20, 60: the classes are the spikes, so the thresholds are
    # the last level of the first two classes (10 and 20), as in scikit-image.
    values = _values({10: 5, 20: 5, 60: 5})
    assert threshold_otsu3(values) == (10.0, 20.0)
    assert tuple(skimage.filters.threshold_multiotsu(values, classes=3)) == (10, 20)


@pytest.mark.parametrize("seed", range(5))
def test_otsu3_agrees_with_scikit_image(seed):
    rng = np.random.default_rng(seed)
    parts = [rng.normal(rng.uniform(30, 200), rng.uniform(4, 20), rng.integers(200, 3000)) for _ in range(3)]
    values = np.clip(np.concatenate(parts), 0, 255).astype(np.uint8)
    assert threshold_otsu3(values) == tuple(float(t) for t in skimage.filters.threshold_multiotsu(values, classes=3))


def test_otsu3_degenerate_inputs():
    assert threshold_otsu3(np.full(7, 9, np.uint8)) == (9.0, 9.0)
    assert threshold_otsu3(_values({3: 2, 4: 5})) == (3.0, 4.0)
