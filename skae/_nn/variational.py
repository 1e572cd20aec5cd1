"""The variational autoencoder module (a Gaussian posterior over the code) and its ELBO.

The decoder reads a draw ``mean + exp(log_var / 2) * eps`` in training mode and
the mean (what ``transform`` returns) in eval mode.
"""

import math

import numpy as np
import torch
from torch import nn

from .._data.sources import read_chunk
from .modules import Autoencoder, Output


class VariationalAutoencoder(Autoencoder):
    """Autoencoder with a Gaussian posterior ``N(mean, exp(log_var))`` per row.

    Parameters as :class:`~skae._nn.modules.Autoencoder`; the log-variance head
    starts at zero (unit variance, the prior's).
    """

    def __init__(self, n_features, n_components, hidden_layer_sizes=(), **params):
        super().__init__(n_features, n_components, hidden_layer_sizes, **params)
        width = int(hidden_layer_sizes[-1]) if len(hidden_layer_sizes) else n_features
        self.log_var = nn.Linear(width, n_components)
        with torch.no_grad():
            self.log_var.weight.zero_()
            self.log_var.bias.zero_()

    def posterior(self, x):
        """Return the posterior's mean and log-variance for encoder input ``x``."""
        h = self.encoder.hidden(x)
        return self.encoder.out(h), self.log_var(h)

    def draw(self, mean, log_var, generator=None):
        """Return ``mean + exp(log_var / 2) * eps``, ``eps ~ N(0, 1)``."""
        eps = torch.empty_like(mean).normal_(generator=generator)
        return torch.addcmul(mean, torch.exp(0.5 * log_var), eps)

    def forward(self, x):
        return self.parts(x).reconstruction

    def parts(self, x, jacobian=False):
        """Return the :class:`~skae._nn.modules.Output` of one pass (code: the mean)."""
        x = self.corrupt(x)
        vjp = None
        if jacobian:
            # log_var is auxiliary output: the vjp is the mean's alone.
            mean, vjp, log_var = torch.func.vjp(self.posterior, x, has_aux=True)
        else:
            mean, log_var = self.posterior(x)
        z = mean
        if self.training:
            z = self.draw(mean, log_var, self.random.get(x.device))
        logits = self.decoder.pre_activation(z)
        return Output(mean, logits, self.decoder.out_activation, vjp, log_var)

    def named_layers(self):
        """Yield ``(name, module)`` per layer; ``encoder.log_var`` follows the code."""
        yield from self.encoder.named_layers("encoder")
        yield "encoder.log_var", self.log_var
        yield from self.decoder.named_layers("decoder")


def kl_divergence(mean, log_var):
    """Elementwise ``KL(N(mean, exp(log_var)) || N(0, 1))``."""
    return 0.5 * (mean.square() + log_var.exp() - 1.0 - log_var)


def log_likelihood(x, logits, activation, loss):
    """Per-row ``log p(x | z)`` in the network's scaled units (nats).

    ``"mse"``: a Gaussian of variance 1/2 (minus the summed squared error plus
    a constant); ``"bce"``: Bernoulli variables of probabilities ``sigmoid(logits)``.
    """
    if loss == "bce":
        values = nn.functional.binary_cross_entropy_with_logits(
            logits, x, reduction="none"
        )
        return -values.sum(dim=1)
    error = activation(logits) - x
    return -(error * error).sum(dim=1) - 0.5 * x.shape[1] * math.log(math.pi)


def elbo(
    module, X, *, scaling, loss, n_draws, generator, device, check, batch_size=None
):
    """Per-row evidence lower bound of ``X``, in input units.

    ``E_q[log p(x | z)] - KL`` from ``n_draws`` draws per row, minus
    ``sum(log(scale_))`` (scaled to input units). ``X`` is read in dense
    float64 batches, each passed to ``check``; ``module`` is float64, in eval.
    """
    n, n_features = X.shape
    standardize = scaling.standardizer(torch.float64, device)
    log_scale = float(torch.log(torch.as_tensor(scaling.scale_)).sum())
    batch_size = batch_size or max(1, 2**19 // max(n_features * n_draws, 1))
    out = torch.empty(n, dtype=torch.float64)
    with torch.no_grad():
        for start in range(0, n, batch_size):
            batch = read_chunk(X, slice(start, start + batch_size), np.float64)
            check(batch)
            x = torch.as_tensor(batch, device=device)
            u = standardize(x)
            mean, log_var = module.posterior(u)
            # All draws of the batch in one pass: n_draws copies of its rows.
            z = module.draw(
                mean.repeat(n_draws, 1), log_var.repeat(n_draws, 1), generator
            )
            likelihood = log_likelihood(
                u.repeat(n_draws, 1),
                module.decoder.pre_activation(z),
                module.decoder.out_activation,
                loss,
            )
            likelihood = likelihood.view(n_draws, len(u)).mean(dim=0)
            bound = likelihood - kl_divergence(mean, log_var).sum(dim=1)
            out[start : start + len(u)] = (bound - log_scale).cpu()
    return out.numpy()
