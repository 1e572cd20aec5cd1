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

    The gradient measured is that of the reconstruction loss: when the net
    exposes ``penalty_gradients_`` (skae's net does: the gradients its L1/L2
    penalties contributed to the current step, one list per penalty, in the
    order of the net's ``weights_``), those are subtracted first.
    A penalty's gradient is proportional to the weights themselves and would
    otherwise hide vanishing gradients: a deep sigmoid net whose first layer
    gets no signal from the data still shows a healthy-looking norm there.

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
    >>> sorted(ae.history_[-1, "grad_norms"])
    ['decoder.0', 'decoder.output', 'encoder.0', 'encoder.code']
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

    def on_train_begin(self, net, **kwargs):
        names, params, index = layer_parameter_groups(net.module_)
        self.layer_names_ = names
        self._params = params
        self._index = index.to(params[0].device)
        self._batches = []
        # Positions of the penalized weight matrices among the parameters, in
        # the order of the net's ``weights_``.
        position = {id(p): i for i, p in enumerate(params)}
        self._weights = [position[id(w)] for w in getattr(net, "weights_", [])]

    def on_epoch_begin(self, net, **kwargs):
        self._batches = []

    def on_grad_computed(self, net, named_parameters, training=False, **kwargs):
        if not training:
            return
        grads = [
            p.grad if p.grad is not None else torch.zeros_like(p) for p in self._params
        ]
        penalties = getattr(net, "penalty_gradients_", None)
        if penalties:
            data = [grads[i] for i in self._weights]
            for penalty in penalties:
                data = torch._foreach_sub(data, penalty)
            for i, g in zip(self._weights, data):
                grads[i] = g
        # One fused kernel per batch; the per-layer reduction waits for the
        # epoch's end, so the training loop pays two small ops per step.
        self._batches.append(torch.stack(torch._foreach_norm(grads)))

    def on_epoch_end(self, net, **kwargs):
        if not self._batches:
            return
        squares = torch.stack(self._batches).float().square_()  # (batches, params)
        per_layer = torch.zeros(
            squares.shape[0], len(self.layer_names_), device=squares.device
        ).index_add_(1, self._index, squares)
        means = per_layer.sqrt_().mean(dim=0).tolist()
        net.history.record(self.name, dict(zip(self.layer_names_, means)))
        self._batches = []

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_batches", None)
        state.pop("_params", None)
        return state

    def diagnose(self, history, n_restarts=0, remedies=None):
        """Return ``(warning_class, message)`` pairs for what the history shows.

        Exploding, checked first: training diverged and was restarted, some
        layer's mean gradient norm exceeded ``exploding_norm`` or was not
        finite, or the last epoch's training loss is above the first epoch's
        by more than ``loss_rise`` (the steps made the model worse:
        typically a learning rate too high for clipping to rescue).
        Vanishing, reported only when nothing exploded: over the last epochs
        (up to 10), the median ratio of the first layer's gradient norm to
        the last layer's is below ``vanishing_ratio``, so the first layers
        barely learn.

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

        Returns
        -------
        found : list of (type, str)
            At most one ``(warning_class, message)`` pair; empty when training
            looks healthy.
        """
        rows = [row for row in history if self.name in row]
        if not rows:
            return []
        norms = np.array([list(row[self.name].values()) for row in rows], dtype=float)
        losses = [row["train_loss"] for row in history if "train_loss" in row]
        peak = float(np.max(norms)) if np.isfinite(norms).all() else math.inf
        if n_restarts:
            what = f"training diverged and was restarted {n_restarts} time(s)"
        elif peak > self.exploding_norm:
            what = f"the largest per-layer gradient norm reached {peak:.3g}"
        elif len(losses) > 1 and losses[-1] > losses[0] * (1 + self.loss_rise):
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
        first, last = self.layer_names_[0], self.layer_names_[-1]
        recent = norms[-10:]
        with np.errstate(divide="ignore", invalid="ignore"):
            # A first-layer norm that underflowed to 0 is a vanished gradient
            # even when the last layer's is 0 too (0 / 0).
            ratios = np.where(recent[:, 0] == 0, 0.0, recent[:, 0] / recent[:, -1])
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
    """Internal signal: the training loss became NaN or infinite."""

    def __init__(self, epoch, loss):
        super().__init__(epoch, loss)
        self.epoch = epoch
        self.loss = loss


class TrainingGuard(Callback):
    """Keep the best and the safe weights; stop on a non-finite loss.

    Two in-memory copies of the module's weights are kept (on the device):

    - the *best* state, of the epoch with the lowest ``monitor`` value, which
      the estimator restores after early stopping on the validation loss or a
      Ctrl-C;
    - the *safe* state, of the epoch with the lowest training loss, the
      initial weights included (scored by the loss of the very first batch).
      After a divergence training restarts from it: the last epoch before a
      blow-up is often finite but already ruined.

    A non-finite training loss in any batch, or a non-finite epoch loss or
    gradient norm (recorded by :class:`GradientMonitor`, which must come
    first), raises an internal signal that the estimator turns into a restart.

    Parameters
    ----------
    monitor : str, default="train_loss"
        History key that defines the best epoch.
    """

    def __init__(self, monitor="train_loss"):
        self.monitor = monitor

    def on_train_begin(self, net, **kwargs):
        if not hasattr(self, "best_state_"):
            state = _copy_state(net.module_)
            self.best_state_ = self.safe_state_ = state
            self.best_score_ = math.inf
            self.safe_score_ = None
            self.best_epoch_ = 0

    def on_batch_end(self, net, batch=None, training=False, loss=None, **kwargs):
        if not training:
            return
        # skorch has just recorded loss.item(): reading it back avoids a
        # second device synchronization per batch.
        value = net.history[-1]["batches"][-1]["train_loss"]
        if not math.isfinite(value):
            raise _Diverged(len(net.history), value)
        if self.safe_score_ is None:
            self.safe_score_ = value

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        train_loss = row.get("train_loss", math.nan)
        norms = row.get("grad_norms", {}).values()
        if not (math.isfinite(train_loss) and all(map(math.isfinite, norms))):
            # A finite loss with infinite gradients is a blow-up in progress.
            raise _Diverged(row["epoch"], train_loss)
        state = None
        if self.safe_score_ is None or train_loss <= self.safe_score_:
            state = _copy_state(net.module_)
            self.safe_state_, self.safe_score_ = state, train_loss
        score = row.get(self.monitor, math.nan)
        if score < self.best_score_:
            self.best_state_ = state if state is not None else _copy_state(net.module_)
            self.best_score_, self.best_epoch_ = score, row["epoch"]


def _copy_state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


class Stopper(EarlyStopping):
    """skorch's ``EarlyStopping`` that logs the last epoch and names ``tol``.

    skorch prints the epoch table from its ``print_log`` callback, which runs
    after every other callback; stopping raises before it, so the row of the
    last epoch went unprinted. This one prints it first, then says why
    training stops: the monitored loss may still have fallen, by less than
    ``tol`` (the ``threshold``).
    """

    def on_epoch_end(self, net, **kwargs):
        score = net.history[-1, self.monitor]
        if self._is_score_improved(score) or self.misses_ + 1 < self.patience:
            return super().on_epoch_end(net, **kwargs)
        self.misses_ += 1
        if net.verbose:
            print_log = dict(net.callbacks_).get("print_log")
            if print_log is not None:
                print_log.on_epoch_end(net, **kwargs)
            self._sink(
                f"Stopping: {self.monitor} has not gone below its best minus "
                f"tol={self.threshold:g} for {self.patience} epochs.",
                verbose=net.verbose,
            )
        raise KeyboardInterrupt
