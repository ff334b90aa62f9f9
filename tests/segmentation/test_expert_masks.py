"""Decoding the ALL-IDB2 and Zheng expert-mask formats."""

from __future__ import annotations

import numpy as np
import pytest

from leukoscope.segmentation.expert_masks import (
    MaskFormatError,
    decode_allidb2_mask,
    decode_expert_mask,
    decode_zheng_mask,
)

WHITE, BLUE, CYAN = (255, 255, 255), (0, 0, 255), (0, 255, 255)


def test_allidb2_colours():
    mask = np.array([[WHITE, BLUE, CYAN], [CYAN, CYAN, WHITE]], np.uint8)
    assert decode_allidb2_mask(mask).tolist() == [[0, 1, 2], [2, 2, 0]]
    assert decode_expert_mask(mask).tolist() == [[0, 1, 2], [2, 2, 0]]


def test_zheng_levels_and_stray_values_round_to_the_nearest():
    mask = np.array([[0, 128, 255], [7, 44, 250], [120, 140, 200]], np.uint8)
    assert decode_zheng_mask(mask).tolist() == [[0, 1, 2], [0, 0, 2], [1, 1, 2]]
    assert decode_expert_mask(mask).tolist() == decode_zheng_mask(mask).tolist()


def test_grey_mask_saved_as_rgb_is_zheng():
    grey = np.array([[0, 128, 255]], np.uint8)
    assert decode_expert_mask(np.repeat(grey[..., None], 3, axis=2)).tolist() == [[0, 1, 2]]


def test_a_photograph_is_not_a_mask():
    image = np.random.default_rng(0).integers(0, 256, (20, 20, 3)).astype(np.uint8)
    with pytest.raises(MaskFormatError, match="match none of the ALL-IDB2 mask colours"):
        decode_expert_mask(image)


def test_wrong_shapes():
    with pytest.raises(MaskFormatError, match="single-channel"):
        decode_zheng_mask(np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(MaskFormatError, match="colour image"):
        decode_allidb2_mask(np.zeros((2, 2), np.uint8))
