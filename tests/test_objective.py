"""The objective: named terms, their weights, and their record in the history."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from skae import AutoencoderTransformer
from skae._nn.modules import Autoencoder
from skae._training.objective import TERMS, Objective, Term
from tests.conftest import FAST


def _batch(n=20, p=6, seed=0):
    module = Autoencoder(p, 2, (8,), random_state=seed)
    X = torch.rand(n, p, generator=torch.Generator().manual_seed(seed))
    return module, X, module.parts(X)


def test_loss_is_the_reconstruction_plus_weighted_terms():
    module, X, output = _batch()
    objective = Objective(l1=0.5)
    objective.n_train = 100
    loss, values = objective(X, output, module, training=True)
    mse = ((module(X) - X) ** 2).mean()
    l1 = 0.5 / 100 * sum(w.abs().sum() for w in module.weights())
    torch.testing.assert_close(values["reconstruction"], mse)
    torch.testing.assert_close(values["l1"], l1)
    torch.testing.assert_close(loss, mse + l1)
    # Validation measures the reconstruction alone.
    _, validated = objective(X, output, module, training=False)
    assert set(validated) == {"reconstruction"}
    # Without a weight a term is not part of the objective.
    assert Objective(l1=0.0).names == ["reconstruction"]


def test_gradients_are_those_of_the_formula():
    module, X, output = _batch()
    objective = Objective(l1=2.0)
    objective.n_train = 10
    loss, _ = objective(X, output, module, training=True)
    loss.backward()
    expected = [w.grad.clone() for w in module.weights()]
    module.zero_grad()
    formula = ((module(X) - X) ** 2).mean() + 0.2 * sum(
        w.abs().sum() for w in module.weights()
    )
    formula.backward()
    for got, w in zip(expected, module.weights(), strict=True):
        torch.testing.assert_close(got, w.grad)


def test_bce_is_computed_from_the_logits():
    module, X, _ = _batch()
    output = module.parts(X)
    output.logits = output.logits * 1e3  # a sigmoid saturates to exactly 0 or 1
    loss, _ = Objective(loss="bce")(X, output, module, training=True)
    assert torch.isfinite(loss)
    naive = F.binary_cross_entropy(torch.sigmoid(output.logits.double()), X.double())
    expected = F.binary_cross_entropy_with_logits(output.logits.double(), X.double())
    torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=1e-5)
    assert not torch.isclose(naive, expected)  # the naive one clamps at 100


def test_a_new_term_is_one_class_and_one_parameter(monkeypatch):
    class CodeEnergy(Term):
        name = "code_energy"
        parameter = "code_energy"

        def __call__(self, X, output, module):
            return output.code.square().mean()

    monkeypatch.setitem(TERMS, CodeEnergy.parameter, CodeEnergy)
    module, X, output = _batch()
    objective = Objective(code_energy=3.0)
    assert objective.names == ["reconstruction", "code_energy"]
    loss, values = objective(X, output, module, training=True)
    torch.testing.assert_close(values["code_energy"], 3.0 * output.code.square().mean())
    torch.testing.assert_close(loss, values["reconstruction"] + values["code_energy"])


def test_history_records_each_term_and_the_curve_is_the_reconstruction(digits):
    est = AutoencoderTransformer(2, **FAST, l1=1.0).fit(digits)
    for row in est.history_:
        total = row["train_reconstruction"] + row["train_l1"]
        assert row["train_loss"] == pytest.approx(total, rel=1e-6)
        assert row["train_l1"] > 0
    assert est.loss_curve_ == est.history_[:, "train_reconstruction"]
    assert est.loss_curve_ != est.history_[:, "train_loss"]


def test_loss_values_do_not_depend_on_the_thread_count():
    # One reduction over all elements rounds differently with 1 and 2
    # threads at this size; the row-by-row sum does not.
    x = torch.randn(256, 256, generator=torch.Generator().manual_seed(0))
    values = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        module = Autoencoder(256, 2, (), random_state=0)
        values.append(Objective(l1=1.0)(x, module.parts(x), module, True)[0])
    torch.set_num_threads(1)
    assert torch.equal(*values)
    assert np.isfinite(values[0].item())


def test_activity_l1_is_the_mean_row_sum_of_absolute_codes():
    module, X, output = _batch()
    loss, values = Objective(activity_l1=0.3)(X, output, module, training=True)
    expected = 0.3 * output.code.abs().sum(dim=1).mean()
    torch.testing.assert_close(values["activity_l1"], expected)
    torch.testing.assert_close(loss, values["reconstruction"] + expected)


def _row_jacobians(encoder, X):
    return torch.stack(
        [
            torch.autograd.functional.jacobian(
                lambda row: encoder(row[None])[0], x, create_graph=True
            )
            for x in X
        ]
    )


@pytest.mark.parametrize(
    "layout",
    [
        {"activation": "tanh"},
        {"activation": "elu", "residual": True, "normalization": "layer"},
        {"activation": "sigmoid", "tied_weights": True, "residual": True},
    ],
)
def test_contractive_is_the_mean_squared_frobenius_norm_of_the_jacobian(layout):
    module = Autoencoder(6, 3, (8, 5), random_state=0, **layout).double()
    X = torch.rand(12, 6, generator=torch.Generator().manual_seed(0)).double()
    objective = Objective(contractive=0.7)
    assert objective.needs_jacobian
    output = module.parts(X, jacobian=True)
    loss, values = objective(X, output, module, training=True)
    expected = 0.7 * _row_jacobians(module.encoder, X).square().sum() / 12
    torch.testing.assert_close(values["contractive"], expected, rtol=1e-10, atol=0)
    # Its gradient with respect to the weights is that of the formula.
    values["contractive"].backward()
    got = [p.grad.clone() for p in module.encoder.parameters() if p.grad is not None]
    module.zero_grad()
    expected.backward()
    want = [p.grad for p in module.encoder.parameters() if p.grad is not None]
    assert len(got) == len(want) > 0
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-12)


def test_contractive_reads_the_jacobian_at_the_corrupted_input():
    # With input noise the encoder reads the corrupted rows: the Jacobian is
    # taken there, and the reconstruction is still compared with clean X.
    module = Autoencoder(
        6, 2, (5,), activation="tanh", noise="gaussian", noise_level=0.5, random_state=0
    ).double()
    X = torch.rand(10, 6, generator=torch.Generator().manual_seed(1)).double()
    module.train()
    state = module.random.get(X.device).get_state()
    output = module.parts(X, jacobian=True)
    module.random.get(X.device).set_state(state)
    corrupted = module.corrupt(X)
    assert not torch.equal(corrupted, X)
    _, values = Objective(contractive=1.0)(X, output, module, training=True)
    expected = _row_jacobians(module.encoder, corrupted).square().sum() / 10
    torch.testing.assert_close(values["contractive"], expected, rtol=1e-10, atol=0)


def _fit_quietly(X, **params):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return AutoencoderTransformer(4, **{**FAST, "max_iter": 20, **params}).fit(X)


def test_activity_l1_makes_codes_sparse(digits):
    plain = _fit_quietly(digits).transform(digits)
    sparse = _fit_quietly(digits, activity_l1=1.0).transform(digits)

    def near_zero(Z):
        return np.mean(np.abs(Z) < 1e-2 * np.abs(plain).max())

    assert near_zero(sparse) > near_zero(plain) + 0.3


def test_only_n_nonzero_coefs_gives_exact_zeros(digits):
    # A linear code under activity_l1 shrinks but keeps no entry at exactly 0.
    plain = _fit_quietly(digits).transform(digits)
    shrunk = _fit_quietly(digits, activity_l1=1.0).transform(digits)
    sparse = _fit_quietly(digits, n_nonzero_coefs=1).transform(digits)
    assert not (plain == 0).any() and not (shrunk == 0).any()
    assert (plain < 0).any()
    assert np.array_equal((sparse != 0).sum(axis=1), np.ones(len(digits)))
    assert (sparse < 0).any() and (sparse > 0).any()  # signed: no dead sign


def test_contractive_shrinks_the_encoder_jacobian(digits):
    def mean_norm(est):
        return np.mean(np.sum(est.encoder_jacobian(digits) ** 2, axis=(1, 2)))

    plain = _fit_quietly(digits)
    contracted = _fit_quietly(digits, contractive=1.0)
    assert contracted.history_[-1, "train_contractive"] > 0
    assert mean_norm(contracted) < 0.5 * mean_norm(plain)
