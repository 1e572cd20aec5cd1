"""Tests of skae.plotting: what each figure shows, and its errors."""

import copy
import subprocess
import sys
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError

from skae import AutoencoderTransformer

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from skae.plotting import (  # noqa: E402
    plot_gradient_flow,
    plot_history,
    plot_latent,
    plot_reconstructions,
)


def _fit(X, **params):
    params = {
        "n_components": 2,
        "hidden_layer_sizes": (8,),
        "max_iter": 3,
        "random_state": 0,
        **params,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 3 epochs neither converge nor diagnose
        return AutoencoderTransformer(**params).fit(X)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:300], y[:300]


@pytest.fixture(scope="module")
def fitted(digits):
    return _fit(digits[0], early_stopping=False)


@pytest.fixture(scope="module")
def fitted_valid(digits):
    return _fit(digits[0], early_stopping=True)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_import_skae_does_not_import_matplotlib():
    code = (
        "import sys, skae, skae.plotting; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


class TestPlotHistory:
    def test_train_loss_on_log_axes(self, fitted):
        ax = plot_history(fitted)
        lines = ax.get_lines()
        assert [line.get_label() for line in lines] == ["train_reconstruction"]
        assert_allclose(lines[0].get_ydata(), fitted.loss_curve_, rtol=1e-12)
        assert_allclose(lines[0].get_xdata(), [1, 2, 3])
        assert ax.get_yscale() == "log"
        assert ax.get_xlabel() == "epoch"
        assert ax.get_ylabel() == "loss"

    def test_valid_loss_when_early_stopping(self, fitted_valid):
        ax = plot_history(fitted_valid)
        labels = [line.get_label() for line in ax.get_lines()]
        assert labels == ["train_reconstruction", "valid_loss"]
        assert_allclose(
            ax.get_lines()[1].get_ydata(),
            fitted_valid.history_[:, "valid_loss"],
            rtol=1e-12,
        )

    def test_learning_rate_on_twin_axes(self, fitted):
        ax = plot_history(fitted)
        ax_lr = ax.figure.axes[-1]
        assert ax_lr is not ax
        assert ax_lr.get_ylabel() == "learning rate"
        (line,) = ax_lr.get_lines()
        assert_allclose(line.get_ydata(), fitted.history_[:, "lr"])
        assert ax_lr.get_yscale() == "linear"  # a constant rate, from zero
        assert ax_lr.get_ylim()[0] == 0
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend == ["train_reconstruction", "lr"]

    def test_learning_rate_axes_is_log_when_rate_spans_decades(self, digits):
        est = _fit(
            digits[0],
            max_iter=4,
            learning_rate_init=1e-3,
            lr_schedule="step",
            lr_schedule_params={"step_size": 1, "gamma": 0.1},
        )
        ax = plot_history(est)
        ax_lr = ax.figure.axes[-1]
        assert_allclose(ax_lr.get_lines()[0].get_ydata(), [1e-3, 1e-4, 1e-5, 1e-6])
        assert ax_lr.get_yscale() == "log"

    def test_draws_on_given_axes(self, fitted):
        _, given = plt.subplots()
        assert plot_history(fitted, ax=given) is given

    def test_penalties_add_the_objective_in_grey(self, digits):
        est = _fit(digits[0], l1=1.0)
        lines = {line.get_label(): line for line in plot_history(est).get_lines()}
        assert_allclose(lines["train_reconstruction"].get_ydata(), est.loss_curve_)
        assert_allclose(
            lines["train_loss (with penalties)"].get_ydata(),
            est.history_[:, "train_loss"],
        )

    def test_validation_curve_is_the_reconstruction_beside_training(self, digits):
        # With activity_l1, valid_loss sums two terms: the curve drawn beside
        # the training reconstruction is the validation reconstruction.
        est = _fit(digits[0], activity_l1=0.1)
        lines = {line.get_label(): line for line in plot_history(est).get_lines()}
        assert "valid_loss" not in lines
        assert_allclose(
            lines["valid_reconstruction"].get_ydata(),
            est.history_[:, "valid_reconstruction"],
        )

    def test_restarts_are_marked(self, digits):
        est = _fit(digits[0], solver="sgd", learning_rate_init=5.0, batch_size=64)
        restarted = [row["epoch"] for row in est.history_ if "restart" in row]
        assert restarted
        lines = [
            line
            for line in plot_history(est).get_lines()
            if line.get_linestyle() == ":"
        ]
        assert [line.get_xdata()[0] for line in lines] == [e - 0.5 for e in restarted]

    def test_unfitted(self):
        with pytest.raises(NotFittedError, match="AutoencoderTransformer"):
            plot_history(AutoencoderTransformer())

    def test_fitted_estimator_without_history(self, digits):
        with pytest.raises(TypeError, match="has no history_ attribute"):
            plot_history(PCA(n_components=2).fit(digits[0]))


class TestPlotGradientFlow:
    def test_one_line_per_layer_in_order(self, fitted):
        ax = plot_gradient_flow(fitted)
        layers = list(fitted.history_[-1]["grad_norms"])
        # encoder.0, encoder.code, the two PCA layers, decoder.0, decoder.output
        assert len(layers) == 6
        assert [line.get_label() for line in ax.get_lines()] == layers
        for line, layer in zip(ax.get_lines(), layers, strict=True):
            expected = [row["grad_norms"][layer] for row in fitted.history_]
            assert_allclose(line.get_ydata(), expected, rtol=1e-12)
            assert_allclose(line.get_xdata(), [1, 2, 3])

    def test_axes_and_legend(self, fitted):
        ax = plot_gradient_flow(fitted)
        assert ax.get_yscale() == "log"
        assert ax.get_xlabel() == "epoch"
        assert ax.get_ylabel() == "mean gradient L2 norm"
        assert ax.get_legend() is not None
        assert len(ax.figure.axes) == 1  # no colorbar

    def test_colors_run_along_colormap_from_input_to_output(self, fitted):
        ax = plot_gradient_flow(fitted, cmap="plasma")
        cmap = plt.get_cmap("plasma")
        lines = ax.get_lines()
        assert_allclose(matplotlib.colors.to_rgba(lines[0].get_color()), cmap(0.0))
        assert_allclose(matplotlib.colors.to_rgba(lines[-1].get_color()), cmap(1.0))
        colors = {matplotlib.colors.to_hex(line.get_color()) for line in lines}
        assert len(colors) == len(lines)

    def test_deep_net_gets_colorbar_instead_of_legend(self, digits):
        est = _fit(digits[0], hidden_layer_sizes=(8, 8, 8, 8))
        ax = plot_gradient_flow(est)
        assert len(ax.get_lines()) == 12  # 10 + the two PCA layers
        assert ax.get_legend() is None
        (colorbar_ax,) = [a for a in ax.figure.axes if a is not ax]
        ticks = [t.get_text() for t in colorbar_ax.get_yticklabels()]
        assert ticks == ["encoder.0", "decoder.output"]

    def test_unfitted(self):
        with pytest.raises(NotFittedError, match="AutoencoderTransformer"):
            plot_gradient_flow(AutoencoderTransformer())

    def test_history_without_gradient_norms(self, fitted):
        est = copy.deepcopy(fitted)
        for row in est.history_:
            del row["grad_norms"]
        with pytest.raises(ValueError, match="no 'grad_norms' entries"):
            plot_gradient_flow(est)


class TestPlotReconstructions:
    def test_one_row_per_reconstruction_plus_originals(self, digits, fitted):
        X = digits[0]
        pca = PCA(n_components=2, random_state=0).fit(X)
        fig = plot_reconstructions(X, fitted, pca, n_samples=5)
        axes = np.array(fig.axes).reshape(3, 5)
        assert len(fig.axes) == (1 + 2) * 5
        assert [a.get_ylabel() for a in axes[:, 0]] == [
            "original",
            "AutoencoderTransformer",
            "PCA",
        ]
        assert_allclose(axes[0, 1].get_images()[0].get_array(), X[1].reshape(8, 8))
        expected = fitted.inverse_transform(fitted.transform(X[:5]))
        assert_allclose(
            axes[1, 4].get_images()[0].get_array(), expected[4].reshape(8, 8)
        )
        # All images share the originals' gray scale.
        limits = {a.get_images()[0].get_clim() for a in fig.axes}
        assert limits == {(X[:5].min(), X[:5].max())}

    def test_arrays_and_labels(self, digits):
        X = digits[0]
        noisy, blank = X + 1.0, np.zeros_like(X)
        fig = plot_reconstructions(
            X, noisy, blank, labels=["noisy", "blank"], n_samples=3
        )
        axes = np.array(fig.axes).reshape(3, 3)
        assert [a.get_ylabel() for a in axes[:, 0]] == ["original", "noisy", "blank"]
        assert_allclose(axes[1, 2].get_images()[0].get_array(), noisy[2].reshape(8, 8))

    def test_default_labels_of_arrays(self, digits):
        X = digits[0]
        fig = plot_reconstructions(X, X, X, n_samples=2)
        labels = [fig.axes[i].get_ylabel() for i in (0, 2, 4)]
        assert labels == ["original", "reconstruction 1", "reconstruction 2"]

    def test_n_samples_capped_by_rows(self, digits):
        X = digits[0][:3]
        fig = plot_reconstructions(X, X, n_samples=10)
        assert len(fig.axes) == 2 * 3

    def test_image_shape(self, digits):
        X = digits[0]
        fig = plot_reconstructions(X, X, image_shape=(4, 16), n_samples=2)
        assert fig.axes[0].get_images()[0].get_array().shape == (4, 16)

    def test_non_image_data_as_lines(self, digits):
        X = digits[0][:, :10]
        fig = plot_reconstructions(X, X * 0.5, n_samples=4)
        assert len(fig.axes) == 2 * 4
        assert all(not a.get_images() for a in fig.axes)
        assert_allclose(fig.axes[5].get_lines()[0].get_ydata(), X[1] * 0.5)

    def test_draws_on_given_axes(self, digits):
        X = digits[0]
        fig, axes = plt.subplots(2, 3)
        assert plot_reconstructions(X, X, n_samples=3, axes=axes) is fig
        assert axes[1, 2].get_images()

    @pytest.mark.parametrize(
        "kwargs, match",
        [
            ({"labels": ["a", "b"]}, r"labels has 2 entries but there are 1"),
            ({"image_shape": (5, 5)}, r"image_shape=\(5, 5\) has 25 pixels"),
            ({"n_samples": 0}, "n_samples must be a positive integer; got 0"),
        ],
    )
    def test_bad_arguments(self, digits, kwargs, match):
        X = digits[0]
        with pytest.raises(ValueError, match=match):
            plot_reconstructions(X, X, **kwargs)

    def test_shape_mismatch(self, digits):
        X = digits[0]
        with pytest.raises(ValueError, match=r"reconstruction 1 has shape \(300, 63\)"):
            plot_reconstructions(X, X[:, 1:])

    def test_needs_a_reconstruction(self, digits):
        with pytest.raises(ValueError, match="needs at least one reconstruction"):
            plot_reconstructions(digits[0])

    def test_wrong_axes_shape(self, digits):
        X = digits[0]
        _, axes = plt.subplots(2, 2)
        with pytest.raises(ValueError, match=r"axes has shape \(2, 2\); expected"):
            plot_reconstructions(X, X, n_samples=3, axes=axes)

    def test_unfitted_transformer(self, digits):
        with pytest.raises(NotFittedError, match="AutoencoderTransformer"):
            plot_reconstructions(digits[0], AutoencoderTransformer())


class TestPlotLatent:
    def test_categories(self, digits):
        X, y = digits
        Z = PCA(n_components=3, random_state=0).fit_transform(X)
        ax = plot_latent(Z, y, title="PCA")
        assert len(ax.collections) == 10
        assert_allclose(ax.collections[3].get_offsets(), Z[y == 3, :2])
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend == [str(i) for i in range(10)]
        assert ax.get_title() == "PCA"
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("component 1", "component 2")

    def test_string_labels(self):
        Z = np.arange(8.0).reshape(4, 2)
        ax = plot_latent(Z, ["a", "b", "a", "b"])
        assert len(ax.collections) == 2

    def test_continuous_labels_get_colorbar(self, digits):
        X, _ = digits
        Z = X[:, :2]
        ax = plot_latent(Z, X[:, 30])
        assert len(ax.collections) == 1
        assert ax.get_legend() is None
        assert len(ax.figure.axes) == 2  # the colorbar

    def test_without_labels(self):
        ax = plot_latent(np.zeros((5, 2)))
        assert len(ax.collections) == 1
        assert ax.get_title() == ""

    def test_one_component(self):
        with pytest.raises(ValueError, match="n_components >= 2; got shape"):
            plot_latent(np.zeros((5, 1)))

    def test_label_length(self):
        with pytest.raises(ValueError, match=r"y has shape \(4,\) but Z has 5"):
            plot_latent(np.zeros((5, 2)), np.zeros(4, dtype=int))


def test_missing_matplotlib_is_a_clear_error(monkeypatch):
    import sys

    from skae.plotting._common import _pyplot

    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="skae.plotting needs matplotlib"):
        _pyplot()


def test_reconstructions_need_2d_input():
    import numpy as np

    from skae.plotting import plot_reconstructions

    with pytest.raises(
        ValueError, match=r"X must be 2-D; got an array of shape \(4,\)"
    ):
        plot_reconstructions(np.zeros(4), np.zeros(4))
