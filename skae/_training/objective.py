"""The training objective: a weighted sum of named terms.

A term is a small class with a ``name`` (recorded as ``train_<name>``), the
estimator ``parameter`` that weighs it, and ``__call__(X, output, module)``
returning its value on a batch: ``X`` the standardized batch to reconstruct,
``output`` the module's :class:`~skae._nn.modules.Output`. A new term is one
class registered with :func:`term` and one estimator parameter of its name.
``alpha`` is not a term: it is the optimizer's weight decay.

Reductions sum rows first, then over rows: torch's single-pass reduction of a
large tensor rounds differently with 1 and 2 threads.
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
        Divide the weight by the number of training rows (penalties on the
        weights, as scikit-learn's MLP divides ``alpha``), so that the same
        weight suits small and large data sets.
    validated : bool
        Part of ``valid_loss``, what early stopping judges: the terms of
        each row (reconstruction, code sparsity, contraction, KL) are, so
        that early stopping keeps the best model of the objective trained
        on; penalties on the weights are not (they do not depend on rows).
        Each is also recorded as ``valid_<name>`` when there are several.
    needs_jacobian : bool
        Reads ``output.vjp``: the module runs its encoder under
        :func:`torch.func.vjp`.
    """

    name = ""
    parameter = ""
    per_training_row = False
    validated = False
    needs_jacobian = False

    def __call__(self, X, output, module):
        raise NotImplementedError


class Reconstruction(Term):
    """Mean reconstruction loss per matrix element: ``"mse"`` or ``"bce"``.

    ``"bce"`` is the binary cross-entropy of the decoder's sigmoid output,
    computed stably from its logits (the data must lie in [0, 1]).
    """

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
    """Mean over rows of ``||dz/dx||_F^2``, the encoder's Jacobian at each row.

    Exact, from the pass that computed the code: ``output.vjp`` is mapped with
    :func:`torch.func.vmap` over the unit vectors of the code, every row's
    Jacobian in one batched backward pass. Each row's code must depend on that
    row only (no batch normalization in training mode).
    """

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
    """``KL(q(z|x) || N(0, I))`` per row, averaged, divided by ``n_features``.

    Divided by the number of features, it stands on the footing of the
    reconstruction term (a mean per entry): with ``beta=1`` the objective is
    the negative ELBO divided by ``n_features``, up to a constant.
    """

    name = "kl"
    parameter = "beta"
    validated = True

    def __call__(self, X, output, module):
        return mean_row_sum(kl_divergence(output.code, output.log_var)) / X.shape[1]


class Objective:
    """The weighted sum of the reconstruction and the terms with a weight.

    skorch's ``criterion``: an object, not an ``nn.Module``, as it holds no
    weights. ``n_train`` (the training rows of the pass) is set by the
    ``penalties`` callback when an epoch begins.

    Parameters
    ----------
    loss : {"mse", "bce"}, default="mse"
        The reconstruction term.
    **weights : float
        Weight of each registered term, by its parameter name (``l1``,
        ``activity_l1``, ``contractive``, ``beta``); 0 leaves it out.
    """

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
        """Return the loss and, by name, each term's weighted value.

        Validation sums the ``validated`` terms only.
        """
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
