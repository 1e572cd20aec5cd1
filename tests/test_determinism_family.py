"""The family's models do not depend on the number of torch threads."""

import warnings

import pytest
import torch
from sklearn.datasets import load_digits

from skae import AutoencoderTransformer, VariationalAutoencoderTransformer


@pytest.mark.parametrize(
    "cls, params",
    [
        (
            AutoencoderTransformer,
            {
                "noise": "mask",
                "activity_l1": 0.1,
                "contractive": 0.1,
                "tied_weights": True,
                "residual": True,
                "normalization": "layer",
            },
        ),
        (VariationalAutoencoderTransformer, {"noise": "gaussian", "contractive": 0.1}),
    ],
)
def test_default_network_independent_of_thread_count(cls, params):
    # 600 = 2 x 256 + 88 rows; the default 256-128 network, whose products
    # round differently with 1 and 2 threads unless skae sees to it (the
    # vmapped Jacobian products of the contractive term among them).
    X = load_digits().data[:600]
    models = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n_threads in (1, 2):
            est = cls(8, max_iter=1, random_state=0, n_threads=n_threads, **params)
            models.append(est.fit(X).net_.module_.state_dict())
    assert models[0].keys() == models[1].keys()
    for name in models[0]:
        assert torch.equal(models[0][name], models[1][name]), name
