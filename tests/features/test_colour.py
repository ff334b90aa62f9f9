import math

import numpy as np
import pytest
from skimage.color import deltaE_cie76, rgb2lab

from leukoscope.features.colour import COLUMNS, colour_features

BLUE, RED = (0, 0, 255), (255, 0, 0)


def _two_colour_cell(nucleus_rgb, cytoplasm_rgb):
    image = np.zeros((4, 4, 3), np.uint8)
    labels = np.zeros((4, 4), np.uint8)
    labels[:, :2], labels[:, 2:3] = 2, 1
    image[labels == 2], image[labels == 1] = nucleus_rgb, cytoplasm_rgb
    return image, labels


def test_pure_blue_nucleus_in_red_cytoplasm():
    f = colour_features(*_two_colour_cell(BLUE, RED))
    assert list(f) == [c.name for c in COLUMNS]
    # OpenCV's 8-bit hue has 256 steps per turn: 240 degrees is code 171 = 240.47 degrees
    assert f["colour_hue_mean_nucleus"] == pytest.approx(171 * 360 / 256)
    assert f["colour_hue_mean_cytoplasm"] == 0.0
    assert f["colour_hue_spread_nucleus"] == pytest.approx(0.0, abs=1e-12)
    assert f["colour_hue_difference_nucleus_cytoplasm"] == pytest.approx(120.0, abs=360 / 256)
    assert f["colour_saturation_mean_nucleus"] == 1.0 and f["colour_saturation_std_nucleus"] == 0.0
    assert f["colour_saturation_difference_nucleus_cytoplasm"] == 0.0
    assert (f["colour_blue_ratio_mean_nucleus"], f["colour_blue_ratio_mean_cytoplasm"]) == (1.0, 0.0)
    assert f["colour_blue_ratio_mean_cell"] == pytest.approx(8 / 12)
    lab_blue, lab_red = rgb2lab(np.array([[BLUE]], np.uint8))[0, 0], rgb2lab(np.array([[RED]], np.uint8))[0, 0]
    # 8-bit L*a*b*: a* and b* in whole units (OpenCV clips b* of pure blue at -127)
    assert f["colour_chroma_mean_nucleus"] == pytest.approx(math.hypot(lab_blue[1], lab_blue[2]), rel=0.02)
    assert f["colour_delta_e_nucleus_cytoplasm"] == pytest.approx(float(deltaE_cie76(lab_blue, lab_red)), rel=0.02)
    assert f["colour_lightness_difference_nucleus_cytoplasm"] == pytest.approx(lab_blue[0] - lab_red[0], abs=0.5)


def test_hue_mean_is_circular():
    image, labels = _two_colour_cell((255, 0, 43), RED)
    image[:, 0] = (255, 43, 0)  # nucleus: half at about -10 degrees, half at about +10
    hue = colour_features(image, labels)["colour_hue_mean_nucleus"]
    assert min(hue, 360.0 - hue) < 1e-9  # red, not the cyan of an arithmetic mean (180)


def test_grey_pixels_have_no_hue_and_empty_regions_are_nan():
    f = colour_features(*_two_colour_cell((90, 90, 90), RED))
    assert math.isnan(f["colour_hue_mean_nucleus"]) and math.isnan(f["colour_hue_difference_nucleus_cytoplasm"])
    assert f["colour_saturation_mean_nucleus"] == 0.0 and f["colour_blue_ratio_mean_nucleus"] == pytest.approx(1 / 3)
    image, labels = _two_colour_cell(BLUE, RED)
    labels[labels == 2] = 1  # no nucleus left
    f = colour_features(image, labels)
    assert all(math.isnan(v) for k, v in f.items() if "nucleus" in k)
    assert not math.isnan(f["colour_hue_mean_cell"])


def test_results_do_not_depend_on_memory_alignment(cell):
    """Same bits whatever the buffer offset (the CSV must not change with the job count)."""
    image, labels = cell
    results = set()
    for offset in range(8):
        buffer = np.empty(image.size + 8, np.uint8)
        moved = buffer[offset:offset + image.size].reshape(image.shape)
        moved[...] = image
        results.add(tuple(colour_features(moved, labels).values()))
    assert len(results) == 1
