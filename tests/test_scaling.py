"""Standardization around the network: float64 statistics, exact inverse."""

import numpy as np
import pytest
import sklearn
from numpy.testing import assert_allclose

from skae._data.scaling import Scaling, scan
from skae._data.sources import chunks


@pytest.fixture
def X():
    rng = np.random.RandomState(0)
    return rng.normal(size=(50, 4)) * [1.0, 2.0, 4.0, 0.0] + [1.0, -2.0, 3.0, 7.0]


def test_global_scaling_keeps_relative_variances(X):
    scaling = Scaling("global").fit(X)
    assert_allclose(scaling.mean_, X.mean(axis=0))
    overall = np.sqrt(np.mean(X.var(axis=0)))
    assert_allclose(scaling.scale_, np.full(4, overall))
    # Predicting the mean costs exactly 1 in scaled units, as PCA's error
    # divided by a constant.
    assert np.mean(scaling.transform(X) ** 2) == pytest.approx(1.0)


def test_standard_scaling_divides_each_feature_by_its_std(X):
    scaling = Scaling("standard").fit(X)
    assert_allclose(scaling.scale_[:3], X.std(axis=0)[:3])
    assert scaling.scale_[3] == 1.0  # a constant feature is left unscaled


@pytest.mark.parametrize(
    "method, mean, scale", [("center", "mean", 1.0), (None, 0.0, 1.0)]
)
def test_center_and_none(X, method, mean, scale):
    scaling = Scaling(method).fit(X)
    expected = X.mean(axis=0) if mean == "mean" else np.zeros(4)
    assert_allclose(scaling.mean_, expected)
    assert_allclose(scaling.scale_, np.full(4, scale))


@pytest.mark.parametrize("method", ["global", "standard", "center", None])
def test_inverse_undoes_transform_in_float64(X, method):
    scaling = Scaling(method).fit(X.astype(np.float32))
    Z = scaling.transform(X.astype(np.float32))
    assert Z.dtype == np.float64 and scaling.mean_.dtype == np.float64
    assert_allclose(scaling.inverse_transform(Z), X.astype(np.float32), rtol=1e-12)


def test_chunked_statistics_equal_whole_array_statistics():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(70_000, 8)) + 1e6  # several chunks, a large offset
    assert len(list(chunks(*X.shape))) > 1
    scaling = Scaling("standard").fit(X)
    assert_allclose(scaling.mean_, X.mean(axis=0), rtol=1e-12)
    assert_allclose(scaling.scale_, X.std(axis=0), rtol=1e-9)
    # Each feature's range, from the same pass.
    assert_allclose(scaling.data_min_, X.min(axis=0), rtol=0, atol=0)
    assert_allclose(scaling.data_max_, X.max(axis=0), rtol=0, atol=0)
    low, high = scan(X.astype(np.float32))
    assert low.dtype == high.dtype == np.float64
    assert_allclose(low, X.astype(np.float32).min(axis=0), rtol=0, atol=0)
    assert_allclose(high, X.astype(np.float32).max(axis=0), rtol=0, atol=0)


@pytest.mark.parametrize("method", ["global", "standard", "center", None])
def test_peak_is_the_largest_absolute_standardized_value(X, method):
    scaling = Scaling(method).fit(X)
    expected = np.abs(scaling.transform(X)).max()
    peak = scaling.peak(scaling.data_min_, scaling.data_max_)
    assert peak == pytest.approx(expected, rel=1e-12)
    # Of rows seen later too (their own range, the fit's statistics), here
    # farthest below the mean.
    later = -3.0 * X
    peak = scaling.peak(*scan(later))
    assert peak == pytest.approx(np.abs(scaling.transform(later)).max(), rel=1e-12)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_fit_and_scan_refuse_non_finite_values(X, bad):
    X = X.copy()
    X[7, 2] = bad
    for check in (Scaling("global").fit, scan):
        with pytest.raises(ValueError, match="Input X contains (NaN|infinity)"):
            check(X)
    with sklearn.config_context(assume_finite=True):
        low, high = scan(X)  # not looked for
    assert not np.isfinite(high[2] - low[2])


def test_huge_values_give_finite_statistics():
    X = np.array([[1e300, -1e300], [-1e300, 1e300], [5e299, 0.0]])
    scaling = Scaling("global").fit(X)
    assert np.isfinite(scaling.mean_).all() and np.isfinite(scaling.scale_).all()
    assert np.abs(scaling.transform(X)).max() < 10


def test_overflowing_mean_is_a_clear_error():
    X = np.array([[1.7e308], [1.7e308]])
    with pytest.raises(ValueError, match="too large to standardize in float64"):
        Scaling("global").fit(X)


@pytest.mark.parametrize("method", ["global", "standard", "center", None])
def test_baseline_loss_is_the_error_of_predicting_the_mean(method):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 4)) * [1.0, 2.0, 5.0, 0.5] + [3.0, -1.0, 0.0, 10.0]
    scaling = Scaling(method).fit(X)
    standardized = (X - scaling.mean_) / scaling.scale_
    error = standardized - standardized.mean(axis=0)
    assert scaling.baseline_loss_ == pytest.approx(np.mean(error**2), rel=1e-12)
    if method in ("global", "standard"):
        assert scaling.baseline_loss_ == pytest.approx(1.0, rel=1e-12)
