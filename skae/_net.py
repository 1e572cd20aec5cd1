"""The private skorch net that trains the autoencoder, and its training driver.

The estimator talks to this module through :func:`build_net` and
:func:`fit_net`; the data it trains on comes from :mod:`skae._data` and
inference runs in :mod:`skae._inference`. skorch is extended only through its
documented hooks: ``get_dataset``, ``get_iterator``, ``train_split``,
``train_step_single``, ``validation_step``, ``get_loss`` and callbacks.
"""

import copy
from dataclasses import dataclass, field

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, GradientNormClipping, ProgressBar

from ._data import BatchIterator, HoldoutSplit, Rows
from ._modules import Autoencoder
from ._penalties import l1_penalty, l2_penalty
from ._runtime import seeded
from ._schedules import make_scheduler
from .callbacks import (
    GradientMonitor,
    LearningRateMonitor,
    Stopper,
    TrainingGuard,
    ValueClipping,
    _Diverged,
)
from .exceptions import TrainingDivergedError

#: Factor applied to the learning rate after a divergence.
RESTART_LR_FACTOR = 0.1

#: Fused optimizers run on CPU from torch 2.4; older versions use ``foreach``.
_FUSED_ON_CPU = tuple(int(v) for v in torch.__version__.split(".")[:2]) >= (2, 4)


class AutoencoderNet(NeuralNet):
    """skorch net whose loss is the reconstruction error plus named penalties.

    Extension points used (skorch's documented hooks): ``get_dataset``,
    ``get_iterator``, ``train_step_single``, ``validation_step`` and
    ``get_loss``; the split is the ``train_split`` parameter. The loss is the
    sum of the terms returned by :meth:`loss_terms`; add a term by overriding
    it.

    Parameters
    ----------
    alpha : float
        Weight of ``0.5 * sum(W ** 2) / n_train`` over all weight matrices
        (L2), where ``n_train`` is the number of training rows.
    l1 : float
        Weight of ``sum(abs(W)) / n_train`` over all weight matrices (L1).
    seed : int
        Seeds the generator that shuffles batches.
    """

    def __init__(self, *args, alpha=0.0, l1=0.0, seed=0, **kwargs):
        super().__init__(*args, **kwargs)
        self.alpha = alpha
        self.l1 = l1
        self.seed = seed

    def initialize(self):
        super().initialize()
        self.generator_ = torch.Generator().manual_seed(self.seed)
        self.weights_ = self.module_.weights()
        self.penalty_gradients_ = []
        return self

    def __setstate__(self, state):
        super().__setstate__(state)
        # The cached weight list must point at the unpickled module's tensors.
        if "module_" in self.__dict__:
            self.weights_ = self.module_.weights()

    # ------------------------------------------- training state (persistence)

    def get_rng_states(self):
        """Return the states of the generators training draws from, by role.

        ``"batch_order"`` shuffles the batches; ``"validation_split"``, with a
        validation split, chooses the held-out rows of each call.
        """
        states = {"batch_order": self.generator_.get_state()}
        if self.train_split is not None:
            states["validation_split"] = self.train_split.generator.get_state()
        return states

    def set_rng_states(self, states):
        """Restore states from :meth:`get_rng_states` (the same roles)."""
        self.generator_.set_state(states["batch_order"])
        if self.train_split is not None:
            self.train_split.generator.set_state(states["validation_split"])

    def lr_scheduler(self, rebuild=False):
        """Return the torch learning-rate scheduler, or None.

        None without a schedule, or before training has built the scheduler.

        ``rebuild=True`` builds a fresh one on the current optimizer first, as
        the start of training would, ready for its ``load_state_dict``. Do it
        before loading the optimizer's state: a scheduler's constructor takes
        a step that sets the learning rate.
        """
        callback = dict(self.callbacks_).get("lr_scheduler")
        if callback is None:
            return None
        if rebuild:
            policy = callback.policy_
            callback.lr_scheduler_ = policy(self.optimizer_, **callback.kwargs)
        return getattr(callback, "lr_scheduler_", None)

    # ------------------------------------------------------------ skorch hooks

    def get_dataset(self, X, y=None):
        return X if isinstance(X, Rows) else Rows(X)

    def get_iterator(self, dataset, training=False):
        if training:
            # The penalties are divided by the number of training rows.
            self.n_train_ = len(dataset)
        return BatchIterator(
            dataset, self.batch_size, shuffle=training, generator=self.generator_
        )

    def loss_terms(self, X_pred, X, training):
        """Return the named terms of the loss, as a dict of scalar tensors.

        ``reconstruction`` always; when training, ``l2`` and ``l1`` for the
        penalties that are on. The penalties are single autograd nodes (see
        :mod:`skae._penalties`) whose gradients also land in
        ``penalty_gradients_``.
        """
        terms = {"reconstruction": self.criterion_(X_pred, X)}
        if training and self.alpha:
            coef = self.alpha / self.n_train_
            terms["l2"] = l2_penalty(self.weights_, coef, self.penalty_gradients_)
        if training and self.l1:
            coef = self.l1 / self.n_train_
            terms["l1"] = l1_penalty(self.weights_, coef, self.penalty_gradients_)
        return terms

    def train_step_single(self, batch, **fit_params):
        """Forward, loss and backward for one batch whose target is itself.

        Unlike skorch's default, the modules switch to training mode only when
        they are not in it already (``Module.train`` walks every submodule, a
        cost paid per batch otherwise), and the batch goes to the module as it
        is: it is already a tensor on the right device.
        """
        if not self.module_.training:
            self._set_training(True)
        Xi, _ = batch
        self.penalty_gradients_ = []
        X_pred = self.module_(Xi)
        loss = self.get_loss(X_pred, None, X=Xi, training=True)
        loss.backward()
        return {"loss": loss, "y_pred": X_pred}

    def validation_step(self, batch, **fit_params):
        """Loss of one validation batch, in eval mode, without gradients."""
        if self.module_.training:
            self._set_training(False)
        Xi, _ = batch
        with torch.no_grad():
            X_pred = self.module_(Xi)
            loss = self.get_loss(X_pred, None, X=Xi, training=False)
        return {"loss": loss, "y_pred": X_pred}

    def get_loss(self, y_pred, y_true, X=None, training=False):
        terms = self.loss_terms(y_pred, X, training)
        loss = terms.pop("reconstruction")
        for term in terms.values():
            loss = loss + term
        return loss


