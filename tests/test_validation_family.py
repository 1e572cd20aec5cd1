"""Bad settings of the family's parameters fail before training, model intact."""

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from skae import AutoencoderTransformer

X = np.random.RandomState(0).normal(size=(40, 5))


def _fast(**params):
    defaults = dict(
        n_components=2,
        hidden_layer_sizes=(4,),
        max_iter=2,
        batch_size=8,
        random_state=0,
    )
    return AutoencoderTransformer(**{**defaults, **params})


@pytest.mark.parametrize(
    "params, match",
    [
        ({"activity_l1": -1.0}, r"'activity_l1' parameter .* range \[0(.0)?, inf\)"),
        ({"contractive": -0.5}, r"'contractive' parameter .* range \[0(.0)?, inf\)"),
        ({"noise": "salt"}, r"'noise' parameter .*'gaussian'.*Got 'salt'"),
        ({"noise": "mask", "noise_level": 0.0}, r"'noise_level' parameter .*\(0"),
        ({"noise_level": -0.1}, r"'noise_level' parameter"),
        ({"tied_weights": "yes"}, r"'tied_weights' parameter .* 'bool'.*Got 'yes'"),
        ({"n_nonzero_coefs": 0}, r"'n_nonzero_coefs' parameter .* range \[1, inf\)"),
    ],
)
def test_constraints_name_the_parameter_and_its_range(params, match):
    with pytest.raises(InvalidParameterError, match=match):
        _fast(**params).fit(X)


def test_mask_noise_level_must_be_a_probability():
    with pytest.raises(ValueError, match=r"noise_level=1.0 .*noise='mask'.*\(0, 1\)"):
        _fast(noise="mask", noise_level=1.0).fit(X)
    # The same level is a valid standard deviation for Gaussian noise.
    _fast(noise="gaussian", noise_level=1.0).fit(X)


def test_contractive_with_batch_normalization_is_refused():
    with pytest.raises(
        ValueError, match=r"contractive=0.1 .*normalization='batch'.*'layer'"
    ):
        _fast(contractive=0.1, normalization="batch").fit(X)
    _fast(contractive=0.1, normalization="layer").fit(X)


def test_n_nonzero_coefs_cannot_exceed_the_code_width():
    with pytest.raises(
        ValueError, match=r"n_nonzero_coefs=3 must be <= n_components=2.*None"
    ):
        _fast(n_nonzero_coefs=3).fit(X)
    _fast(n_nonzero_coefs=2).fit(X)


@pytest.mark.parametrize(
    "params",
    [
        {"noise": "mask", "noise_level": 3.0},
        {"n_nonzero_coefs": 3},
        {"contractive": 1.0, "normalization": "batch"},
        {"activity_l1": -1.0},
    ],
)
def test_failed_fit_leaves_the_model_as_it_was(params):
    est = _fast().fit(X).set_params(**params)
    Z, state = est.transform(X), dict(est.__dict__)
    with pytest.raises(ValueError):
        est.fit(X)
    assert np.array_equal(est.transform(X), Z)
    assert all(est.__dict__[k] is v for k, v in state.items())
    assert est.__dict__.keys() == state.keys()
    # A first partial_fit fails the same way and leaves nothing fitted.
    fresh = _fast(**params)
    with pytest.raises(ValueError):
        fresh.partial_fit(X)
    assert not hasattr(fresh, "net_")
