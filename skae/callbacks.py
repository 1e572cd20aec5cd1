"""skorch callbacks that record and guard the training of an autoencoder.

:class:`GradientMonitor` and :class:`LearningRateMonitor` are public: they work
with any skorch net whose module has a ``named_layers()`` method (for the
gradient monitor) and can be passed to
:class:`~skae.AutoencoderTransformer` through its ``callbacks`` parameter
(skae adds both by itself). The other callbacks are used by the estimator.
"""

import math

import numpy as np
import torch
from skorch.callbacks import Callback, EarlyStopping

from ._modules import layer_parameter_groups
from .exceptions import ExplodingGradientWarning, VanishingGradientWarning

__all__ = ["GradientMonitor", "LearningRateMonitor"]


class GradientMonitor(Callback):
    """Record each layer's gradient L2 norm, averaged over an epoch's batches.

    After each epoch the history gets an entry ``grad_norms``: a dict from layer
    name (``"encoder.0"``, ..., ``"decoder.output"``) to the mean over the
    epoch's training batches of the L2 norm of that layer's gradient (weights,
    bias and normalization parameters together). Norms are measured before any
    gradient clipping, so this callback must come before the clipping callbacks.

    The gradient measured is that of the training loss, which in skae does
    not include ``alpha``: the L2 penalty is weight decay applied inside the
    optimizer's step. A penalty's gradient is proportional to the weights
    themselves and would otherwise hide vanishing gradients: a deep sigmoid
    net whose first layer gets no signal from the data would still show a
    healthy-looking norm there.

    The cost is two tensor operations per batch and no synchronization: the
    per-parameter norms stay on the device until the end of the epoch.

    Parameters
    ----------
    name : str, default="grad_norms"
        Key of the history entry.
    vanishing_ratio : float, default=1e-3
        :meth:`diagnose` reports vanishing gradients when the first layer's
        norm divided by the last layer's stays below this ratio.
    exploding_norm : float, default=1e3
        :meth:`diagnose` reports exploding gradients when a layer's mean norm
        exceeds this value (the loss is in standardized units, where healthy
        norms are of order 1).
    loss_rise : float, default=0.1
        :meth:`diagnose` reports exploding gradients when the last epoch's
        training loss exceeds the first epoch's by more than this fraction.
        A smaller rise is noise around a plateau, not divergence.

    See Also
    --------
    skae.plotting.plot_gradient_flow : Draw the recorded norms over the epochs.

    Examples
    --------
    :class:`~skae.AutoencoderTransformer` adds this callback by itself; its
    records are in ``history_``:

    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoencoderTransformer
    >>> X, _ = load_digits(return_X_y=True)
    >>> ae = AutoencoderTransformer(
    ...     2, hidden_layer_sizes=(8,), max_iter=2, random_state=0
    ... ).fit(X[:200])
    >>> list(ae.history_[-1, "grad_norms"])  # doctest: +NORMALIZE_WHITESPACE
    ['encoder.0', 'encoder.code', 'encoder.pca', 'decoder.pca', 'decoder.0',
     'decoder.output']
    >>> monitor = dict(ae.net_.callbacks_)["gradient_monitor"]
    >>> monitor.diagnose(ae.history_)
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

    #: Per-batch norms kept before they are folded into per-layer sums: a
    #: tensor per batch for a whole epoch of a large data set would hold
    #: about 10 KB per batch (80 MB for 2 million rows in batches of 256).
    _FOLD_EVERY = 256

    def on_train_begin(self, net, **kwargs):
        names, params, index = layer_parameter_groups(net.module_)
        self.layer_names_ = names
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
        # One fused kernel per batch; the per-layer reduction waits for the
        # epoch's end, so the training loop pays two small ops per step.
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

        Exploding, checked first: training diverged and was restarted, some
        layer's mean gradient norm exceeded ``exploding_norm`` or was not
        finite, or the last epoch's training loss is above the first epoch's
        by more than ``loss_rise`` (the steps made the model worse:
        typically a learning rate too high for clipping to rescue).
        Vanishing, reported only when nothing exploded: over the last epochs
        (up to 10), the median ratio of the first layer's gradient norm to
        the last layer's is below ``vanishing_ratio``, so the first layers
        barely learn. The two layers are the module's ``depth_span()`` when
        it has that method (skae's autoencoder anchored at PCA compares the
        ends of its encoder stack, the path whose depth the gradient
        crosses), else the first and last of ``named_layers()``; the first
        ``vanishing_grace`` epochs of the model (a module attribute, 0 if
        absent) are left out.

        Parameters
        ----------
        history : skorch.history.History or list of dict
            The epochs to examine, with the entries this callback recorded.
        n_restarts : int, default=0
            Number of restarts after divergence during those epochs.
        remedies : dict, default=None
            Warning class -> list of suggestions for its message, replacing
            the defaults in ``DEFAULT_REMEDIES`` (skae leaves out the
            settings already in use).
        loss_rise : float, default=None
            Replaces the monitor's ``loss_rise`` for this call; ``math.inf``
            leaves the rise of the loss out of the diagnosis (skae does so
            when no trained epoch was kept: the weights training started
            from were better than all of them).

        Returns
        -------
        found : list of (type, str)
            At most one ``(warning_class, message)`` pair; empty when training
            looks healthy.
        """
        rows = [row for row in history if self.name in row]
        if not rows:
            return []
        rise = self.loss_rise if loss_rise is None else loss_rise
        norms = np.array([list(row[self.name].values()) for row in rows], dtype=float)
        losses = [row["train_loss"] for row in history if "train_loss" in row]
        peak = float(np.max(norms)) if np.isfinite(norms).all() else math.inf
        if n_restarts:
            what = f"training diverged and was restarted {n_restarts} time(s)"
        elif peak > self.exploding_norm:
            what = f"the largest per-layer gradient norm reached {peak:.3g}"
        elif len(losses) > 1 and losses[-1] > losses[0] * (1 + rise):
            what = (
                f"the training loss rose from {losses[0]:.4g} (epoch 1) to "
                f"{losses[-1]:.4g} (last epoch)"
            )
        else:
            what = None
        remedies = {**DEFAULT_REMEDIES, **(remedies or {})}
        if what is not None:
            message = f"Exploding gradients: {what}." + _suggest(
                remedies[ExplodingGradientWarning]
            )
            return [(ExplodingGradientWarning, message)]
        first, last = getattr(self, "span_", None) or (
            self.layer_names_[0],
            self.layer_names_[-1],
        )
        i, j = self.layer_names_.index(first), self.layer_names_.index(last)
        grace = getattr(self, "grace_", 0)
        kept = [row.get("epoch", math.inf) > grace for row in rows]
        recent = norms[kept][-10:]
        if not len(recent):
            return []
        with np.errstate(divide="ignore", invalid="ignore"):
            # A first-layer norm that underflowed to 0 is a vanished gradient
            # even when the last layer's is 0 too (0 / 0).
            ratios = np.where(recent[:, i] == 0, 0.0, recent[:, i] / recent[:, j])
            ratio = float(np.median(ratios))
        if ratio < self.vanishing_ratio:
            message = (
                f"Vanishing gradients: the gradient norm of {first!r} is "
                f"{ratio:.1e} times that of {last!r}: the first layers barely "
                f"learn (final training loss {losses[-1]:.4g})."
            ) + _suggest(remedies[VanishingGradientWarning])
            return [(VanishingGradientWarning, message)]
        return []