@dataclass
class TrainReport:
    """What happened during :func:`train`."""

    stopped_early: bool = False
    interrupted: bool = False
    restarts: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    #: Reconstruction error in scaled units, eval mode (set by the estimator).
    error: float | None = None


def _optimizer(solver, momentum, alpha, device):
    """Return the optimizer class and its settings for ``solver``."""
    fused = {"fused": True}
    if device.type == "cpu" and not _FUSED_ON_CPU:
        fused = {"foreach": True}
    if solver == "adam":
        return torch.optim.Adam, fused
    if solver == "adamw":
        # Decoupled weight decay replaces the L2 term of the loss.
        return torch.optim.AdamW, {**fused, "weight_decay": alpha}
    if solver == "sgd":
        return torch.optim.SGD, {
            **fused,
            "momentum": momentum,
            "nesterov": momentum > 0,
        }
    return torch.optim.RMSprop, {"foreach": True, "momentum": momentum}


def build_net(params, n_features, n_components, seed, device, validate):
    """Return an uninitialized :class:`AutoencoderNet` for the estimator's params.

    Parameters
    ----------
    params : dict
        The estimator's ``get_params()``.
    n_features, n_components : int
    seed : int
        Seeds batch shuffling and the validation split.
    device : torch.device
    validate : bool
        Hold out ``validation_fraction`` and stop early on the validation loss.
    """
    p = params
    monitor = "valid_loss" if validate else "train_loss"
    split_gen = torch.Generator().manual_seed(seed + 1)
    optimizer, opt_kwargs = _optimizer(p["solver"], p["momentum"], p["alpha"], device)
    callbacks = [
        ("lr", LearningRateMonitor()),
        ("gradient_monitor", GradientMonitor()),
    ]
    if p["max_grad_norm"] is not None:
        callbacks.append(
            ("grad_norm_clipping", GradientNormClipping(p["max_grad_norm"]))
        )
    if p["clip_value"] is not None:
        callbacks.append(("grad_value_clipping", ValueClipping(p["clip_value"])))
    scheduler = make_scheduler(
        p["lr_schedule"], p["lr_schedule_params"], p["max_iter"], monitor
    )
    if scheduler is not None:
        callbacks.append(("lr_scheduler", scheduler))
    callbacks.append(("guard", TrainingGuard(monitor=monitor)))
    stopper = Stopper(
        monitor=monitor,
        patience=p["n_iter_no_change"],
        threshold=p["tol"],
        threshold_mode="abs",
        sink=print,
    )
    callbacks.append(("early_stopping", stopper))
    if p["verbose"] >= 2:
        callbacks.append(("progress_bar", ProgressBar()))
    callbacks.extend(_user_callbacks(p["callbacks"], callbacks))
    net = AutoencoderNet(
        module=Autoencoder,
        module__n_features=n_features,
        module__n_components=n_components,
        module__hidden_layer_sizes=tuple(p["hidden_layer_sizes"]),
        module__activation=p["activation"],
        module__output_activation=p["output_activation"],
        module__normalization=p["normalization"],
        module__dropout=p["dropout"],
        module__residual=p["residual"],
        module__init=p["init"],
        criterion=torch.nn.MSELoss,
        optimizer=optimizer,
        lr=p["learning_rate_init"],
        max_epochs=p["max_iter"],
        batch_size=p["batch_size"],
        train_split=HoldoutSplit(p["validation_fraction"], split_gen)
        if validate
        else None,
        callbacks=callbacks,
        callbacks__print_log__keys_ignored=[
            "grad_norms",
            "train_batch_count",
            "valid_batch_count",
        ],
        alpha=0.0 if p["solver"] == "adamw" else p["alpha"],
        l1=p["l1"],
        seed=seed,
        verbose=int(p["verbose"] > 0),
        device=str(device),
        **{f"optimizer__{k}": v for k, v in opt_kwargs.items()},
    )
    return net


