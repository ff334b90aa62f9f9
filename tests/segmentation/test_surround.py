"""The surround-of-smear tests and strip of a cut-out."""

from __future__ import annotations

import numpy as np
import pytest

from leukoscope.pipeline.synthetic import Stain, synthesize_cell
from leukoscope.segmentation.metrics import dice
from leukoscope.segmentation.surround import WHITE_GREY, strip_surround, surround_test

from .drawn_cells import black_cell, on_black, scene

GREY_SMEAR, CYTOPLASM, NUCLEUS = (205, 200, 185), (150, 130, 190), (90, 45, 150)  # grey 200, 143, 70


def _ringed(smear=GREY_SMEAR) -> tuple[np.ndarray, np.ndarray]:
    paint = scene((80, 80, 46, 4), (80, 80, 36, 1), (80, 84, 18, 2))
    return on_black(paint, {4: smear, 1: CYTOPLASM, 2: NUCLEUS}), paint


def test_three_flat_populations_in_layers_are_a_surround():
    image, paint = _ringed()
    test = surround_test(image, paint > 0)
    # classes: smear, cytoplasm, nucleus; steps 57 and 73 grey levels (dark high)
    assert test.gain > 0.9 and test.valley < 0.5 and test.balance == pytest.approx(73 / 57, abs=0.05)
    assert test.layering > 0.2 and test.three_populations and not test.white
    stripped, _ = strip_surround(image, paint > 0)
    assert dice(stripped, (paint == 1) | (paint == 2)) > 0.99


def test_a_near_white_surround_is_found_by_its_brightness():
    image, paint = _ringed(smear=(240, 238, 230))
    test = surround_test(image, paint > 0)
    assert test.brightness >= WHITE_GREY and test.present


@pytest.mark.parametrize("seed", range(6))
def test_cells_without_surround_are_left_alone(seed):
    stain = Stain.random(np.random.default_rng(100 + seed))
    image, _ = synthesize_cell(np.random.default_rng(seed), blast=seed % 2 == 0, stain=stain, size=225)
    region = image.max(axis=2) > 10
    assert not surround_test(image, region).present
    stripped, _ = strip_surround(image, region)
    np.testing.assert_array_equal(stripped, region)


def test_two_colour_and_flat_cells():
    image, truth = black_cell()
    assert not surround_test(image, truth > 0).present
    flat = np.full((20, 20, 3), 120, np.uint8)
    test = surround_test(flat, np.ones((20, 20), bool))
    assert not test.three_populations and test.gain == 0.0
