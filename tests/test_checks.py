"""Checks at the start of fit that depend on the data or combine parameters."""

import numpy as np
import pytest

from skae import AutoencoderTransformer
from skae._checks import check_input, check_params, hidden_sizes, validate_codes


@pytest.mark.parametrize(
    "value, expected", [((), ()), (8, (8,)), ([16, np.int64(4)], (16, 4))]
)
def test_hidden_sizes_normalizes_to_a_tuple_of_ints(value, expected):
    sizes = hidden_sizes(value)
    assert sizes == expected and all(type(h) is int for h in sizes)


@pytest.mark.parametrize("value", [(8, 0), (True,), (2.5,), (-1,)])
def test_hidden_sizes_rejects_non_positive_or_non_integers(value):
    with pytest.raises(ValueError, match="hidden_layer_sizes must contain positive"):
        hidden_sizes(value)


@pytest.mark.parametrize(
    "params, shape, match",
    [
        ({"n_components": 4}, (10, 3), "n_components=4 must be <= n_features=3"),
        (
            {"normalization": "batch", "batch_size": 1},
            (10, 3),
            "batch_size=1 is too small for normalization='batch'",
        ),
        ({"device": "gpu"}, (10, 3), "device must be 'cpu', 'cuda', 'cuda:N'"),
    ],
)
def test_check_params_messages(params, shape, match):
    est = AutoencoderTransformer(**{"n_components": 2, **params})
    check_input(est, np.zeros(shape), reset=True)  # sets n_features_in_
    with pytest.raises(ValueError, match=match):
        check_params(est)
    default = AutoencoderTransformer(2)
    check_input(default, np.zeros(shape), reset=True)
    check_params(default)  # the same data pass with the defaults


def test_validate_codes_checks_the_code_width():
    est = AutoencoderTransformer(2)
    est.n_components_ = 2
    assert validate_codes(est, [[1, 2]]).dtype == np.float64
    with pytest.raises(ValueError, match="X has 3 features, but .* expecting 2"):
        validate_codes(est, np.zeros((1, 3)))
