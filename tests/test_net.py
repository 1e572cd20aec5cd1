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


def test_penalty_gradients_match_autograd_of_the_formula(digits):
    est = AutoencoderTransformer(2, alpha=2.0, l1=0.5, **FAST).fit(digits)
    net = est.net_
    weights = net.module_.weights()
    n = net.n_train_
    X = torch.zeros(1, 64)
    net.penalty_gradients_ = []
    terms = net.loss_terms(net.module_(X), X, training=True)
    expected_l2 = 0.5 * 2.0 / n * sum(w.square().sum() for w in weights)
    expected_l1 = 0.5 / n * sum(w.abs().sum() for w in weights)
    torch.testing.assert_close(terms["l2"], expected_l2)
    torch.testing.assert_close(terms["l1"], expected_l1)
    net.module_.zero_grad()
    (3.0 * terms["l2"] + terms["l1"]).backward()
    for w in weights:
        torch.testing.assert_close(w.grad, 3.0 * 2.0 / n * w + 0.5 / n * torch.sign(w))
    # Each penalty's backward reported its share of the gradient (in the
    # order autograd ran them).
    assert len(net.penalty_gradients_) == 2
    for i, w in enumerate(weights):
        reported = sum(grads[i] for grads in net.penalty_gradients_)
        torch.testing.assert_close(reported, w.grad)


def test_no_penalty_terms_without_penalties(digits):
    est = AutoencoderTransformer(2, alpha=0.0, **FAST).fit(digits)
    X = torch.zeros(1, 64)
    terms = est.net_.loss_terms(est.net_.module_(X), X, training=True)
    assert set(terms) == {"reconstruction"}
