import numpy as np
import pytest

from leukoscope.features.regions import (
    CellImage,
    Region,
    RegionStatus,
    check_inputs,
    crop_to_cell,
    joint_histogram,
    label_histograms,
    region_mask,
    region_statuses,
)


def test_check_inputs_names_the_problem():
    image = np.zeros((4, 5, 3), np.uint8)
    check_inputs(image, np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        check_inputs(image.astype(np.float32), np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError, match="4x4 but the image is 4x5"):
        check_inputs(image, np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match=r"values \[3, 255\]"):
        check_inputs(image, np.array([[0, 1, 2, 3, 255]] * 4, np.uint8))
    with pytest.raises(ValueError, match="labels must be an integer or boolean array, got float32"):
        check_inputs(image, np.zeros((4, 5), np.float32))


def test_check_inputs_returns_uint8_labels_of_any_integer_or_bool_mask():
    image = np.zeros((2, 3, 3), np.uint8)
    labels = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    assert check_inputs(image, labels) is labels  # uint8 passes through, not copied
    for dtype in (np.int32, np.int64, np.uint16):
        np.testing.assert_array_equal(check_inputs(image, labels.astype(dtype)), labels)
    assert check_inputs(image, labels > 0).dtype == np.uint8
    assert CellImage(image, labels.astype(np.int32)).labels.dtype == np.uint8


def test_crop_to_cell_keeps_one_pixel_margin_inside_the_image():
    labels = np.zeros((6, 7), np.uint8)
    labels[0, 2] = 1
    labels[3, 4] = 2
    image = np.arange(6 * 7 * 3, dtype=np.uint8).reshape(6, 7, 3)
    crop_image, crop_labels = crop_to_cell(image, labels)
    assert crop_labels.shape == (5, 5)  # rows 0..4 (no row -1), cols 1..5
    np.testing.assert_array_equal(crop_image, image[0:5, 1:6])
    empty_image, empty_labels = crop_to_cell(image, np.zeros((6, 7), np.uint8))
    assert empty_image.shape == (0, 0, 3) and empty_labels.shape == (0, 0)


def test_region_masks_and_statuses():
    labels = np.array([[0, 1, 1], [0, 2, 0]], np.uint8)
    image = np.repeat(np.array([[9, 5, 5], [9, 7, 9]], np.uint8)[..., None], 3, axis=2)  # grey = these values
    assert region_mask(labels, Region.CELL).sum() == 3
    assert region_mask(labels, Region.NUCLEUS).sum() == 1
    statuses = region_statuses(CellImage(image, labels))
    assert statuses == {Region.NUCLEUS: RegionStatus.ONE_PIXEL, Region.CYTOPLASM: RegionStatus.FLAT,
                        Region.CELL: RegionStatus.OK}
    assert region_statuses(CellImage(image, np.zeros_like(labels)))[Region.CELL] is RegionStatus.EMPTY


def test_joint_histogram_counts_pairs_like_bincount():
    rng = np.random.default_rng(0)
    first = rng.integers(0, 3, (40, 50)).astype(np.uint16)
    second = rng.integers(0, 700, (40, 50)).astype(np.uint16)
    expected = np.bincount(first.ravel().astype(int) * 700 + second.ravel(), minlength=3 * 700).reshape(3, 700)
    np.testing.assert_array_equal(joint_histogram(first, second, bins=(3, 700)), expected)
    # strided views (as the Haralick pairs use) and empty arrays
    np.testing.assert_array_equal(joint_histogram(first[1:, ::2], first[:-1, 1::2], bins=(3, 3)).sum(), 39 * 25)
    assert joint_histogram(first[:0], first[:0], bins=(3, 4)).shape == (3, 4)


def test_label_histograms_hand_counted():
    labels = np.array([[0, 1, 1], [0, 2, 0]], np.uint8)
    channel = np.array([[9, 5, 5], [9, 7, 255]], np.uint8)
    hist = label_histograms(labels, channel)
    assert hist.shape == (3, 256) and hist.dtype == np.int64
    assert hist[0, 9] == 2 and hist[0, 255] == 1 and hist[1, 5] == 2 and hist[2, 7] == 1 and hist.sum() == 6
    assert label_histograms(labels, np.zeros_like(channel))[:, 0].tolist() == [3, 2, 1]


def test_cell_image_converts_once_and_checks_its_inputs():
    image = np.full((4, 5, 3), 200, np.uint8)
    cell = CellImage(image, np.ones((4, 5), np.uint8))
    assert cell.gray is cell.gray and cell.lab is cell.lab and cell.hsv is cell.hsv
    assert cell.histograms("gray") is cell.histograms("gray") and cell.histograms("gray")[1, 200] == 20
    np.testing.assert_array_equal(cell.planes["green"], image[..., 1])
    with pytest.raises(ValueError, match="4x4 but the image is 4x5"):
        CellImage(image, np.ones((4, 4), np.uint8))
