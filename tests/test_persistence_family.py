"""save/load of the family's parameters and of the variational estimator."""

import json

import numpy as np
import pytest
import torch

from skae import AutoencoderTransformer, VariationalAutoencoderTransformer
from skae.persistence import JSON_FILE, load, save

NEW_PARAMS = ("activity_l1", "contractive", "noise", "noise_level", "tied_weights")


def _data(dtype=np.float64, n=40, p=5, seed=0):
    return np.random.RandomState(seed).normal(size=(n, p)).astype(dtype)


def _fast(cls=AutoencoderTransformer, **params):
    defaults = dict(
        n_components=2,
        hidden_layer_sizes=(6,),
        max_iter=3,
        batch_size=8,
        random_state=0,
    )
    return cls(**{**defaults, **params})


def _outputs(est, X):
    Z = est.transform(X)
    out = [
        Z,
        est.inverse_transform(Z),
        est.score_samples(X),
        est.reconstruction_error(X, per_feature=True),
        est.encoder_jacobian(X),
        est.decoder_jacobian(Z),
    ]
    if isinstance(est, VariationalAutoencoderTransformer):
        out += [est.sample(4, random_state=0), est.elbo(X, random_state=0)]
    return out


CASES = [
    (AutoencoderTransformer, {"noise": "gaussian", "noise_level": 0.3}),
    (AutoencoderTransformer, {"noise": "mask", "noise_level": 0.2, "dropout": 0.1}),
    (AutoencoderTransformer, {"activity_l1": 0.5, "contractive": 0.1}),
    (AutoencoderTransformer, {"n_nonzero_coefs": 1, "activity_l1": 0.1}),
    (
        AutoencoderTransformer,
        {"tied_weights": True, "residual": True, "normalization": "batch"},
    ),
    (VariationalAutoencoderTransformer, {}),
    (
        VariationalAutoencoderTransformer,
        {"beta": 0.5, "tied_weights": True, "noise": "mask", "contractive": 0.1},
    ),
]


def _ids(case):
    cls, params = case
    return f"{cls.__name__}-{'-'.join(params) or 'defaults'}"


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_is_bit_identical(case, dtype, tmp_path):
    cls, params = case
    X = _data(dtype)
    est = _fast(cls, **params).fit(X)
    save(est, tmp_path)
    loaded = load(tmp_path)
    assert type(loaded) is cls
    assert loaded.get_params() == est.get_params()
    if params.get("n_nonzero_coefs"):  # the code stays k-sparse
        assert ((loaded.transform(X) != 0).sum(axis=1) == 1).all()
    for a, b in zip(_outputs(est, X), _outputs(loaded, X), strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    state, loaded_state = (
        est.net_.module_.state_dict(),
        loaded.net_.module_.state_dict(),
    )
    assert state.keys() == loaded_state.keys()
    assert all(torch.equal(state[k], loaded_state[k]) for k in state)


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_training_goes_on_exactly_after_load(case, tmp_path):
    # The module's generator (input noise, dropout, the posterior's draws) is
    # saved with the rest: partial_fit draws what it would have drawn.
    cls, params = case
    X = _data()
    est = _fast(cls, **params).fit(X)
    save(est, tmp_path)
    loaded = load(tmp_path)
    for _ in range(2):
        est.partial_fit(X)
        loaded.partial_fit(X)
    assert loaded.history_[:, "train_loss"] == est.history_[:, "train_loss"]
    assert np.array_equal(loaded.transform(X), est.transform(X))


def test_the_file_names_the_class_and_its_parameters(tmp_path):
    save(_fast(VariationalAutoencoderTransformer, beta=0.25).fit(_data()), tmp_path)
    doc = json.loads((tmp_path / JSON_FILE).read_text())
    assert doc["estimator"] == "VariationalAutoencoderTransformer"
    assert doc["params"]["beta"] == 0.25
    assert set(NEW_PARAMS) <= set(doc["params"])


def test_a_file_without_some_parameters_loads_them_at_their_defaults(tmp_path):
    # What a later skae does with a file written before it added parameters.
    X = _data()
    est = _fast().fit(X)
    save(est, tmp_path)
    doc = json.loads((tmp_path / JSON_FILE).read_text())
    for name in NEW_PARAMS:
        del doc["params"][name]
    (tmp_path / JSON_FILE).write_text(json.dumps(doc))
    loaded = load(tmp_path)
    assert loaded.get_params() == est.get_params()
    assert np.array_equal(loaded.transform(X), est.transform(X))


def test_unknown_estimator_or_foreign_parameter_is_refused(tmp_path):
    save(_fast(VariationalAutoencoderTransformer).fit(_data()), tmp_path)
    doc = json.loads((tmp_path / JSON_FILE).read_text())
    (tmp_path / JSON_FILE).write_text(json.dumps({**doc, "estimator": "Other"}))
    with pytest.raises(ValueError, match="estimator='Other'.*among"):
        load(tmp_path)
    # beta belongs to the variational estimator only.
    doc["estimator"] = "AutoencoderTransformer"
    (tmp_path / JSON_FILE).write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"unknown parameters \['beta'\]"):
        load(tmp_path)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_family_on_cuda_round_trips_and_differentiates(tmp_path):
    # Input noise, the posterior's draws and the Jacobians run on the device.
    X = _data()
    est = _fast(
        VariationalAutoencoderTransformer,
        noise="gaussian",
        contractive=0.1,
        tied_weights=True,
        device="cuda",
    ).fit(X)
    save(est, tmp_path)
    loaded = load(tmp_path)
    for a, b in zip(_outputs(est, X), _outputs(loaded, X), strict=True):
        assert np.array_equal(a, b)
    eps = 1e-6 * est.scale_
    J = est.encoder_jacobian(X[:3])
    columns = [
        (est.transform(X[:3] + e) - est.transform(X[:3] - e)) / (2 * e[j])
        for j, e in enumerate(np.diag(eps))
    ]
    np.testing.assert_allclose(
        J, np.stack(columns, axis=-1), rtol=1e-4, atol=1e-4 * np.abs(J).max()
    )
