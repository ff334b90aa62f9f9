import math

import mahotas
import numpy as np
import pytest
import tifffile

from leukoscope.features.haralick import (
    COLUMNS,
    FEATURES,
    REGIONS,
    haralick_features,
    quantize,
)
from leukoscope.features.regions import crop_to_cell, region_mask, to_gray
from leukoscope.pipeline.imageio import read_image
from leukoscope.segmentation.expert_masks import decode_allidb2_mask


def _mahotas_reference(image, labels, *, distance, levels):
    """mahotas' own features on each masked crop: region pixels quantised to 1..levels, others 0."""
    q = quantize(to_gray(image), levels=levels)
    return {
        region: mahotas.features.haralick(np.where(region_mask(labels, region), q, 0), ignore_zeros=True,
                                          distance=distance, return_mean_ptp=True)
        for region in REGIONS
    }


def _assert_equal_to_mahotas(image, labels, *, distance, levels):
    got = haralick_features(image, labels, distance=distance, levels=levels)
    for region, expected in _mahotas_reference(image, labels, distance=distance, levels=levels).items():
        mine = [got[f"haralick_{f}_{region.value}_{a}"] for a in ("mean", "range") for f in FEATURES]
        np.testing.assert_allclose(mine, expected, rtol=1e-9, atol=1e-12, err_msg=region.value)


@pytest.mark.parametrize(("distance", "levels"), [(1, 64), (2, 32), (3, 255), (1, 8)])
def test_equal_to_mahotas_on_the_masked_crop(cell, distance, levels):
    image, labels = cell
    _assert_equal_to_mahotas(image, labels, distance=distance, levels=levels)


@pytest.mark.shared_data
def test_equal_to_mahotas_on_an_allidb2_cell(shared_data):
    image = read_image(shared_data / "all-idb2" / "img" / "Im131_0.tif")
    labels = decode_allidb2_mask(tifffile.imread(shared_data / "all-idb2" / "masks" / "Im131_0.tif"))
    _assert_equal_to_mahotas(image, labels, distance=1, levels=64)


def test_hand_computed_two_by_two():
    # grey 0 | 255 in both rows -> levels 1 | 2: horizontal pairs differ, vertical pairs agree
    image = np.repeat(np.array([[0, 255], [0, 255]], np.uint8)[..., None], 3, axis=2)
    f = haralick_features(image, np.full((2, 2), 2, np.uint8), levels=2)
    # contrast: 1 (0 deg), 1 (45), 0 (90), 1 (135)
    assert f["haralick_contrast_nucleus_mean"] == pytest.approx(0.75)
    assert f["haralick_contrast_nucleus_range"] == pytest.approx(1.0)
    assert f["haralick_angular_second_moment_nucleus_mean"] == pytest.approx(0.5)
    assert f["haralick_angular_second_moment_nucleus_range"] == pytest.approx(0.0)
    assert math.isnan(f["haralick_contrast_cytoplasm_mean"])  # no cytoplasm


def test_quantize_maps_onto_one_to_levels():
    gray = np.array([[0, 3, 4, 128, 255]], np.uint8)
    np.testing.assert_array_equal(quantize(gray, levels=64), [[1, 1, 2, 33, 64]])
    np.testing.assert_array_equal(quantize(gray, levels=255), [[1, 3, 4, 128, 255]])


def test_background_never_enters_the_texture(cell):
    image, labels = cell
    noisy = image.copy()
    rng = np.random.default_rng(1)
    noisy[labels == 0] = rng.integers(0, 256, size=(int((labels == 0).sum()), 3), dtype=np.uint8)
    assert haralick_features(noisy, labels) == haralick_features(image, labels)
    crop_image, crop_labels = crop_to_cell(image, labels)
    assert haralick_features(crop_image, crop_labels) == haralick_features(image, labels)


def test_degenerate_regions_are_nan_not_zero():
    image = np.zeros((6, 6, 3), np.uint8)
    image[..., 0] = np.arange(36, dtype=np.uint8).reshape(6, 6) * 7
    labels = np.zeros((6, 6), np.uint8)
    labels[1:5, 1:5] = 1
    labels[2:4, 2] = 2  # a one-pixel-wide nucleus: no horizontal pairs
    f = haralick_features(image, labels)
    assert list(f) == [c.name for c in COLUMNS]
    assert all(math.isnan(v) for k, v in f.items() if "_nucleus_" in k)
    assert not any(math.isnan(v) for k, v in f.items() if "_cell_" in k)
    flat = np.full((6, 6, 3), 90, np.uint8)
    assert all(math.isnan(v) for v in haralick_features(flat, labels).values())
    assert all(math.isnan(v) for v in haralick_features(image, np.zeros((6, 6), np.uint8)).values())


def test_options_are_checked():
    image, labels = np.zeros((4, 4, 3), np.uint8), np.ones((4, 4), np.uint8)
    with pytest.raises(ValueError, match="features.haralick_levels"):
        haralick_features(image, labels, levels=256)
    with pytest.raises(ValueError, match="features.haralick_distance"):
        haralick_features(image, labels, distance=0)
