"""Small synthetic cells shared by the feature tests."""

from __future__ import annotations

import numpy as np
import pytest

from leukoscope.pipeline.synthetic import Stain, synthesize_cell


def make_cell(seed: int, *, blast: bool = True, size: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic C-NMC-like cell (black background) and its labels, drawn at ``size`` pixels."""
    stain = Stain.random(np.random.default_rng([seed, 1]))
    return synthesize_cell(np.random.default_rng(seed), blast=blast, stain=stain, size=size)


@pytest.fixture(scope="module")
def cell() -> tuple[np.ndarray, np.ndarray]:
    return make_cell(3)
