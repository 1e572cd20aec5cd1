"""The training objective: a weighted sum of named terms.

Each term is a small class with a ``name`` (its history key is
``train_<name>``), the estimator ``parameter`` that weighs it, and a
``__call__(X, output, module)`` returning its value on one batch: ``X`` the
batch the network should reconstruct (standardized), ``output`` the
:class:`~skae._modules.Output` of the module on it. The reconstruction term is
always on; every other term joins the objective when its parameter is
non-zero.

Adding a term (an activity penalty, a Jacobian penalty, a KL divergence) is
writing one class here, registered with :func:`term`, and one estimator
parameter of the same name: nothing else changes. ``alpha`` (L2) is not a
term: it is weight decay applied by the optimizer (see :mod:`skae._net`).

Reductions are row sums first, then a sum over rows: torch's single-pass
reduction of a large tensor rounds differently with 1 and 2 threads, and the
recorded losses decide when training stops.
"""

import torch
from torch.nn import functional as F

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
        Reads ``output.vjp``: the module must run its encoder under
        :func:`torch.func.vjp` (see :meth:`~skae._modules.Autoencoder.parts`).
    """

    name = ""
    parameter = ""
    per_training_row = False
    validated = False
    needs_jacobian = False

    def __init__(self, params):
        self.params = params

    def __call__(self, X, output, module):
        raise NotImplementedError


class Reconstruction(Term):
    """Mean reconstruction loss per matrix element: ``"mse"`` or ``"bce"``.

    ``"bce"`` is the binary cross-entropy of the decoder's sigmoid output,
    computed stably from its logits (the data must lie in [0, 1]).
    """

    name = "reconstruction"
    validated = True

    def __call__(self, X, output, module):
        return mean_of_rows(self.values(X, output))

    def values(self, X, output):
        """The loss of each element of the batch, of ``X``'s shape."""
        if self.params["loss"] == "bce":
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

    Exact, from the pass that computed the code: ``output.vjp`` (from
    :func:`torch.func.vjp`) is mapped with :func:`torch.func.vmap` over the
    ``n_components`` unit vectors of the code, giving every row's Jacobian
    in one batched backward pass; the gradient of the penalty then flows
    through it to the weights. ``x`` is the encoder's input (after any
    corruption), in the network's scaled units. Each row's code must depend
    on that row only (no batch normalization in training mode), which
    :func:`skae._checks.check_params` ensures.
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

    The posterior ``q(z|x)`` is the Gaussian of mean ``output.code`` and
    log-variance ``output.log_var``. Dividing by the number of features puts
    it on the footing of the reconstruction term, a mean per matrix element:
    with ``beta=1`` the objective is the negative evidence lower bound
    (ELBO) of a Gaussian decoder of variance 1/2 (``loss="mse"``) or a
    Bernoulli decoder (``loss="bce"``), divided by ``n_features``, up to a
    constant.
    """

    name = "kl"
    parameter = "beta"
    validated = True

    def __call__(self, X, output, module):
        return mean_row_sum(kl_divergence(output.code, output.log_var)) / X.shape[1]


def kl_divergence(mean, log_var):
    """Elementwise ``KL(N(mean, exp(log_var)) || N(0, 1))``."""
    return 0.5 * (mean.square() + log_var.exp() - 1.0 - log_var)


class Objective:
    """The weighted sum of the active terms of an estimator's parameters.

    Passed to skorch as the net's ``criterion`` (an object, not an
    ``nn.Module``: it holds no weights, so nothing wraps it, e.g. in
    DistributedDataParallel). The net sets :attr:`n_train` when a training
    pass starts.

    Parameters
    ----------
    params : dict
        The estimator's parameters (``get_params()``).
    """

    def __init__(self, params):
        self.terms = [(Reconstruction(params), 1.0)]
        for parameter, cls in TERMS.items():
            weight = params.get(parameter, 0.0)
            if weight:
                self.terms.append((cls(params), float(weight)))
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
