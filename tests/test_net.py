"""The private skorch net: loss terms and penalties."""

import torch

from skae import AutoencoderTransformer
from tests.conftest import FAST


def test_loss_is_reconstruction_plus_named_penalties(digits):
    est = AutoencoderTransformer(2, alpha=0.1, l1=0.01, **FAST).fit(digits)
    net = est.net_
    X = torch.as_tensor(digits[:20], dtype=torch.float32)
    with torch.no_grad():
        X_pred = net.module_(X)
        terms = net.loss_terms(X_pred, X, training=True)
        weights = net.module_.weights()
        assert net.n_train_ == 300
        l2 = 0.5 * 0.1 / 300 * sum(w.square().sum() for w in weights)
        l1 = 0.01 / 300 * sum(w.abs().sum() for w in weights)
        torch.testing.assert_close(terms["reconstruction"], ((X_pred - X) ** 2).mean())
        torch.testing.assert_close(terms["l2"], l2)
        torch.testing.assert_close(terms["l1"], l1)
        total = net.get_loss(X_pred, None, X=X, training=True)
        torch.testing.assert_close(total, terms["reconstruction"] + l2 + l1)
        # Validation measures the reconstruction alone.
        assert set(net.loss_terms(X_pred, X, training=False)) == {"reconstruction"}


def test_penalty_gradients_match_autograd(digits):
    est = AutoencoderTransformer(2, alpha=2.0, l1=0.5, **FAST).fit(digits)
    net = est.net_
    weights = net.module_.weights()
    net.module_.zero_grad()
    X = torch.zeros(1, 64)
    terms = net.loss_terms(net.module_(X), X, training=True)
    (terms["l2"] + terms["l1"]).backward()
    for w, closed_form in zip(weights, net.penalty_gradients(weights), strict=True):
        torch.testing.assert_close(w.grad, closed_form)


def test_no_penalty_gradients_without_penalties(digits):
    est = AutoencoderTransformer(2, alpha=0.0, **FAST).fit(digits)
    assert est.net_.penalty_gradients(est.net_.module_.weights()) is None
