"""HandcraftedFeatures: compute_features as a scikit-learn transformer."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import estimator_checks

from leukoscope.features import Family, HandcraftedFeatures, compute_features, feature_names
from tests.features.conftest import make_cell


@pytest.fixture(scope="module")
def cells() -> list[tuple[np.ndarray, np.ndarray]]:
    """Eight synthetic cells of different sizes, blasts at even seeds."""
    return [make_cell(seed, blast=seed % 2 == 0, size=64 + 4 * seed) for seed in range(8)]


def test_rows_are_compute_features_values_in_feature_names_order(cells):
    transformer = HandcraftedFeatures(families=["haralick", "intensity"], haralick_distance=2, haralick_levels=32)
    out = transformer.fit_transform(cells)
    names = feature_names([Family.INTENSITY, Family.HARALICK])  # canonical order, not the order asked
    assert out.shape == (len(cells), len(names)) and out.dtype == np.float64
    np.testing.assert_array_equal(transformer.get_feature_names_out(), names)
    for row, (image, labels) in zip(out, cells):
        values = compute_features(image, labels, families=["intensity", "haralick"], haralick_distance=2,
                                  haralick_levels=32).values
        np.testing.assert_array_equal(row, [values[name] for name in names])


def test_defaults_compute_every_family():
    names = HandcraftedFeatures().fit([]).get_feature_names_out()
    assert list(names) == feature_names()
    assert HandcraftedFeatures(families="colour").fit([]).families_ == (Family.COLOUR,)


def test_two_sequences_give_the_same_rows_as_pairs(cells):
    images, masks = zip(*cells)
    transformer = HandcraftedFeatures(families=["morphology"])
    expected = transformer.fit_transform(cells)
    np.testing.assert_array_equal(transformer.transform(images, masks), expected)
    np.testing.assert_array_equal(HandcraftedFeatures(families=["morphology"]).fit_transform(images, labels=masks),
                                  expected)
    # any integer mask, and generators of pairs (read once)
    np.testing.assert_array_equal(transformer.transform([(i, m.astype(np.int32)) for i, m in cells]), expected)
    np.testing.assert_array_equal(transformer.fit_transform(iter(cells)), expected)


def test_inside_a_pipeline_with_a_scaler_and_logistic_regression(cells):
    y = np.array([seed % 2 == 0 for seed in range(len(cells))], dtype=int)
    model = make_pipeline(HandcraftedFeatures(families=["intensity", "morphology"]), StandardScaler(),
                          LogisticRegression())
    model.fit(cells, y)
    assert model.predict_proba(cells).shape == (len(cells), 2)
    assert (model.predict(cells) == y).mean() == 1.0  # the synthetic blasts are easy; training data
    names = model[:-1].get_feature_names_out()
    assert list(names) == feature_names(["intensity", "morphology"])
    fitted_twice = clone(model).fit(cells, y)
    np.testing.assert_array_equal(fitted_twice.predict_proba(cells), model.predict_proba(cells))


def test_pandas_output_is_labelled_with_the_feature_names(cells):
    transformer = HandcraftedFeatures(families=["colour"]).set_output(transform="pandas")
    frame = transformer.fit_transform(cells[:2])
    assert list(frame.columns) == feature_names(["colour"]) and len(frame) == 2


def test_pickles_and_refits_identically(cells):
    transformer = HandcraftedFeatures(families=["morphology"]).fit(cells)
    copy = pickle.loads(pickle.dumps(transformer))
    np.testing.assert_array_equal(copy.transform(cells[:2]), transformer.transform(cells[:2]))


@pytest.mark.parametrize("check", [
    estimator_checks.check_estimator_cloneable,
    estimator_checks.check_estimator_repr,
    estimator_checks.check_no_attributes_set_in_init,
    estimator_checks.check_parameters_default_constructible,
    estimator_checks.check_get_params_invariance,
    estimator_checks.check_set_params,
    estimator_checks.check_do_not_raise_errors_in_init_or_set_params,
    estimator_checks.check_mixin_order,
    estimator_checks.check_valid_tag_types,
], ids=lambda check: check.__name__)
def test_scikit_learn_api_checks_that_need_no_numeric_data(check):
    # the other checks feed numeric 2-D arrays, which are no (image, labels) pairs
    check("HandcraftedFeatures", HandcraftedFeatures())


def test_unfitted_transform_is_refused(cells):
    with pytest.raises(NotFittedError):
        HandcraftedFeatures().transform(cells)
    with pytest.raises(NotFittedError):
        HandcraftedFeatures().get_feature_names_out()


@pytest.mark.parametrize(("params", "message"), [
    ({"families": ["texture"]}, r"unknown feature family in families=\['texture'\]; valid families: intensity, "
                                r"haralick, morphology, colour"),
    ({"families": []}, "families is empty; choose at least one of: intensity, haralick, morphology, colour"),
    ({"haralick_levels": 1}, "levels"),
    ({"haralick_distance": 0}, "distance"),
])
def test_bad_parameters_are_refused_at_fit(params, message):
    with pytest.raises(ValueError, match=message):
        HandcraftedFeatures(**params).fit([])


def test_inputs_in_neither_form_are_refused_with_the_fix(cells):
    images, masks = zip(*cells)
    transformer = HandcraftedFeatures(families=["morphology"]).fit(cells)
    with pytest.raises(ValueError, match=r"item 0 of X is not an \(image, labels\) pair \(got ndarray "
                                         r"\(64, 64, 3\)\); pass list\(zip\(images, labels\)\), or the images "
                                         r"and the masks as two sequences: transform\(images, labels\)"):
        transformer.transform(images)
    with pytest.raises(ValueError, match="got 8 images but 7 label masks; give one mask per image"):
        transformer.transform(images, masks[:7])
    bad = list(cells[:2]) + [(images[2], masks[2][:-1])]
    with pytest.raises(ValueError, match="cell 2: labels are 71x72 but the image is 72x72"):
        transformer.transform(bad)
