"""Public callbacks that record how an autoencoder trains (:mod:`skae.callbacks`)."""

import math

import numpy as np
import torch
from skorch.callbacks import Callback

from .._nn.modules import layer_parameter_groups
from ..exceptions import ExplodingGradientWarning, VanishingGradientWarning
from . import advice


class GradientMonitor(Callback):
    """Record each layer's gradient L2 norm, averaged over an epoch's batches.

    Norms are taken before clipping; the module needs ``named_layers()``.
    Read more in the :ref:`User Guide <diagnostics>`.

    Parameters
    ----------
    name : str, default="grad_norms"
        Key of the history entry.
    vanishing_ratio : float, default=1e-3
        First-over-last layer norm ratio below which :meth:`diagnose` finds vanishing.
    exploding_norm : float, default=1e3
        :meth:`diagnose` reports exploding gradients above this mean norm.
    loss_rise : float, default=0.1
        Fractional rise of the training loss over the epochs that counts as exploding.

    See Also
    --------
    skae.plotting.plot_gradient_flow : Draw the recorded norms over the epochs.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoencoderTransformer
    >>> X, _ = load_digits(return_X_y=True)
    >>> ae = AutoencoderTransformer(2, hidden_layer_sizes=(8,), max_iter=2,
    ...                             random_state=0).fit(X[:200])
    >>> list(ae.history_[-1, "grad_norms"])  # doctest: +NORMALIZE_WHITESPACE
    ['encoder.0', 'encoder.code', 'encoder.pca', 'decoder.pca', 'decoder.0',
     'decoder.output']
    >>> dict(ae.net_.callbacks_)["gradient_monitor"].diagnose(ae.history_)
    []
    """

    def __init__(
        self,
        name="grad_norms",
        vanishing_ratio=1e-3,
        exploding_norm=1e3,
        loss_rise=0.1,
    ):
        self.name = name
        self.vanishing_ratio = vanishing_ratio
        self.exploding_norm = exploding_norm
        self.loss_rise = loss_rise

    #: Per-batch norms kept before folding into per-layer sums (bounds memory).
    _FOLD_EVERY = 256

    def on_train_begin(self, net, **kwargs):
        names, params, index = layer_parameter_groups(net.module_)
        self.layer_names_ = names
        # Modules that are not skae's compare their first and last layers.
        span = getattr(net.module_, "depth_span", None)
        self.span_ = span() if span is not None else (names[0], names[-1])
        self.grace_ = getattr(net.module_, "vanishing_grace", 0)
        self._params = params
        self._index = index.to(params[0].device)
        self._reset()

    def on_epoch_begin(self, net, **kwargs):
        self._reset()

    def _reset(self):
        self._batches, self._sum, self._count = [], None, 0

    def _fold(self):
        """Add the kept batches' per-layer norms to the running sum."""
        squares = torch.stack(self._batches).float().square_()  # (batches, params)
        per_layer = torch.zeros(
            squares.shape[0], len(self.layer_names_), device=squares.device
        ).index_add_(1, self._index, squares)
        total = per_layer.sqrt_().sum(dim=0)
        self._sum = total if self._sum is None else self._sum + total
        self._count += squares.shape[0]
        self._batches = []

    def on_grad_computed(self, net, named_parameters, training=False, **kwargs):
        if not training:
            return
        grads = [
            p.grad if p.grad is not None else torch.zeros_like(p) for p in self._params
        ]
        self._batches.append(_norms(grads))
        if len(self._batches) >= self._FOLD_EVERY:
            self._fold()

    def on_epoch_end(self, net, **kwargs):
        if self._batches:
            self._fold()
        if not self._count:
            return
        means = (self._sum / self._count).tolist()
        net.history.record(self.name, dict(zip(self.layer_names_, means)))
        self._reset()

    def __getstate__(self):
        state = dict(self.__dict__)
        for key in ("_batches", "_params", "_sum", "_count"):
            state.pop(key, None)
        return state

    def diagnose(self, history, n_restarts=0, remedies=None, *, loss_rise=None):
        """Return ``(warning_class, message)`` pairs for what the history shows.

        Exploding gradients first, else vanishing ones between ``depth_span()``'s
        layers. Read more in the :ref:`User Guide <diagnostics>`.

        Parameters
        ----------
        history : skorch.history.History or list of dict
            The epochs to examine.
        n_restarts : int, default=0
            Number of restarts after divergence during those epochs.
        remedies : dict, default=None
            Warning class -> list of suggestions, replacing the defaults.
        loss_rise : float, default=None
            Overrides ``loss_rise`` for this call; ``math.inf`` ignores the rise.

        Returns
        -------
        found : list of (type, str)
            At most one pair; empty when training looks healthy.
        """
        rows = [row for row in history if self.name in row]
        if not rows:
            return []
        rise = self.loss_rise if loss_rise is None else loss_rise
        norms = np.array([list(row[self.name].values()) for row in rows], dtype=float)
        losses = [row["train_loss"] for row in history if "train_loss" in row]
        peak = float(np.max(norms)) if np.isfinite(norms).all() else math.inf
        if n_restarts:
            what = advice.restarted(n_restarts)
        elif peak > self.exploding_norm:
            what = advice.peak_norm(peak)
        elif len(losses) > 1 and losses[-1] > losses[0] * (1 + rise):
            what = advice.loss_rose(losses[0], losses[-1])
        else:
            what = None
        remedies = {**advice.DEFAULT_REMEDIES, **(remedies or {})}
        if what is not None:
            message = advice.exploding(what, remedies[ExplodingGradientWarning])
            return [(ExplodingGradientWarning, message)]
        first, last = self.span_
        if first == last:  # one layer (a PCA-started single hidden layer): no depth
            return []
        i, j = self.layer_names_.index(first), self.layer_names_.index(last)
        kept = [row.get("epoch", math.inf) > self.grace_ for row in rows]
        recent = norms[kept][-10:]
        if not len(recent):
            return []
        with np.errstate(divide="ignore", invalid="ignore"):
            # A first-layer norm of 0 has vanished, even if the last's is 0 too.
            ratios = np.where(recent[:, i] == 0, 0.0, recent[:, i] / recent[:, j])
            ratio = float(np.median(ratios))
        if ratio < self.vanishing_ratio:
            message = advice.vanishing(
                first, last, ratio, losses[-1], remedies[VanishingGradientWarning]
            )
            return [(VanishingGradientWarning, message)]
        return []


def _norms(tensors):
    """L2 norm of each tensor, stacked."""
    return torch.stack([torch.linalg.vector_norm(t) for t in tensors])


class LearningRateMonitor(Callback):
    """Record the learning rate used during each epoch under the key ``lr``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoencoderTransformer
    >>> X, _ = load_digits(return_X_y=True)
    >>> ae = AutoencoderTransformer(2, hidden_layer_sizes=(8,), max_iter=3,
    ...     learning_rate_init=0.01, lr_schedule="exponential",
    ...     lr_schedule_params={"gamma": 0.5}, random_state=0).fit(X[:200])
    >>> ae.history_[:, "lr"]
    [0.01, 0.005, 0.0025]
    """

    def on_epoch_begin(self, net, **kwargs):
        net.history.record("lr", net.optimizer_.param_groups[0]["lr"])
