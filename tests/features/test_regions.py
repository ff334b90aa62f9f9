import numpy as np
import pytest

from leukoscope.features.regions import (
    Region,
    RegionStatus,
    check_inputs,
    crop_to_cell,
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
    with pytest.raises(ValueError, match="labels must be an"):
        check_inputs(image, np.zeros((4, 5), np.int64))


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
    gray = np.array([[9, 5, 5], [9, 7, 9]], np.uint8)
    assert region_mask(labels, Region.CELL).sum() == 3
    assert region_mask(labels, Region.NUCLEUS).sum() == 1
    statuses = region_statuses(gray, labels)
    assert statuses == {Region.NUCLEUS: RegionStatus.ONE_PIXEL, Region.CYTOPLASM: RegionStatus.FLAT,
                        Region.CELL: RegionStatus.OK}
    assert region_statuses(gray, np.zeros_like(labels))[Region.CELL] is RegionStatus.EMPTY
