"""The objective: named terms, their weights, and their record in the history."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from skae import AutoencoderTransformer
from skae._modules import Autoencoder
from skae._objective import TERMS, Objective, Term
from tests.conftest import FAST


def _params(**params):
    return {**AutoencoderTransformer().get_params(), **params}


def _batch(n=20, p=6, seed=0):
    module = Autoencoder(p, 2, (8,), random_state=seed)
    X = torch.rand(n, p, generator=torch.Generator().manual_seed(seed))
    return module, X, module.parts(X)


def test_loss_is_the_reconstruction_plus_weighted_terms():
    module, X, output = _batch()
    objective = Objective(_params(l1=0.5))
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
    assert Objective(_params(l1=0.0)).names == ["reconstruction"]


def test_gradients_are_those_of_the_formula():
    module, X, output = _batch()
    objective = Objective(_params(l1=2.0))
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
    loss, _ = Objective(_params(loss="bce", scaling=None))(
        X, output, module, training=True
    )
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
    objective = Objective(_params(code_energy=3.0))
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
        values.append(Objective(_params(l1=1.0))(x, module.parts(x), module, True)[0])
    torch.set_num_threads(1)
    assert torch.equal(*values)
    assert np.isfinite(values[0].item())
