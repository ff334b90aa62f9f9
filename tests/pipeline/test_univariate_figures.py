"""Figures of the univariate table: RGB arrays, ranking, captions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leukoscope.features.subjects import subject_table
from leukoscope.features.univariate import univariate_table
from leukoscope.pipeline.univariate_figures import (
    effect_size_figure,
    ranked_features,
    subject_boxplots,
    volcano_figure,
)
from tests.features.cell_tables import NULL_FEATURES, PLANTED, demo_like_cells


@pytest.fixture(scope="module")
def cells() -> pd.DataFrame:
    return demo_like_cells(subjects=4, cells=5)


@pytest.fixture(scope="module")
def table(cells) -> pd.DataFrame:
    return univariate_table(cells, n_boot=50)


def test_ranking_by_absolute_effect_then_the_other_effect():
    table = pd.DataFrame({"feature": list("abcd"), "cliffs_delta": [0.2, -0.9, np.nan, 0.9],
                          "hedges_g": [0.1, -1.0, 5.0, 2.0]})
    assert ranked_features(table, "cliffs_delta", top=3)["feature"].tolist() == ["d", "b", "a"]
    assert ranked_features(table, "hedges_g", top=2)["feature"].tolist() == ["c", "d"]


def test_figures_are_rgb_uint8_with_captions(cells, table):
    effects = effect_size_figure(table, top=10)
    volcano = volcano_figure(table, effect="hedges_g", test="mw")
    boxes = subject_boxplots(subject_table(cells), table, top=4)
    for image, caption in (effects, volcano, boxes):
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert image.min() < 100 and image.max() == 255  # something drawn on white
        assert "Cell-level" not in caption
    assert effects[1].startswith("The 10 features with the largest absolute Cliff's delta")
    assert "Hedges' g against the Benjamini-Hochberg q of the Mann-Whitney test" in volcano[1]
    assert boxes[1].startswith("Subject medians of the 4 features")


def test_the_tallest_figure_grows_with_the_number_of_features(table):
    assert effect_size_figure(table, top=20)[0].shape[0] > effect_size_figure(table, top=5)[0].shape[0]


def test_cell_level_tables_say_so_in_the_caption(cells):
    table = univariate_table(cells.assign(subject=""), [PLANTED, NULL_FEATURES[0]], n_boot=20)
    assert "Cell-level" in volcano_figure(table)[1]
