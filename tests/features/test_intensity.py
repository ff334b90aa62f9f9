import math

import numpy as np
import pytest
from scipy import stats as sps

from leukoscope.features.intensity import COLUMNS, histogram_stats, intensity_features


def _grey_image(values: np.ndarray) -> np.ndarray:
    return np.repeat(np.asarray(values, np.uint8)[..., None], 3, axis=2)


def test_hand_computed_values_on_a_tiny_cell():
    # nucleus 10, 20, 30, 40; cytoplasm 100, 100; background 255 (must not count)
    image = _grey_image([[10, 20, 100, 255], [30, 40, 100, 255]])
    labels = np.array([[2, 2, 1, 0], [2, 2, 1, 0]], np.uint8)
    f = intensity_features(image, labels)
    assert f["intensity_mean_nucleus_gray"] == 25.0
    assert f["intensity_std_nucleus_gray"] == pytest.approx(math.sqrt(125.0))
    assert f["intensity_skewness_nucleus_gray"] == pytest.approx(0.0, abs=1e-12)
    assert f["intensity_kurtosis_nucleus_gray"] == pytest.approx(25625 / 15625 - 3)
    assert (f["intensity_min_nucleus_gray"], f["intensity_max_nucleus_gray"]) == (10.0, 40.0)
    assert [f[f"intensity_p{p}_nucleus_gray"] for p in (10, 25, 50, 75, 90)] == pytest.approx(
        [13.0, 17.5, 25.0, 32.5, 37.0])
    assert f["intensity_entropy_nucleus_gray"] == pytest.approx(2.0)
    assert f["intensity_mean_nucleus_red"] == 25.0  # grey pixels: R = G = B = grey
    assert f["intensity_mean_nucleus_lab_a"] == 0.0 and f["intensity_mean_nucleus_lab_b"] == 0.0
    # a flat region: defined location and spread, undefined shape statistics (NaN, not 0)
    assert f["intensity_mean_cytoplasm_gray"] == 100.0 and f["intensity_std_cytoplasm_gray"] == 0.0
    assert math.isnan(f["intensity_skewness_cytoplasm_gray"]) and math.isnan(f["intensity_kurtosis_cytoplasm_blue"])
    assert f["intensity_entropy_cytoplasm_gray"] == 0.0
    assert f["intensity_mean_cell_gray"] == pytest.approx(300 / 6)
    assert f["intensity_max_cell_gray"] == 100.0


def test_lab_lightness_is_scaled_to_0_100():
    image = _grey_image([[255, 0]])
    f = intensity_features(image, np.array([[2, 2]], np.uint8))
    assert (f["intensity_min_nucleus_lab_l"], f["intensity_max_nucleus_lab_l"]) == (0.0, 100.0)


def test_histogram_stats_match_numpy_and_scipy():
    rng = np.random.default_rng(0)
    values = np.clip(rng.normal(120, 40, size=5000), 0, 255).astype(np.uint8)
    got = histogram_stats(np.bincount(values, minlength=256))
    ref = {
        "mean": values.mean(), "std": values.std(), "min": values.min(), "max": values.max(),
        "skewness": sps.skew(values.astype(float)), "kurtosis": sps.kurtosis(values.astype(float)),
        "entropy": sps.entropy(np.bincount(values, minlength=256), base=2),
        **{f"p{p}": np.percentile(values, p) for p in (10, 25, 50, 75, 90)},
    }
    for name, expected in ref.items():
        assert got[name] == pytest.approx(expected, rel=1e-10, abs=1e-10), name


def test_every_column_is_returned_and_empty_regions_are_nan():
    image = _grey_image(np.full((3, 3), 50))
    labels = np.array([[1, 1, 1], [1, 2, 1], [0, 0, 0]], np.uint8)  # one-pixel nucleus
    f = intensity_features(image, labels)
    assert list(f) == [c.name for c in COLUMNS]
    nucleus = [v for k, v in f.items() if "_nucleus_" in k]
    assert all(math.isnan(v) for v in nucleus)
    f = intensity_features(image, np.where(labels == 2, 0, labels).astype(np.uint8))  # no nucleus
    assert all(math.isnan(v) for k, v in f.items() if "_nucleus_" in k)
    assert f["intensity_mean_cytoplasm_gray"] == 50.0
