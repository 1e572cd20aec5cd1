"""Jacobians and per-feature reconstruction errors of a fitted autoencoder."""

import copy
import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.exceptions import NotFittedError

from skae import AutoencoderTransformer, _inference
from skae._nn.layers import ACTIVATIONS
from tests.conftest import run_in_threads

RNG = np.random.RandomState(0)
#: Features on very different scales: the scaling must be part of the map.
X_TRAIN = RNG.normal(size=(80, 6)) * np.array([1.0, 10.0, 0.1, 3.0, 1.0, 0.5]) + 5.0


def _fit(**params):
    params = {
        "n_components": 3,
        "hidden_layer_sizes": (7, 5),
        "max_iter": 3,
        "batch_size": 16,
        "scaling": "standard",
        "random_state": 0,
        **params,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return AutoencoderTransformer(**params).fit(X_TRAIN)


def _central_differences(f, X, eps):
    """``(n, n_out, n_in)`` derivatives of ``f`` at each row of ``X`` (float64)."""
    columns = []
    for j in range(X.shape[1]):
        step = np.zeros(X.shape[1])
        step[j] = eps[j] if np.ndim(eps) else eps
        columns.append((f(X + step) - f(X - step)) / (2 * step[j]))
    return np.stack(columns, axis=-1)


def _float64_map(est, part):
    """``part`` of ``est``'s network in float64, input units to input units.

    ``transform`` runs the float32 network: its rounding (~1e-7) would drown
    differences over steps of 1e-6.
    """
    module = copy.deepcopy(est.net_.module_).double().eval()

    def f(A):
        with torch.inference_mode():
            if part == "encoder":
                rows = torch.from_numpy((A - est.mean_) / est.scale_)
                return module.encoder(rows).numpy()
            return module.decoder(torch.from_numpy(A)).numpy() * est.scale_ + est.mean_

    return f


def _assert_close_relative(J, reference):
    # 1e-4 relative to the Jacobian's largest entry: entries near 0 would
    # otherwise demand more than finite differences deliver.
    assert_allclose(J, reference, rtol=1e-4, atol=1e-4 * np.abs(reference).max())


LAYOUTS = [
    {},
    {"residual": True, "normalization": "batch"},
    {"normalization": "layer", "tied_weights": True},
]


@pytest.mark.parametrize(
    "layout", LAYOUTS, ids=["plain", "residual+batch", "layer+tied"]
)
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_jacobians_match_central_differences(activation, layout):
    if layout.get("tied_weights") and activation in ("sigmoid", "logistic"):
        layout = {**layout, "init": "random"}  # cannot be tied at PCA's start
    est = _fit(activation=activation, **layout)
    X = X_TRAIN[:6]
    # Steps of 1e-6 of each feature's scale: float64 differences are exact to
    # ~1e-9 relative, and a ReLU kink is crossed only by a pre-activation
    # within ~1e-6 of zero (none is, at these rows and seeds).
    eps = 1e-6 * est.scale_
    J = est.encoder_jacobian(X)
    assert J.shape == (6, 3, 6) and J.dtype == np.float64
    encode = _float64_map(est, "encoder")
    _assert_close_relative(J, _central_differences(encode, X, eps))
    Z = encode(X)
    J = est.decoder_jacobian(Z)
    assert J.shape == (6, 6, 3) and J.dtype == np.float64
    decode = _float64_map(est, "decoder")
    _assert_close_relative(J, _central_differences(decode, Z, 1e-6))


def test_linear_model_jacobians_are_its_weights_over_the_scales():
    est = _fit(hidden_layer_sizes=(), activation="identity")
    encoder, decoder = est.encoder_, est.decoder_
    # Started at PCA: each linear map is its PCA layer plus its output layer
    # (the decoder stores P as (n_components, n_features)).
    W_enc = (encoder.out.weight + encoder.pca.weight).detach().double().numpy()
    W_dec = (decoder.out.weight + decoder.pca.weight.T).detach().double().numpy()
    X = X_TRAIN[:4]
    assert_allclose(
        est.encoder_jacobian(X), np.broadcast_to(W_enc / est.scale_, (4, 3, 6))
    )
    assert_allclose(
        est.decoder_jacobian(est.transform(X)),
        np.broadcast_to(est.scale_[:, None] * W_dec, (4, 6, 3)),
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_dtype_follows_input_and_agrees_across_dtypes(dtype):
    est = _fit(activation="tanh")
    X = X_TRAIN[:10]
    J = est.encoder_jacobian(X.astype(dtype))
    D = est.decoder_jacobian(est.transform(X).astype(dtype))
    assert J.dtype == dtype and D.dtype == dtype
    assert_allclose(J, est.encoder_jacobian(X), rtol=1e-4, atol=1e-6)
    assert_allclose(D, est.decoder_jacobian(est.transform(X)), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("part", ["encoder", "decoder"])
def test_batches_give_the_same_jacobians(part):
    est = _fit(activation="gelu", normalization="batch")
    X = X_TRAIN if part == "encoder" else est.transform(X_TRAIN)

    def run(batch_size):
        return _inference.jacobian(
            est.net_.module_,
            part,
            X,
            scaling=est._scaling,
            device="cpu",
            batch_size=batch_size,
        )

    assert_allclose(run(7), run(None), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "elements, rows", [(3 * 6 * 5, 5), (3 * 6 * 5 + 17, 5), (10, 1)]
)
def test_jacobian_batches_hold_about_batch_elements_numbers(
    monkeypatch, elements, rows
):
    # A batch of m rows holds m * n_components * n_features numbers of
    # Jacobian: at most BATCH_ELEMENTS of them, and one row at least.
    est = _fit()
    expected = est.encoder_jacobian(X_TRAIN)
    sizes, standardizer = [], est._scaling.standardizer

    def counting(dtype, device):
        standardize = standardizer(dtype, device)
        return lambda x, out=None: sizes.append(len(x)) or standardize(x, out=out)

    monkeypatch.setattr(est._scaling, "standardizer", counting)
    monkeypatch.setattr(_inference, "BATCH_ELEMENTS", elements)
    J = est.encoder_jacobian(X_TRAIN)
    assert sizes == [rows] * (80 // rows)
    assert_allclose(J, expected, rtol=1e-12, atol=1e-15)


def test_float64_jacobians_follow_weights_changed_in_place():
    # No float64 copy outlives a call: a change of the fitted weights (here,
    # in PyTorch after fit) shows in the next call. A linear model's
    # Jacobians are its weights: doubled with them, exactly.
    est = _fit(hidden_layer_sizes=(), activation="identity")
    X = X_TRAIN[:4]
    Z = est.transform(X)
    before = est.encoder_jacobian(X), est.decoder_jacobian(Z)
    with torch.no_grad():
        for part in (est.encoder_, est.decoder_):
            for name, weight in part.named_parameters():
                if name.endswith("weight"):
                    weight.mul_(2.0)
    after = est.encoder_jacobian(X), est.decoder_jacobian(Z)
    for new, old in zip(after, before):
        assert_allclose(new, 2.0 * old, rtol=1e-15, atol=0)


def test_jacobians_from_many_threads_at_once():
    # Each float64 call makes its own copy of the module: concurrent float64
    # and float32 calls on one model all give the serial results.
    est = _fit(activation="tanh")
    X = X_TRAIN[:16]
    inputs = {np.float64: X, np.float32: X.astype(np.float32)}
    expected = {d: est.encoder_jacobian(x) for d, x in inputs.items()}
    calls = [(d, lambda x=x: est.encoder_jacobian(x)) for d, x in inputs.items()] * 3
    for dtype, J in run_in_threads(calls, repeat=10):
        assert np.array_equal(J, expected[dtype])
    assert next(est.net_.module_.parameters()).dtype == torch.float32


def test_jacobian_inputs_are_checked():
    est = _fit()
    with pytest.raises(ValueError, match="X has 5 features.*expecting 6 features"):
        est.encoder_jacobian(X_TRAIN[:, :5])
    with pytest.raises(
        ValueError, match=r"X has 2 features.*expecting 3 .*decoder_jacobian"
    ):
        est.decoder_jacobian(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="Input X contains NaN"):
        est.encoder_jacobian(np.full((2, 6), np.nan))
    for method in ("encoder_jacobian", "decoder_jacobian", "reconstruction_error"):
        with pytest.raises(NotFittedError):
            getattr(AutoencoderTransformer(), method)(X_TRAIN)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reconstruction_error_per_row_and_per_feature(dtype):
    est = _fit()
    X = X_TRAIN.astype(dtype)
    error = est.reconstruction_error(X)
    per_feature = est.reconstruction_error(X, per_feature=True)
    assert error.shape == (80,) and per_feature.shape == (80, 6)
    assert error.dtype == per_feature.dtype == np.float64
    X_hat = est.inverse_transform(est.transform(X)).astype(np.float64)
    squared = (X.astype(np.float64) - X_hat) ** 2
    assert_allclose(per_feature, squared, rtol=1e-4, atol=1e-6 * squared.max())
    assert_allclose(error, per_feature.mean(axis=1), rtol=1e-12)
    assert np.array_equal(est.score_samples(X), -error)


def test_per_feature_error_points_at_the_corrupted_feature():
    est = _fit(hidden_layer_sizes=(16,), max_iter=30)
    X = X_TRAIN[:20].copy()
    X[:, 1] += 50 * est.scale_[1]  # feature 1 far off in every row
    per_feature = est.reconstruction_error(X, per_feature=True)
    assert np.all(per_feature.argmax(axis=1) == 1)