#: What :meth:`GradientMonitor.diagnose` suggests, per warning, by default.
#: Layer normalization is not among the vanishing-gradient remedies: in deep
#: sigmoid stacks it leaves the first layer's gradient 1e-12 times the last's.
DEFAULT_REMEDIES = {
    ExplodingGradientWarning: [
        "a lower learning_rate_init",
        "max_grad_norm=1.0 or clip_value",
        "normalization='batch'",
        "solver='adam'",
    ],
    VanishingGradientWarning: [
        "residual=True",
        "normalization='batch'",
        "a non-saturating activation such as 'relu' or 'gelu'",
        "fewer layers",
    ],
}


def _suggest(remedies):
    if not remedies:
        return " The usual remedies are already in use."
    if len(remedies) <= 2:
        return f" Try {' or '.join(remedies)}."
    return f" Try {', '.join(remedies[:-1])}, or {remedies[-1]}."


def _norms(tensors):
    """L2 norm of each tensor, stacked.

    ``torch._foreach_norm`` (what ``clip_grad_norm_`` uses) computes them in
    one fused kernel; it is not public API, so plain per-tensor norms stand in
    where it is missing.
    """
    foreach = getattr(torch, "_foreach_norm", None)
    if foreach is not None:
        return torch.stack(foreach(tensors))
    return torch.stack([torch.linalg.vector_norm(t) for t in tensors])