#: Names of skae's callbacks that only some settings add.
_OPTIONAL_CALLBACKS = {
    "grad_norm_clipping",
    "grad_value_clipping",
    "lr_scheduler",
    "progress_bar",
}
#: Names of the callbacks skorch adds by itself.
_SKORCH_CALLBACKS = {"epoch_timer", "train_loss", "valid_loss", "print_log"}


def _user_callbacks(extra, own):
    """Return the ``callbacks`` parameter's items, checked against ``own``.

    Each item is a skorch ``Callback`` (instance or class) or a ``(name,
    callback)`` pair whose name is not one of skae's or skorch's own.
    """
    reserved = {name for name, _ in own} | _OPTIONAL_CALLBACKS | _SKORCH_CALLBACKS
    for item in extra or []:
        pair = isinstance(item, tuple) and len(item) == 2
        name, callback = item if pair else (None, item)
        if not (
            isinstance(callback, Callback)
            or (isinstance(callback, type) and issubclass(callback, Callback))
        ) or not (name is None or isinstance(name, str)):
            raise ValueError(
                "callbacks must hold skorch callbacks or (name, callback) pairs; "
                f"got {item!r}."
            )
        if name in reserved:
            raise ValueError(
                f"callbacks: the name {name!r} is taken by skae's or skorch's own "
                f"callbacks ({sorted(reserved)}); choose another name."
            )
    return list(extra or [])


def _callback(net, name):
    return dict(net.callbacks_).get(name)


