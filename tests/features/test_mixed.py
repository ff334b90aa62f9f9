"""The closed-form random-intercept fits against statsmodels' MixedLM, ANOVA and OLS."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.regression.mixed_linear_model import MixedLMParams

from leukoscope.features.mixed import fit_random_intercept
from tests.features.cell_tables import dominated_cells


def clustered(seed: int, sizes: np.ndarray, columns: list[tuple[float, float]]) -> tuple[np.ndarray, ...]:
    """Cells of ``len(sizes)`` subjects (even = ALL); one column per (subject SD, ALL effect), cell SD 1.5."""
    rng = np.random.default_rng(seed)
    subject = np.repeat(np.arange(len(sizes)), sizes)
    treated = subject % 2 == 0
    values = np.column_stack([
        100 + effect * treated + sd * rng.normal(size=len(sizes))[subject] + 1.5 * rng.normal(size=len(subject))
        for sd, effect in columns
    ])
    return values, subject, treated


def statsmodels_model(y: np.ndarray, subject: np.ndarray, treated: np.ndarray) -> sm.MixedLM:
    keep = ~np.isnan(y)
    return sm.MixedLM(y[keep], sm.add_constant(treated[keep].astype(float)), groups=subject[keep])


def statsmodels_fit(y: np.ndarray, subject: np.ndarray, treated: np.ndarray, reml: bool = True):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return statsmodels_model(y, subject, treated).fit(reml=reml)


def test_reml_fits_match_statsmodels_to_1e4():
    sizes = np.random.default_rng(1).integers(3, 40, 14)  # unbalanced
    values, subject, treated = clustered(1, sizes, [(1.0, 0.5), (0.3, 0.0), (2.0, 3.0), (0.6, 1.0)])
    values[np.random.default_rng(2).random(values.shape) < 0.05] = np.nan
    fit = fit_random_intercept(values, subject, treated, reference="normal")
    for f in range(values.shape[1]):
        ref = statsmodels_fit(values[:, f], subject, treated)
        assert fit.estimate[f] == pytest.approx(ref.fe_params[1], rel=1e-4)
        assert fit.se[f] == pytest.approx(ref.bse_fe[1], rel=1e-4)
        assert fit.p[f] == pytest.approx(ref.pvalues[1], abs=1e-4)
        assert fit.residual_variance[f] == pytest.approx(ref.scale, rel=1e-4)
        assert fit.subject_variance[f] == pytest.approx(np.asarray(ref.cov_re)[0, 0], rel=1e-3)
        assert fit.loglike[f] >= ref.llf - 1e-8  # the same criterion, at least as well maximised


def test_at_our_optimum_statsmodels_gives_the_same_estimate_error_and_likelihood():
    """statsmodels stops its optimiser earlier (p differs by a few 1e-4 relative); at our (RE)ML
    point its own GLS estimate, Hessian and log-likelihood reproduce ours to rounding."""
    sizes = np.random.default_rng(1).integers(3, 40, 14)
    values, subject, treated = clustered(1, sizes, [(1.0, 0.5), (2.0, 3.0)])
    fit = fit_random_intercept(values, subject, treated, reference="normal")
    for f in range(values.shape[1]):
        model = statsmodels_model(values[:, f], subject, treated)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(reml=True)  # sets the model's REML state that loglike and hessian read
        cov_re = np.array([[fit.subject_variance[f] / fit.residual_variance[f]]])
        fe, _ = model.get_fe_params(cov_re, np.zeros(0), tol=1e-12)
        point = MixedLMParams.from_components(fe_params=fe, cov_re=cov_re)
        se = np.sqrt(np.linalg.inv(-model.hessian(point)[0])[1, 1])
        assert fit.estimate[f] == pytest.approx(fe[1], rel=1e-9)
        assert fit.se[f] == pytest.approx(se, rel=1e-9)
        assert fit.p[f] == pytest.approx(2 * stats.norm.sf(abs(fe[1] / se)), rel=1e-9)
        assert fit.loglike[f] == pytest.approx(model.loglike(point, profile_fe=False), rel=1e-12)


def test_ml_maximises_the_likelihood_at_least_as_well_as_statsmodels():
    values, subject, treated = clustered(3, np.arange(4, 16), [(1.0, 1.0)])
    fit = fit_random_intercept(values, subject, treated, reml=False)
    ref = statsmodels_fit(values[:, 0], subject, treated, reml=False)
    assert fit.loglike[0] >= ref.llf - 1e-8
    assert fit.estimate[0] == pytest.approx(ref.fe_params[1], rel=1e-3)


def test_balanced_reml_equals_the_anova_estimates():
    # with n cells in each of G subjects: s^2 = MS_within, s_u^2 = (MS_between - MS_within) / n
    n, groups = 6, 10
    values, subject, _ = clustered(5, np.full(groups, n), [(1.0, 2.0)])
    y = values[:, 0]
    means = np.array([y[subject == g].mean() for g in range(groups)])
    ms_within = sum(((y[subject == g] - means[g]) ** 2).sum() for g in range(groups)) / (groups * (n - 1))
    cls = np.arange(groups) % 2 == 0
    between = ((means[cls] - means[cls].mean()) ** 2).sum() + ((means[~cls] - means[~cls].mean()) ** 2).sum()
    ms_between = n * between / (groups - 2)
    assert ms_between > ms_within  # the interior case
    fit = fit_random_intercept(values, subject, subject % 2 == 0)
    assert fit.residual_variance[0] == pytest.approx(ms_within, rel=1e-6)
    assert fit.subject_variance[0] == pytest.approx((ms_between - ms_within) / n, rel=1e-6)
    assert fit.estimate[0] == pytest.approx(means[cls].mean() - means[~cls].mean())
    # balanced: no cross term, SE^2 = (s^2 + n s_u^2) / n (1 / 5 + 1 / 5)
    assert fit.se[0] == pytest.approx(np.sqrt(ms_between / n * (2 / 5)), rel=1e-6)


def test_the_t_reference_has_n_subjects_minus_2_degrees_of_freedom():
    values, subject, treated = clustered(9, np.full(10, 5), [(1.0, 1.0)])
    values[subject == 3] = np.nan  # a subject without a value does not count
    fit = fit_random_intercept(values, subject, treated)
    z = fit_random_intercept(values, subject, treated, reference="normal")
    assert fit.df[0] == 7 and z.df[0] == np.inf
    assert fit.p[0] == pytest.approx(2 * stats.t.sf(abs(fit.estimate[0] / fit.se[0]), 7))
    assert z.p[0] == pytest.approx(2 * stats.norm.sf(abs(fit.estimate[0] / fit.se[0])))


def test_one_cell_per_subject_is_ordinary_least_squares():
    rng = np.random.default_rng(6)
    y = rng.normal(size=30) + 0.8 * (np.arange(30) < 12)
    treated = np.arange(30) < 12
    fit = fit_random_intercept(y[:, None], np.arange(30), treated)
    ols = sm.OLS(y, sm.add_constant(treated.astype(float))).fit()
    assert fit.subject_variance[0] == 0.0
    assert fit.estimate[0] == pytest.approx(ols.params[1])
    assert fit.se[0] == pytest.approx(ols.bse[1])
    assert fit.p[0] == pytest.approx(ols.pvalues[1])  # Student's t test with n - 2 df


def test_affine_maps_scale_the_estimate_and_keep_the_p_value():
    values, subject, treated = clustered(7, np.arange(3, 13), [(1.0, 1.0)])
    fit = fit_random_intercept(values, subject, treated)
    moved = fit_random_intercept(-4 * values + 1000, subject, treated)
    assert moved.estimate[0] == pytest.approx(-4 * fit.estimate[0], rel=1e-6)
    assert moved.se[0] == pytest.approx(4 * fit.se[0], rel=1e-6)
    assert moved.p[0] == pytest.approx(fit.p[0], rel=1e-6)
    assert moved.icc[0] == pytest.approx(fit.icc[0], rel=1e-6)


def test_undefined_fits_are_nan():
    values, subject, treated = clustered(8, np.full(6, 4), [(1.0, 0.0)] * 3)
    values[:, 1] = 7.0  # constant
    values[treated, 2] = np.nan  # no ALL value
    fit = fit_random_intercept(values, subject, treated)
    assert np.isfinite(fit.p[0])
    assert np.isnan(fit.p[1:]).all() and np.isnan(fit.estimate[1:]).all()


def test_a_dominant_subject_fools_the_cell_t_test_not_the_mixed_model():
    cells = dominated_cells()
    y, is_all = cells["intensity_mean_cell_gray"].to_numpy(), (cells["label"] == "ALL").to_numpy()
    t_p = stats.ttest_ind(y[is_all], y[~is_all]).pvalue
    fit = fit_random_intercept(y[:, None], cells["subject"].to_numpy(), is_all)
    assert t_p < 1e-6
    assert fit.p[0] > 0.05
    assert fit.p[0] > 1e4 * t_p


def test_a_subject_in_both_classes_is_refused():
    with pytest.raises(ValueError, match="a subject has both ALL and HEM cells"):
        fit_random_intercept(np.ones((4, 1)), ["a", "a", "b", "b"], [True, False, False, False])
    with pytest.raises(ValueError, match="values must be"):
        fit_random_intercept(np.ones(4), ["a", "a", "b", "b"], [True, True, False, False])


def test_features_fitted_together_equal_features_fitted_apart():
    values, subject, treated = clustered(10, np.arange(2, 12), [(1.0, 0.5), (0.0, 1.0), (2.0, 0.0)])
    first = np.r_[True, subject[1:] != subject[:-1]]
    values[~first, 1] = np.nan  # one cell per subject: no subject variance to estimate
    together = fit_random_intercept(values, subject, treated)
    for f in range(values.shape[1]):
        apart = fit_random_intercept(values[:, [f]], subject, treated)
        for field, ours in zip(together._fields, together):
            assert ours[f] == pytest.approx(getattr(apart, field)[0], rel=1e-6), field
    assert together.icc[1] == 0.0
