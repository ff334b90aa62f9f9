"""Mask clean-up: hole filling, small objects, the central component."""

from __future__ import annotations

import numpy as np
import pytest

from leukoscope.segmentation.cleanup import clean_mask, fill_holes, keep_central_component, remove_small_objects


def _mask(rows: list[str]) -> np.ndarray:
    return np.array([[c == "#" for c in row] for row in rows])


def test_fill_holes_fills_enclosed_background_only():
    mask = _mask([
        "#####..",
        "#...#..",
        "#####..",
        ".......",
        "###....",
        "#.#....",  # this gap touches the border: not a hole
    ])
    filled = fill_holes(mask)
    assert filled[1, 1:4].all()
    assert not filled[5, 1]
    assert (filled & ~mask).sum() == 3


def test_fill_holes_diagonal_gap_does_not_leak():
    # the inner pixel touches the outside only diagonally: 4-connected background, so a hole
    mask = _mask([
        ".#.",
        "#.#",
        ".#.",
    ])
    assert fill_holes(mask)[1, 1]


def test_remove_small_objects():
    mask = _mask([
        "##.....",
        "##...#.",
        ".......",
        "...###.",
        "...###.",
    ])
    kept = remove_small_objects(mask, min_size=4)
    assert kept.sum() == 4 + 6
    assert not kept[1, 5]


def test_keep_central_component_prefers_the_one_at_the_centre():
    mask = _mask([
        "##.....",
        "##.....",
        "...#...",
        ".......",
        "....###",
    ])
    central = keep_central_component(mask)
    assert central.sum() == 1 and central[3 - 1, 3]


def test_keep_central_component_nearest_when_centre_is_empty():
    mask = _mask([
        "#......",
        ".......",
        ".......",
        "....#..",
        ".......",
    ])
    # centre (2, 3): (3, 4) is at squared distance 2, (0, 0) at 13
    assert keep_central_component(mask)[3, 4] and keep_central_component(mask).sum() == 1


def test_keep_central_component_tie_goes_to_the_larger():
    mask = _mask([
        "#...#",
        "....#",
        ".....",
        ".....",
        ".....",
    ])
    # centre (2, 2): (0, 0) and (0, 4) both at squared distance 8; the right one is larger
    assert keep_central_component(mask).tolist() == _mask(["....#", "....#", ".....", ".....", "....."]).tolist()


def test_keep_central_component_min_size():
    mask = _mask([
        "##...",
        "##...",
        "...#.",
        ".....",
        ".....",
    ])
    assert keep_central_component(mask).sum() == 1
    assert keep_central_component(mask, min_size=2).sum() == 4


@pytest.mark.parametrize("shape", [(5, 5), (1, 1)])
def test_empty_masks_stay_empty(shape):
    empty = np.zeros(shape, bool)
    for result in (fill_holes(empty), remove_small_objects(empty, min_size=1), keep_central_component(empty),
                   clean_mask(empty, min_size=1)):
        assert result.shape == shape and not result.any()


def test_clean_mask_is_flip_invariant():
    rng = np.random.default_rng(3)
    mask = rng.random((31, 31)) > 0.55
    for flip in (np.flipud, np.fliplr, lambda m: np.rot90(m, 2)):
        np.testing.assert_array_equal(clean_mask(flip(mask), min_size=3), flip(clean_mask(mask, min_size=3)))


def test_three_dimensional_input_is_refused():
    with pytest.raises(ValueError, match=r"\(H, W\) mask"):
        fill_holes(np.zeros((3, 3, 3), bool))
