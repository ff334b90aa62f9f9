"""Splitting red cells off a non-convex white-cell mask; cutting masks at thin necks."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from leukoscope.segmentation.split import neck_pieces, solidity, split_touching


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


def _bar_joined(size: int = 200) -> np.ndarray:
    """Discs of radius 40 and 30 joined by a 10-pixel-wide bar (a neck: 10 < 0.5 * 2 * 30)."""
    mask = np.zeros((100, size), np.uint8)
    cv2.circle(mask, (50, 50), 40, 1, -1)
    cv2.circle(mask, (140, 50), 30, 1, -1)
    mask[45:55, 80:120] = 1
    return mask.astype(bool)


def test_thin_neck_cuts_two_pieces():
    mask = _bar_joined()
    pieces = neck_pieces(mask)
    assert pieces.max() == 2
    np.testing.assert_array_equal(pieces > 0, mask)  # every pixel is in a piece
    assert pieces[50, 50] != pieces[50, 140]
    big, small = (pieces == pieces[50, 50]).sum(), (pieces == pieces[50, 140]).sum()
    assert abs(big - math.pi * 40**2) < 0.1 * big and abs(small - math.pi * 30**2) < 0.15 * small


@pytest.mark.parametrize("mask", [
    _discs((40, 30, 20), (40, 50, 20), size=80),  # overlapping discs: the join is as wide as they are
    cv2.ellipse(np.zeros((120, 240), np.uint8), (120, 60), (100, 40), 0, 0, 360, 1, -1).astype(bool),
])
def test_wide_joins_and_convex_shapes_stay_whole(mask):
    assert neck_pieces(mask).max() == 1


def test_neck_pieces_edge_cases_and_invariance():
    assert not neck_pieces(np.zeros((5, 5), bool)).any()
    mask = _bar_joined()
    assert neck_pieces(mask, neck_ratio=0.0).max() == 1  # 0 never cuts
    flipped = neck_pieces(np.ascontiguousarray(mask[:, ::-1]))
    assert flipped.max() == 2 and flipped[50, 200 - 1 - 50] != flipped[50, 200 - 1 - 140]