def fit_net(
    net, data, epochs, *, initialize, max_restarts, restore_best, remedies=None
):
    """Initialize ``net`` if asked, train it for ``epochs`` and diagnose the run.

    Weight initialization, dropout and batch order are seeded from the net's
    seed and the number of epochs already run, inside a forked global RNG.
    The module is left in eval mode.

    Returns
    -------
    TrainReport
        With ``warnings``: the ``(category, message)`` pairs the gradient
        monitor found in this call's epochs (suggesting ``remedies``, see
        :meth:`GradientMonitor.diagnose`), for the caller to emit.
    """
    device = torch.device(net.device)
    start = len(net.history_) if net.initialized_ else 0
    with seeded(net.seed + start, device):
        if initialize:
            net.initialize()
        report = train(
            net, data, epochs, max_restarts=max_restarts, restore_best=restore_best
        )
    net.module_.eval()
    monitor = _callback(net, "gradient_monitor")
    report.warnings = monitor.diagnose(
        net.history[start:], len(report.restarts), remedies
    )
    return report


def train(net, data, epochs, *, max_restarts, restore_best=True):
    """Run ``epochs`` epochs of ``net`` on ``data`` (a :class:`Rows` or tensor).

    Divergence (a NaN or infinite loss or gradient norm) rolls the module back
    to the guard's safe state (the lowest training loss seen, the initial
    weights included), multiplies the learning rate by
    :data:`RESTART_LR_FACTOR`, rebuilds the optimizer and continues, at most
    ``max_restarts`` times. A real
    KeyboardInterrupt stops training and restores the best weights. With a
    validation split and ``restore_best``, the weights of the epoch with the
    best validation loss are restored at the end, whatever ended training.

    Returns
    -------
    TrainReport
    """
    snapshot = _snapshot(net)
    try:
        return _train(net, data, epochs, max_restarts, restore_best)
    except Exception:
        _restore(net, snapshot)
        raise


def _snapshot(net):
    return (
        copy.deepcopy(net.module_.state_dict()),
        copy.deepcopy(net.optimizer_.state_dict()),
        len(net.history),
    )


def _restore(net, snapshot):
    module_state, optimizer_state, n_epochs = snapshot
    net.module_.load_state_dict(module_state)
    net.initialize_optimizer()
    net.optimizer_.load_state_dict(optimizer_state)
    del net.history[n_epochs:]


def _train(net, data, epochs, max_restarts, restore_best):
    report = TrainReport()
    guard = _callback(net, "guard")
    stopper = _callback(net, "early_stopping")
    target = len(net.history) + epochs
    while len(net.history) < target:
        net.max_epochs = target - len(net.history)
        try:
            net.partial_fit(data)
        except _Diverged as signal:
            if len(report.restarts) >= max_restarts:
                raise TrainingDivergedError(
                    f"Training diverged: the training loss was {signal.loss} at "
                    f"epoch {signal.epoch} after {len(report.restarts)} restart(s) "
                    f"(max_restarts={max_restarts}), the last with learning rate "
                    f"{net.optimizer_.param_groups[0]['lr']:.3g}. Try a lower "
                    "learning_rate_init, max_grad_norm=1.0, normalization='batch', "
                    "or solver='adam'."
                ) from None
            _drop_partial_epoch(net)
            net.module_.load_state_dict(guard.safe_state_)
            lr = net.optimizer_.param_groups[0]["lr"] * RESTART_LR_FACTOR
            base = net.lr * RESTART_LR_FACTOR ** (len(report.restarts) + 1)
            net.initialize_optimizer()
            for group in net.optimizer_.param_groups:
                group["lr"] = lr
                group["initial_lr"] = base
            report.restarts.append((signal.epoch, signal.loss, lr))
            if net.verbose:
                print(
                    f"Restart {len(report.restarts)}/{max_restarts}: the training "
                    f"loss was {signal.loss:.4g} at epoch {signal.epoch}; going on "
                    f"from the last safe weights with learning rate {lr:.3g}."
                )
            continue
        if stopper.misses_ >= stopper.patience:
            report.stopped_early = True
        elif len(net.history) < target or "train_loss" not in net.history[-1]:
            report.interrupted = True
            _drop_partial_epoch(net)
        break
    if report.interrupted or (restore_best and net.train_split is not None):
        net.module_.load_state_dict(guard.best_state_)
    return report


def _drop_partial_epoch(net):
    if len(net.history) and "train_loss" not in net.history[-1]:
        del net.history[-1]
