"""L2 and L1 weight penalties as single autograd nodes with closed-form gradients.

Written with autograd primitives, ``0.5 * c * sum(||W||^2)`` puts a dozen nodes
per weight matrix into the graph; as one :class:`torch.autograd.Function` the
forward is two fused kernels and the backward one (``c * W``, or
``c * sign(W)``), which keeps the penalties nearly free per batch. Each
backward also hands its gradients to a ``sink`` list, so that
:class:`~skae.callbacks.GradientMonitor` can leave them out of the gradient
norms it records without recomputing them.
"""

import torch


class _L2(torch.autograd.Function):
    @staticmethod
    def forward(ctx, coef, sink, *weights):
        ctx.coef, ctx.sink = coef, sink
        ctx.save_for_backward(*weights)
        norms = torch.stack(torch._foreach_norm(weights))
        return 0.5 * coef * norms.square().sum()

    @staticmethod
    def backward(ctx, grad_output):
        grads = torch._foreach_mul(ctx.saved_tensors, grad_output * ctx.coef)
        ctx.sink.append(grads)
        return (None, None, *grads)


class _L1(torch.autograd.Function):
    @staticmethod
    def forward(ctx, coef, sink, *weights):
        ctx.coef, ctx.sink = coef, sink
        ctx.save_for_backward(*weights)
        return coef * torch.stack(torch._foreach_norm(weights, 1)).sum()

    @staticmethod
    def backward(ctx, grad_output):
        grads = torch._foreach_sign(ctx.saved_tensors)
        torch._foreach_mul_(grads, grad_output * ctx.coef)
        ctx.sink.append(grads)
        return (None, None, *grads)


def l2_penalty(weights, coef, sink):
    """Return ``0.5 * coef * sum(||W||^2)``; gradient ``coef * W`` goes to ``sink``."""
    return _L2.apply(coef, sink, *weights)


def l1_penalty(weights, coef, sink):
    """Return ``coef * sum(|W|)``; its gradient ``coef * sign(W)`` goes to ``sink``."""
    return _L1.apply(coef, sink, *weights)
