"""L1/L2 penalties as single autograd nodes with closed-form gradients."""

import torch

from skae._penalties import l1_penalty, l2_penalty


def _weights():
    torch.manual_seed(0)
    return [
        torch.randn(3, 4, requires_grad=True),
        torch.randn(2, 3, requires_grad=True),
    ]


def test_l2_value_gradient_and_sink():
    weights, sink = _weights(), []
    value = l2_penalty(weights, 0.5, sink)
    expected = 0.5 * 0.5 * sum(w.detach().square().sum() for w in weights)
    torch.testing.assert_close(value, expected)
    (2.0 * value).backward()
    for w, reported in zip(weights, sink[0], strict=True):
        torch.testing.assert_close(w.grad, 2.0 * 0.5 * w.detach())
        torch.testing.assert_close(reported, w.grad)


def test_l1_value_gradient_and_sink():
    weights, sink = _weights(), []
    value = l1_penalty(weights, 0.25, sink)
    torch.testing.assert_close(
        value, 0.25 * sum(w.detach().abs().sum() for w in weights)
    )
    value.backward()
    for w, reported in zip(weights, sink[0], strict=True):
        torch.testing.assert_close(w.grad, 0.25 * torch.sign(w.detach()))
        torch.testing.assert_close(reported, w.grad)


def test_penalties_match_autograd_of_the_plain_formula():
    weights = _weights()
    plain = [w.detach().clone().requires_grad_(True) for w in weights]
    (l2_penalty(weights, 0.3, []) + l1_penalty(weights, 0.1, [])).backward()
    formula = sum(0.15 * w.square().sum() + 0.1 * w.abs().sum() for w in plain)
    formula.backward()
    for w, p in zip(weights, plain, strict=True):
        torch.testing.assert_close(w.grad, p.grad)
