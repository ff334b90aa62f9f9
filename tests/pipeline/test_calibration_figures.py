"""The reliability diagram: an RGB array and its caption."""

from __future__ import annotations

import numpy as np

from leukoscope.classifiers.calibration import reliability_bins
from leukoscope.pipeline.calibration_figures import reliability_figure


def test_reliability_figure_is_an_rgb_image_with_a_caption():
    bins = reliability_bins([0, 1, 1, 0], [0.2, 0.8, 0.6, 0.1], n_bins=5)
    image, caption = reliability_figure({"svm / handcrafted": bins, "knn / handcrafted": bins})
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
    assert image.std() > 0
    assert caption.startswith("Reliability diagram (5 equal-width bins")
