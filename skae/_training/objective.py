"""The training objective: reconstruction plus terms registered with :func:`term`.

``alpha`` is weight decay, not a term. Reductions sum each row first: torch's
one-pass reduction of a large tensor depends on the thread count.
"""

import torch
from torch.nn import functional as F

from .._nn.variational import kl_divergence

#: Parameter name -> term class, filled by :func:`term` in definition order.
TERMS = {}


def term(cls):
    """Register ``cls`` as the term weighed by the parameter ``cls.parameter``."""
    TERMS[cls.parameter] = cls
    return cls


def mean_of_rows(values):
    """Mean of a (rows, features) tensor, summed row by row first."""
    return values.sum(dim=1).sum() / values.numel()


def mean_row_sum(values):
    """Mean over rows of each row's sum, for a (rows, features) tensor."""
    return values.sum(dim=1).sum() / values.shape[0]


class Term:
    """One named part of the objective.

    Attributes
    ----------
    name : str
        History key suffix: the net records ``train_<name>`` per epoch.
    parameter : str
        The estimator parameter whose value weighs the term.
    per_training_row : bool
        Divide the weight by the training rows, as scikit-learn's MLP does ``alpha``.
    validated : bool
        In ``valid_loss``, judged by early stopping (row terms, not weight penalties).
    needs_jacobian : bool
        Reads ``output.vjp``.
    """

    name = ""
    parameter = ""
    per_training_row = False
    validated = False
    needs_jacobian = False

    def __call__(self, X, output, module):
        raise NotImplementedError


class Reconstruction(Term):
    """Mean reconstruction loss per element: ``"mse"``, or ``"bce"`` from logits."""

    name = "reconstruction"
    validated = True

    def __init__(self, loss="mse"):
        self.loss = loss

    def __call__(self, X, output, module):
        return mean_of_rows(self.values(X, output))

    def values(self, X, output):
        """The loss of each element of the batch, of ``X``'s shape."""
        if self.loss == "bce":
            return F.binary_cross_entropy_with_logits(
                output.logits, X, reduction="none"
            )
        error = output.reconstruction - X
        return error * error


@term
class WeightL1(Term):
    """``sum(|W|)`` over the weight matrices, weighed by ``l1 / n_train``."""

    name = "l1"
    parameter = "l1"
    per_training_row = True

    def __call__(self, X, output, module):
        return sum(w.abs().sum(dim=1).sum() for w in module.weights())


@term
class ActivityL1(Term):
    """``mean over rows of sum(|z|)``, weighed by ``activity_l1``: sparse codes."""

    name = "activity_l1"
    parameter = "activity_l1"
    validated = True

    def __call__(self, X, output, module):
        return mean_row_sum(output.code.abs())


@term
class Contractive(Term):
    """Mean ``||dz/dx||_F^2`` over rows; exact if codes are row-wise (no batch norm)."""

    name = "contractive"
    parameter = "contractive"
    validated = True
    needs_jacobian = True

    def __call__(self, X, output, module):
        code = output.code
        k = code.shape[1]
        basis = torch.eye(k, dtype=code.dtype, device=code.device)
        cotangents = basis.unsqueeze(1).expand(k, code.shape[0], k)
        (rows,) = torch.func.vmap(output.vjp)(cotangents)  # (k, rows, features)
        return mean_row_sum(rows.square().sum(dim=0))


@term
class KullbackLeibler(Term):
    """Mean ``KL(q(z|x) || N(0, I))`` / ``n_features``; ``beta=1``: -ELBO per entry."""

    name = "kl"
    parameter = "beta"
    validated = True

    def __call__(self, X, output, module):
        return mean_row_sum(kl_divergence(output.code, output.log_var)) / X.shape[1]


class Objective:
    """skorch's ``criterion``: the reconstruction plus the terms ``**weights`` weigh."""

    def __init__(self, loss="mse", **weights):
        unknown = set(weights) - set(TERMS)
        if unknown:
            raise TypeError(f"Objective has no terms weighed by {sorted(unknown)}.")
        self.terms = [(Reconstruction(loss), 1.0)]
        for parameter, cls in TERMS.items():
            weight = weights.get(parameter, 0.0)
            if weight:
                self.terms.append((cls(), float(weight)))
        self.n_train = 1

    @property
    def needs_jacobian(self):
        """Whether a term reads the encoder's Jacobian (``output.vjp``)."""
        return any(t.needs_jacobian for t, _ in self.terms)

    @property
    def names(self):
        """Names of the active terms, reconstruction first."""
        return [t.name for t, _ in self.terms]

    @property
    def validated_names(self):
        """Names of the terms of ``valid_loss``, reconstruction first."""
        return [t.name for t, _ in self.terms if t.validated]

    def __call__(self, X, output, module, training):
        """Return the loss and each weighted term (validation: ``validated`` ones)."""
        values = {}
        loss = None
        for t, weight in self.terms:
            if not (training or t.validated):
                continue
            if t.per_training_row:
                weight = weight / self.n_train
            value = t(X, output, module)
            if weight != 1.0:
                value = weight * value
            values[t.name] = value
            loss = value if loss is None else loss + value
        return loss, values
