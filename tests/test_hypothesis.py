"""Property-based tests: any data, any hyperparameters -> a model or a clear error.

Examples are derandomized (the same on every run and machine) and nothing is
written to a hypothesis database, so CI is reproducible.
"""

import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from skae import AutoencoderTransformer
from skae._nn.layers import ACTIVATIONS
from skae._training.schedules import SCHEDULES
from skae.persistence import load, save

SETTINGS = dict(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

DTYPES = [np.float32, np.float64, np.int64, np.bool_]
SCALES = [0.0, 1e-30, 1e-3, 1.0, 1e3, 1e30]


@st.composite
def datasets(draw, min_samples=0, min_features=0):
    """Draw an ``(n_samples, n_features)`` array of one of DTYPES."""
    n_samples = draw(st.integers(min_samples, 30))
    n_features = draw(st.integers(min_features, 6))
    dtype = draw(st.sampled_from(DTYPES))
    scale = draw(st.sampled_from(SCALES))
    seed = draw(st.integers(0, 2**16))
    X = np.random.RandomState(seed).normal(size=(n_samples, n_features)) * scale
    if draw(st.booleans()):
        X += draw(st.sampled_from([-1e6, 1.0, 1e6]))  # offset features
    if dtype == np.bool_:
        return X > 0
    if dtype == np.int64:
        return np.clip(np.round(X), -(2**40), 2**40).astype(np.int64)
    return X.astype(dtype)


def hyperparameters(n_components=None):
    if n_components is None:
        n_components = st.integers(-1, 7)
    return st.fixed_dictionaries(
        {
            "n_components": n_components,
            "hidden_layer_sizes": st.lists(st.integers(1, 6), max_size=2).map(tuple),
            "activation": st.sampled_from(sorted(ACTIVATIONS)),
            "output_activation": st.sampled_from(["identity", "tanh", "sigmoid"]),
            "residual": st.booleans(),
            "normalization": st.sampled_from([None, "batch", "layer"]),
            "dropout": st.sampled_from([0.0, 0.3, 0.9]),
            "scaling": st.sampled_from(["global", "standard", "center", None]),
            "solver": st.sampled_from(["adam", "adamw", "sgd", "rmsprop"]),
            "learning_rate_init": st.sampled_from([1e-4, 1e-2, 1.0, 1e3, 1e30]),
            "alpha": st.sampled_from([0.0, 1e-3, 10.0]),
            "lr_schedule": st.sampled_from(["constant", *sorted(SCHEDULES)]),
            "max_grad_norm": st.sampled_from([None, 1e-6, 1.0]),
            "clip_value": st.sampled_from([None, 0.1]),
            "batch_size": st.sampled_from([1, 2, 5, 256]),
            "max_iter": st.integers(1, 3),
            "early_stopping": st.booleans(),
            "max_restarts": st.integers(0, 2),
            "random_state": st.integers(0, 3),
        }
    )


def _check_outputs(ae, X):
    """Outputs have the right shape and dtype and are finite."""
    n_samples, n_features = X.shape
    dtype = np.float32 if X.dtype == np.float32 else np.float64
    Z = ae.transform(X)
    assert Z.shape == (n_samples, ae.n_components_) and Z.dtype == dtype
    assert np.isfinite(Z).all()
    X_back = ae.inverse_transform(Z)
    assert X_back.shape == (n_samples, n_features) and X_back.dtype == dtype
    assert np.isfinite(X_back).all()
    scores = ae.score_samples(X)
    assert scores.shape == (n_samples,) and scores.dtype == np.float64
    assert np.isfinite(scores).all() and (scores <= 0).all()
    return Z, X_back, scores


@st.composite
def cases(draw):
    """Data and hyperparameters; n_components is mostly valid for the data."""
    X = draw(datasets())
    if draw(st.integers(0, 3)):
        n_components = st.integers(1, max(1, X.shape[1]))
    else:
        n_components = st.integers(-1, 7)
    return X, draw(hyperparameters(n_components))


@settings(max_examples=60, **SETTINGS)
@given(case=cases())
def test_fit_succeeds_or_raises_a_clear_error(case):
    X, params = case
    ae = AutoencoderTransformer(**params)
    try:
        ae.fit(X)
    except (ValueError, TypeError) as exc:
        event(f"{type(exc).__name__}: {str(exc)[:40]}")
        assert str(exc).strip()
        assert not hasattr(ae, "net_")  # a failed first fit leaves nothing
        return
    event("fitted")
    assert ae.n_iter_ >= 1 and len(ae.loss_curve_) == ae.n_iter_
    _check_outputs(ae, X)


@settings(max_examples=12, **SETTINGS)
@given(
    X=datasets(min_samples=4, min_features=2),
    params=hyperparameters(n_components=st.integers(1, 2)),
)
def test_save_load_round_trip_is_exact(X, params):
    ae = AutoencoderTransformer(**{**params, "learning_rate_init": 1e-2})
    try:
        ae.fit(X)
    except (ValueError, TypeError) as exc:
        assert str(exc).strip()
        return
    with tempfile.TemporaryDirectory() as path:
        save(ae, path)
        loaded = load(path)
    for left, right in zip(
        _check_outputs(ae, X), _check_outputs(loaded, X), strict=True
    ):
        assert np.array_equal(left, right)
    assert loaded.get_params() == ae.get_params()


ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=40, **SETTINGS)
@given(
    values=st.dictionaries(
        st.sampled_from(sorted(AutoencoderTransformer().get_params())), ANY_VALUE
    )
)
def test_init_and_set_params_store_anything(values):
    ae = AutoencoderTransformer(**values)  # never raises
    params = ae.get_params()
    assert all(params[name] is value for name, value in values.items())
    other = AutoencoderTransformer().set_params(**values)  # nor does set_params
    assert all(other.get_params()[name] is value for name, value in values.items())


@pytest.fixture(scope="module")
def fitted():
    X = np.random.RandomState(0).normal(size=(30, 3))
    return AutoencoderTransformer(
        2, hidden_layer_sizes=(4,), max_iter=2, random_state=0
    ).fit(X)


@settings(max_examples=20, **SETTINGS)
@given(X=datasets(min_samples=1), width=st.integers(0, 7))
def test_fitted_model_inference_on_any_input(fitted, X, width):
    """transform / inverse_transform / score_samples: an answer or a clear error."""
    for method, expected in [
        ("transform", fitted.n_features_in_),
        ("score_samples", fitted.n_features_in_),
        ("inverse_transform", fitted.n_components_),
    ]:
        data = X[:, :width] if X.shape[1] >= width else X
        try:
            out = getattr(fitted, method)(data)
        except ValueError as exc:
            assert str(exc).strip()
            assert data.shape[1] != expected
            continue
        assert data.shape[1] == expected
        assert out.shape[0] == data.shape[0] and not np.isnan(out).any()