class LearningRateMonitor(Callback):
    """Record the learning rate used during each epoch under the key ``lr``.

    The rate is read from the optimizer when the epoch begins, so it is the
    rate the epoch's steps used, whatever schedule changes it afterwards.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoencoderTransformer
    >>> X, _ = load_digits(return_X_y=True)
    >>> ae = AutoencoderTransformer(
    ...     2,
    ...     hidden_layer_sizes=(8,),
    ...     max_iter=3,
    ...     lr_schedule="exponential",
    ...     lr_schedule_params={"gamma": 0.5},
    ...     learning_rate_init=0.01,
    ...     random_state=0,
    ... ).fit(X[:200])
    >>> ae.history_[:, "lr"]
    [0.01, 0.005, 0.0025]
    """

    def on_epoch_begin(self, net, **kwargs):
        net.history.record("lr", net.optimizer_.param_groups[0]["lr"])


class ValueClipping(Callback):
    """Clip every gradient element into ``[-clip_value, clip_value]``."""

    def __init__(self, clip_value=None):
        self.clip_value = clip_value

    def on_grad_computed(self, net, named_parameters, **kwargs):
        if self.clip_value is not None:
            torch.nn.utils.clip_grad_value_(
                [p for _, p in named_parameters], self.clip_value
            )


class _Diverged(Exception):
    """Internal signal: the training loss or a gradient norm became non-finite."""

    def __init__(self, epoch, loss):
        super().__init__(epoch, loss)
        self.epoch = epoch
        self.loss = loss


class TrainingGuard(Callback):
    """Keep the weights of the lowest training loss; stop when training diverges.

    One in-memory copy of the module's weights is kept (on the device): the
    *best* state, of the epoch with the lowest training loss, the initial
    weights included (scored by the loss of the very first batch). After a
    divergence training restarts from it (the last epoch before a blow-up is
    often finite but already ruined), and after a Ctrl-C it is restored.
    Each training call (``fit``, or one ``partial_fit``) starts afresh from
    the weights it begins with.

    A non-finite training loss in any batch, or a non-finite epoch loss or
    gradient norm (recorded by :class:`GradientMonitor`, which must come
    first), raises an internal signal that the training driver turns into a
    restart. The epoch that runs after a restart records ``restart`` (how
    many restarts preceded it) in the history.
    """

    def on_train_begin(self, net, **kwargs):
        self.best_state_ = _copy_state(net.module_)
        self.best_loss_ = None
        self.best_epoch_ = len(net.history)
        self.restarts_pending_ = 0

    def restarted(self):
        """Note a restart: the next epoch records it in the history."""
        self.restarts_pending_ += 1

    def on_epoch_begin(self, net, **kwargs):
        if self.restarts_pending_:
            net.history.record("restart", self.restarts_pending_)
            self.restarts_pending_ = 0

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        if not training:
            return
        # skorch has just recorded loss.item(): reading it back avoids a
        # second device synchronization per batch.
        value = net.history[-1]["batches"][-1]["train_loss"]
        if not math.isfinite(value):
            raise _Diverged(net.history[-1]["epoch"], value)
        if self.best_loss_ is None:
            self.best_loss_ = value

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        train_loss = row.get("train_loss", math.nan)
        norms = row.get("grad_norms", {}).values()
        if not (math.isfinite(train_loss) and all(map(math.isfinite, norms))):
            # A finite loss with infinite gradients is a blow-up in progress.
            raise _Diverged(row["epoch"], train_loss)
        if train_loss <= self.best_loss_:
            self.best_state_ = _copy_state(net.module_)
            self.best_loss_, self.best_epoch_ = train_loss, row["epoch"]


def _copy_state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


class ObjectiveTerms(Callback):
    """Record each term of the objective per batch, as ``train_<name>``.

    Validation batches record ``valid_<name>`` for each validated term when
    ``valid_loss`` has more than one.

    The net keeps the batch's terms (detached) in ``terms_``; this records
    them once skorch has read the batch loss, which has already waited for
    the device, so reading them costs no extra synchronization. A
    ``PassthroughScoring`` per term averages them over the epoch. With the
    reconstruction as the only term it is the loss, read back from the
    history.
    """

    def on_batch_end(self, net, training=False, **kwargs):
        terms = net.terms_
        if not training:
            # valid_loss is the reconstruction's when it is the only term.
            if len(terms) > 1:
                for name, value in terms.items():
                    net.history.record_batch(f"valid_{name}", value.item())
            return
        if len(terms) == 1:
            (name,) = terms
            value = net.history[-1]["batches"][-1]["train_loss"]
            net.history.record_batch(f"train_{name}", value)
            return
        for name, value in terms.items():
            net.history.record_batch(f"train_{name}", value.item())


