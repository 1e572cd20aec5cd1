"""skae.plotting's Jacobian heat maps and VAE sample grids: what they show."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError

from skae import AutoencoderTransformer, VariationalAutoencoderTransformer

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from skae.plotting import plot_jacobian, plot_samples  # noqa: E402

SMALL = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=0)


def _fit(cls, X, n_components=3):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls(n_components, **SMALL).fit(X)


@pytest.fixture(scope="module")
def digits():
    return load_digits().data[:200]


@pytest.fixture(scope="module")
def ae(digits):
    return _fit(AutoencoderTransformer, digits)


@pytest.fixture(scope="module")
def vae(digits):
    return _fit(VariationalAutoencoderTransformer, digits)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


class TestPlotJacobian:
    def test_one_map_per_unit_of_the_mean_jacobian(self, ae, digits):
        fig = plot_jacobian(ae, digits[:50])
        maps, colorbar = fig.axes[:3], fig.axes[3]
        assert len(fig.axes) == 4 and colorbar.get_ylabel() == "d code / d feature"
        mean = ae.encoder_jacobian(digits[:50]).mean(axis=0)
        for unit, ax in enumerate(maps):
            assert_allclose(ax.get_images()[0].get_array(), mean[unit].reshape(8, 8))
            assert ax.get_title() == f"unit {unit}"
        # One color scale for all units, symmetric around 0.
        limit = np.abs(mean).max()
        clims = {ax.get_images()[0].get_clim() for ax in maps}
        assert_allclose(list(clims), [(-limit, limit)])

    def test_chosen_components_and_given_axes(self, ae, digits):
        _, axes = plt.subplots(1, 2)
        fig = plot_jacobian(ae, digits[:1], components=[2, 0], axes=axes)
        local = ae.encoder_jacobian(digits[:1])[0]
        assert_allclose(axes[0].get_images()[0].get_array(), local[2].reshape(8, 8))
        assert axes[1].get_title() == "unit 0"
        assert fig is axes[0].figure

    def test_features_that_are_not_pixels_get_a_heat_map(self):
        pd = pytest.importorskip("pandas")
        X = pd.DataFrame(
            np.random.RandomState(0).normal(size=(60, 5)), columns=list("abcde")
        )
        est = _fit(AutoencoderTransformer, X, n_components=2)
        fig = plot_jacobian(est, X)
        ax = fig.axes[0]
        assert_allclose(
            ax.get_images()[0].get_array(), est.encoder_jacobian(X).mean(axis=0)
        )
        assert [t.get_text() for t in ax.get_xticklabels()] == list("abcde")
        assert [t.get_text() for t in ax.get_yticklabels()] == ["unit 0", "unit 1"]

    def test_errors(self, ae, digits):
        with pytest.raises(ValueError, match=r"components=\[3\] .*\[0, 2\]"):
            plot_jacobian(ae, digits, components=[3])
        with pytest.raises(TypeError, match="needs a skae estimator.*got PCA"):
            plot_jacobian(PCA(2).fit(digits), digits)
        with pytest.raises(NotFittedError):
            plot_jacobian(AutoencoderTransformer(), digits)
        with pytest.raises(ValueError, match="axes holds 2 axes; 3 are needed"):
            plot_jacobian(ae, digits, axes=plt.subplots(1, 2)[1])


class TestPlotSamples:
    def test_a_grid_of_the_drawn_rows(self, vae):
        fig = plot_samples(vae, n_samples=10, random_state=0)
        visible = [ax for ax in fig.axes if ax.get_visible()]
        assert len(visible) == 10 and len(fig.axes) == 16  # 2 rows of 8
        samples = vae.sample(10, random_state=0)
        for ax, row in zip(visible, samples, strict=True):
            assert_allclose(ax.get_images()[0].get_array(), row.reshape(8, 8))
        clims = {ax.get_images()[0].get_clim() for ax in visible}
        assert clims == {(samples.min(), samples.max())}

    def test_rows_that_are_not_images_are_lines(self):
        X = np.random.RandomState(0).normal(size=(60, 5))
        est = _fit(VariationalAutoencoderTransformer, X, n_components=2)
        _, axes = plt.subplots(1, 3)
        plot_samples(est, n_samples=3, random_state=1, axes=axes)
        assert_allclose(
            axes[2].get_lines()[0].get_ydata(), est.sample(3, random_state=1)[2]
        )

    def test_needs_a_model_that_samples(self, ae, digits):
        with pytest.raises(
            TypeError, match="sample method.*got AutoencoderTransformer"
        ):
            plot_samples(ae)
        with pytest.raises(NotFittedError):
            plot_samples(VariationalAutoencoderTransformer())
