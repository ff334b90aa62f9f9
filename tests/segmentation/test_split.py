"""Splitting red cells off a non-convex white-cell mask."""

from __future__ import annotations

import math

import cv2
import numpy as np

from leukoscope.segmentation.split import solidity, split_touching


def _discs(*discs: tuple[int, int, int], size: int = 80) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    for row, col, radius in discs:
        cv2.circle(mask, (col, row), radius, 1, -1)
    return mask.astype(bool)


def test_solidity_of_a_disc_and_of_an_l_shape():
    assert solidity(_discs((40, 40, 20))) > 0.95
    shape = np.zeros((10, 10), bool)
    shape[:, :2] = True
    shape[-2:, :] = True  # an L of 36 pixels: its convex hull holds the whole lower-left triangle
    assert solidity(shape) < 0.7
    assert math.isnan(solidity(np.zeros((4, 4), bool)))


def test_touching_red_cell_is_cut_off():
    white = _discs((40, 30, 18))
    red = _discs((40, 56, 10))
    cell = white | red
    nucleus = _discs((40, 30, 9))
    assert solidity(cell) < 0.9
    result = split_touching(cell, nucleus, min_solidity=0.9)
    assert result[nucleus].all()
    assert not result[40, 60]  # the red cell's centre is gone
    overlap = (result & white).sum() / white.sum()
    assert overlap > 0.95 and (result & ~white).sum() < 0.1 * red.sum()


def test_round_cell_or_split_off_is_unchanged():
    cell = _discs((40, 40, 20)) | _discs((40, 64, 8))
    nucleus = _discs((40, 40, 8))
    np.testing.assert_array_equal(split_touching(cell, nucleus, min_solidity=0.0), cell)
    disc = _discs((40, 40, 20))
    np.testing.assert_array_equal(split_touching(disc, nucleus, min_solidity=0.9), disc)


def test_no_nucleus_means_no_split():
    cell = _discs((40, 30, 18)) | _discs((40, 56, 10))
    np.testing.assert_array_equal(split_touching(cell, np.zeros_like(cell), min_solidity=0.9), cell)
