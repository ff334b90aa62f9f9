"""Channel extraction: definitions, orientation (stain bright), input checks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from leukoscope.segmentation.channels import check_rgb, extract_channel
from leukoscope.segmentation.choices import Channel

from .drawn_cells import NUCLEUS_RGB, SMEAR_RGB

PIXELS = np.array([[[10, 50, 200], [0, 100, 50], [255, 255, 255]]], np.uint8)


def test_hand_computed_channels():
    assert extract_channel(PIXELS, Channel.RED).tolist() == [[245, 255, 0]]
    assert extract_channel(PIXELS, Channel.GREEN).tolist() == [[205, 155, 0]]
    assert extract_channel(PIXELS, Channel.BLUE).tolist() == [[55, 205, 0]]
    # stain = blue - green + 128, clipped: 200-50+128 = 278 -> 255; 50-100+128 = 78; 128
    assert extract_channel(PIXELS, Channel.STAIN).tolist() == [[255, 78, 128]]
    # saturation = (max - min) / max: 190/200, 100/100, 0
    assert extract_channel(PIXELS, Channel.SATURATION).tolist() == [[242, 255, 0]]


def test_channels_follow_opencv_definitions():
    image = np.random.default_rng(0).integers(0, 256, (8, 9, 3)).astype(np.uint8)
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV_FULL)
    np.testing.assert_array_equal(extract_channel(image, "gray"), 255 - cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
    np.testing.assert_array_equal(extract_channel(image, "lab_l"), 255 - lab[..., 0])
    np.testing.assert_array_equal(extract_channel(image, "lab_a"), lab[..., 1])
    np.testing.assert_array_equal(extract_channel(image, "lab_b"), 255 - lab[..., 2])
    np.testing.assert_array_equal(extract_channel(image, "value"), 255 - hsv[..., 2])
    np.testing.assert_array_equal(extract_channel(image, "hue"), (hsv[..., 0].astype(int) + 32) % 256)


@pytest.mark.parametrize("channel", list(Channel))
def test_stained_nucleus_is_brighter_than_the_smear(channel):
    image = np.array([[NUCLEUS_RGB, SMEAR_RGB]], np.uint8)
    values = extract_channel(image, channel)
    assert values.shape == (1, 2) and values.dtype == np.uint8
    assert values[0, 0] > values[0, 1]


@pytest.mark.parametrize("bad, message", [
    (np.zeros((4, 4), np.uint8), "shape"),
    (np.zeros((4, 4, 4), np.uint8), "shape"),
    (np.zeros((4, 4, 3), np.float32), "uint8"),
])
def test_bad_input_is_named(bad, message):
    with pytest.raises(ValueError, match=message):
        check_rgb(bad)
    with pytest.raises(ValueError, match=message):
        extract_channel(bad, Channel.GRAY)


def test_unknown_channel():
    with pytest.raises(ValueError, match="not a valid Channel"):
        extract_channel(PIXELS, "purple")