def monitored_loss(net):
    """The loss the last epoch is judged by: validation loss if any, else training.

    ``lr_schedule="plateau"`` watches it: a model fitted with
    ``early_stopping`` validates during ``fit`` but not during ``partial_fit``.
    """
    row = net.history[-1]
    return row["valid_loss"] if "valid_loss" in row else row["train_loss"]


class Stopper(EarlyStopping):
    """skorch's ``EarlyStopping`` that the training driver can read and pause.

    ``stopped_`` tells the driver that this callback, not a user callback or
    a Ctrl-C, raised the ``KeyboardInterrupt``; ``active=False`` (set by the
    driver for ``partial_fit``, whose call is one epoch) never stops.

    :meth:`start_from` makes the weights training starts from the first
    candidate ("epoch 0"), with the score they get before any step: a
    trained epoch must then beat it by the relative ``margin`` (and by
    ``threshold``) to become the best, and if none does, those starting
    weights are what ``load_best`` restores. skorch's rule, whose best starts
    at infinity, can only restore a trained epoch, even when every epoch is
    worse than where training began (as from ``init="pca"``, PCA's own
    solution).

    skorch prints the epoch table from its ``print_log`` callback, which runs
    after every other callback; stopping raises before it, so the row of the
    last epoch went unprinted. This one prints it first, then says why
    training stops: the monitored loss may still have fallen, by less than
    ``tol`` (the ``threshold``).

    Parameters
    ----------
    margin : float, default=0.0
        Relative margin by which a trained epoch must beat the starting
        weights' score (see :meth:`start_from`).
    **kwargs
        skorch's ``EarlyStopping`` parameters.
    """

    active = True

    def __init__(self, margin=0.0, **kwargs):
        super().__init__(**kwargs)
        self.margin = margin

    def on_train_begin(self, net, **kwargs):
        super().on_train_begin(net, **kwargs)
        self.stopped_ = False
        self.best_score_ = None

    def start_from(self, net, score, state=None):
        """Count the current weights, scored ``score``, as the best so far.

        Call after ``on_train_begin``, before the first epoch. ``best_epoch_``
        becomes the number of epochs already in the history (0 in ``fit``);
        ``state`` is a copy of the weights if the caller has one.
        """
        self.best_score_ = score
        self.dynamic_threshold_ = self._bar(score * (1.0 - self.margin))
        self.best_epoch_ = len(net.history)
        if self.load_best:
            self.best_model_weights_ = state or _copy_state(net.module_)

    def _bar(self, score):
        """What a later epoch must go below to improve on ``score``."""
        if self.threshold_mode == "rel":
            return score - self.threshold * abs(score)
        return score - self.threshold

    def on_epoch_end(self, net, **kwargs):
        # skorch's rule (lower is better), with the best weights copied by
        # tensor clones rather than a deepcopy of the state dict (1 ms of a
        # one-epoch fit on load_digits).
        if not self.active:
            return
        score = net.history[-1, self.monitor]
        if score < self.dynamic_threshold_:
            self.misses_ = 0
            self.dynamic_threshold_ = self._bar(score)
            self.best_epoch_, self.best_score_ = net.history[-1, "epoch"], score
            if self.load_best:
                self.best_model_weights_ = _copy_state(net.module_)
            return
        self.misses_ += 1
        if self.misses_ < self.patience:
            return
        if net.verbose:
            print_log = dict(net.callbacks_).get("print_log")
            if print_log is not None:
                print_log.on_epoch_end(net, **kwargs)
            self.sink(
                f"Stopping: {self.monitor} has not gone below its best minus "
                f"tol={self.threshold:g} for {self.patience} epochs."
            )
        self.stopped_ = True
        raise KeyboardInterrupt

    def keep_start(self, net, state, score):
        """Make the starting weights (``state``, scored ``score``) the best."""
        self.best_epoch_, self.best_score_ = 0, score
        if self.load_best:
            self.best_model_weights_ = state

    def on_train_end(self, net, **kwargs):
        # skorch's own reads the last epoch, which a Ctrl-C during the first
        # epoch leaves none of.
        last = net.history[-1, "epoch"] if len(net.history) else 0
        if (
            self.load_best
            and self.best_model_weights_ is not None
            and self.best_epoch_ != last
        ):
            net.module_.load_state_dict(self.best_model_weights_)
            if net.verbose:
                self.sink(
                    f"Restoring the weights of epoch {self.best_epoch_}."
                    if self.best_epoch_
                    else "Keeping the weights training started from: no epoch "
                    "beat them."
                )
