"""The private skorch net that trains the autoencoder.

The estimator builds it with :func:`build_net` and trains it with
:func:`skae._training.train`; the data it trains on comes from
:mod:`skae._data`, the loss from :mod:`skae._objective`, and inference runs in
:mod:`skae._inference`. skorch is extended only through its documented hooks:
``get_dataset``, ``get_iterator``, ``train_split``, ``infer``,
``train_step_single``, ``validation_step``, ``get_loss`` and callbacks.
"""

from functools import partial

import torch
from skorch import NeuralNet
from skorch.callbacks import (
    Callback,
    GradientNormClipping,
    PassthroughScoring,
    ProgressBar,
)

from ._data import BatchIterator, HoldoutSplit, Rows
from ._devices import fused_supported, loading_device
from ._modules import Autoencoder
from ._objective import Objective
from ._schedules import make_scheduler, scale_rates
from .callbacks import (
    GradientMonitor,
    LearningRateMonitor,
    ObjectiveTerms,
    Stopper,
    TrainingGuard,
    ValueClipping,
)

#: Relative margin by which a trained epoch's validation loss must beat that
#: of the weights training starts from (with ``init="pca"``, PCA's) to
#: replace them as early stopping's best: on 12 to 40 validation rows an
#: epoch can look better than PCA and be worse on new data (see the
#: "skae versus PCA" guide).
START_MARGIN = 0.005


class AutoencoderNet(NeuralNet):
    """skorch net that reconstructs its input under a composable objective.

    The net's ``criterion`` builds an :class:`~skae._objective.Objective`
    from the estimator's parameters: the
    loss of a batch is the weighted sum of its terms, and each term's value
    is recorded per batch as ``train_<name>`` (averaged per epoch by a
    ``PassthroughScoring`` callback). ``infer`` returns the module's
    :class:`~skae._modules.Output` (code and logits) for the terms to read.

    Parameters
    ----------
    alpha : float
        L2 penalty, applied as the optimizer's ``weight_decay`` of
        ``alpha / n_train`` on the weight matrices only, ``n_train`` being
        the number of rows of the current training pass.
    seed : int
        Seeds the generator that shuffles batches (the module and the
        validation split have generators of their own).
    parallel : DataParallel or None
        The ranks of data-parallel training (:mod:`skae._distributed`), or
        None in one process.
    """

    def __init__(self, *args, alpha=0.0, seed=0, parallel=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.alpha = alpha
        self.seed = seed
        self.parallel = parallel

    def initialize(self):
        super().initialize()
        self.generator_ = torch.Generator().manual_seed(self.seed)
        return self

    def initialize_optimizer(self, *args, **kwargs):
        """Build the optimizer with ``alpha``'s weight decay on its own group.

        Two parameter groups: the weight matrices (``module_.decayed_weights()``,
        marked ``decay``), whose ``weight_decay`` :meth:`get_iterator` sets to
        ``alpha / n_train``, and every other parameter (biases, normalization
        parameters), never decayed. The optimizer's other settings come from
        skorch's ``optimizer__`` parameters, as usual.
        """
        named = list(self.get_all_learnable_params())
        _, settings = self.get_params_for_optimizer("optimizer", named)
        decayed = {id(w) for w in self.module_.decayed_weights()}
        groups = [
            {"params": [p for _, p in named if id(p) not in decayed]},
            {"params": [p for _, p in named if id(p) in decayed], "decay": True},
        ]
        groups = [{**g, "weight_decay": 0.0} for g in groups if g["params"]]
        self.optimizer_ = self.optimizer(groups, **settings)
        return self

    def __setstate__(self, state):
        # skorch maps a CUDA net to CPU when CUDA is missing; any other
        # device this machine lacks (MPS, XPU, a CUDA index beyond its
        # devices) falls back to CPU the same way, with a warning.
        if state.get("device") is not None:
            state = {**state, "device": str(loading_device(state["device"]))}
        super().__setstate__(state)

    # ------------------------------------------- training state (persistence)

    def get_rng_states(self):
        """Return the states of the generators training draws from, by role.

        ``"batch_order"`` shuffles the batches; ``"module"`` draws dropout
        masks (on the training device); ``"validation_split"``, with a
        validation split, chooses the held-out rows of each call.
        """
        states = {
            "batch_order": self.generator_.get_state(),
            "module": self.module_.random.get(torch.device(self.device)).get_state(),
        }
        if self.train_split is not None:
            states["validation_split"] = self.train_split.generator.get_state()
        return states

    def set_rng_states(self, states):
        """Restore states from :meth:`get_rng_states` (the same roles).

        A missing ``"module"`` state (a file written before skae had one)
        leaves the module's generator as seeded.
        """
        self.generator_.set_state(states["batch_order"])
        if "module" in states:
            device = torch.device(self.device)
            self.module_.random.get(device).set_state(states["module"])
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

    # ------------------------------------------- what the training driver uses

    def callback(self, name):
        """Return the initialized callback called ``name`` (None if absent)."""
        return dict(self.callbacks_).get(name)

    def begin_call(self, incremental):
        """Set up one training call: ``partial_fit`` holds out nothing, stops never."""
        if self.train_split is not None:
            self.train_split.active = not incremental
        self.callback("early_stopping").active = not incremental

    def end_call(self):
        """Release what the call held (the cached validation split)."""
        if self.train_split is not None:
            self.train_split.forget()

    @property
    def validates(self):
        """Whether the current call holds out validation rows."""
        return self.train_split is not None and self.train_split.active

    def restart(self, factor):
        """Go on after a divergence from the weights of the lowest training loss.

        The optimizer's state is cleared and every learning rate, the
        schedule's included, multiplied by ``factor``; the optimizer and the
        scheduler stay the same objects, so the schedule keeps its position.
        Returns the new learning rate and the epoch whose weights were taken.
        """
        guard = self.callback("guard")
        self.module_.load_state_dict(guard.best_state_)
        self.optimizer_.state.clear()
        scale_rates(self.optimizer_, self.lr_scheduler(), factor)
        guard.restarted()
        return self.optimizer_.param_groups[0]["lr"], guard.best_epoch_

    def restore_best(self):
        """Load the best weights: of the validation loss if any, else training."""
        stopper = self.callback("early_stopping")
        best = getattr(stopper, "best_model_weights_", None)
        if not (self.validates and best is not None):
            best = self.callback("guard").best_state_
        self.module_.load_state_dict(best)

    # ------------------------------------------------------------ skorch hooks

    def get_dataset(self, X, y=None):
        return X if isinstance(X, Rows) else Rows(X)

    def get_iterator(self, dataset, training=False):
        if training:
            # Penalties on the weights are divided by the number of rows.
            n_train = len(dataset)
            self.criterion_.n_train = n_train
            for group in self.optimizer_.param_groups:
                if group.get("decay"):
                    group["weight_decay"] = self.alpha / n_train
        return BatchIterator(
            dataset,
            self.batch_size,
            shuffle=training,
            generator=self.generator_,
            shard=self.parallel if training else None,
        )

    def infer(self, x, jacobian=False, **fit_params):
        """Return the module's :class:`~skae._modules.Output` for the batch.

        ``jacobian=True`` (training with a term that needs it) runs the
        encoder so that the output can give Jacobian products.
        """
        return self.module_.parts(x, jacobian=jacobian)

    def train_step_single(self, batch, **fit_params):
        """Forward, loss and backward for one batch whose target is itself.

        Unlike skorch's default, the module switches to training mode only when
        it is not in it already (``Module.train`` walks every submodule, a
        cost paid per batch otherwise), and the batch goes to the module as it
        is: it is already a tensor on the right device.
        """
        if not self.module_.training:
            self.module_.train()
        Xi, n_global = batch
        output = self.infer(Xi, jacobian=self.criterion_.needs_jacobian)
        loss = self.get_loss(output, None, X=Xi, training=True)
        if self.parallel is None:
            loss.backward()
            return {"loss": loss, "y_pred": output}
        # Data parallel: this rank's piece of a global batch of n_global rows.
        parallel, n_local = self.parallel, len(Xi)
        (loss * parallel.weight(n_local, n_global, parallel.world)).backward()
        parallel.average_gradients(self.module_)
        values = parallel.reduce_batch(
            {**self.terms_, "": loss.detach()}, n_local, n_global
        )
        loss = values.pop("")
        self.terms_ = values  # the global batch's terms, not the piece's
        return {"loss": loss, "y_pred": output}

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        """With data parallel, record the global batch's size, not the piece's."""
        if self.parallel is not None and training:
            self.history.record_batch("train_batch_size", batch[1])

    def on_train_end(self, net, X=None, y=None, **kwargs):
        """With data parallel, give every rank the main process's buffers."""
        if self.parallel is not None:
            with torch.no_grad():
                self.parallel.broadcast_buffers(self.module_)

    def validation_step(self, batch, **fit_params):
        """Loss of one validation batch, in eval mode, without gradients."""
        if self.module_.training:
            self.module_.eval()
        Xi, _ = batch
        with torch.no_grad():
            # torch.func.vjp computes the contractive term's Jacobian
            # products under no_grad too.
            output = self.infer(Xi, jacobian=self.criterion_.needs_jacobian)
            loss = self.get_loss(output, None, X=Xi, training=False)
        return {"loss": loss, "y_pred": output}

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """The objective's loss; training keeps each term of the batch.

        The terms are kept detached in ``terms_``;
        :class:`~skae.callbacks.ObjectiveTerms` records them when the batch
        ends, after skorch has read the loss (no extra device sync).
        """
        loss, values = self.criterion_(X, y_pred, self.module_, training)
        self.terms_ = {name: value.detach() for name, value in values.items()}
        return loss


def _optimizer(solver, momentum, device):
    """Return the optimizer class and its settings for ``solver``."""
    # Fused kernels run on CUDA, XPU, MPS and (from torch 2.4) CPU.
    fused = {"fused": True} if fused_supported(device) else {"foreach": True}
    if solver == "adam":
        return torch.optim.Adam, fused
    if solver == "adamw":
        return torch.optim.AdamW, fused
    if solver == "sgd":
        return torch.optim.SGD, {
            **fused,
            "momentum": momentum,
            "nesterov": momentum > 0,
        }
    return torch.optim.RMSprop, {"foreach": True, "momentum": momentum}


def build_net(
    params,
    n_features,
    n_components,
    seed,
    device,
    validate,
    parallel=None,
    module=Autoencoder,
):
    """Return an uninitialized :class:`AutoencoderNet` for the estimator's params.

    Parameters
    ----------
    params : dict
        The estimator's ``get_params()``.
    n_features, n_components : int
    seed : int
        Seeds the weights, dropout, batch shuffling and the validation split
        (each from a generator of its own).
    device : torch.device
    validate : bool
        Hold out ``validation_fraction`` in ``fit``, stop early on the
        validation loss and restore the weights of its best epoch.
    parallel : DataParallel or None
        Data-parallel training over several processes (see
        :mod:`skae._distributed`).
    module : type, default=Autoencoder
        The module class (:class:`~skae._vae_module.VariationalAutoencoder`
        for the variational estimator).
    """
    p = params
    objective = Objective(p)  # for the names of its terms
    monitor = "valid_loss" if validate else "train_loss"
    optimizer, opt_kwargs = _optimizer(p["solver"], p["momentum"], device)
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
    callbacks.append(("objective_terms", ObjectiveTerms()))
    for name in objective.names:
        key = f"train_{name}"
        callbacks.append((key, PassthroughScoring(name=key, on_train=True)))
    if validate and len(objective.validated_names) > 1:
        for name in objective.validated_names:
            key = f"valid_{name}"
            callbacks.append((key, PassthroughScoring(name=key, on_train=False)))
    callbacks.append(("guard", TrainingGuard()))
    scheduler = make_scheduler(p["lr_schedule"], p["lr_schedule_params"], p["max_iter"])
    if scheduler is not None:
        callbacks.append(("lr_scheduler", scheduler))
    stopper = Stopper(
        margin=START_MARGIN,
        monitor=monitor,
        patience=p["n_iter_no_change"],
        threshold=p["tol"],
        threshold_mode="abs",
        load_best=validate,
    )
    callbacks.append(("early_stopping", stopper))
    if p["verbose"] >= 2:
        callbacks.append(("progress_bar", ProgressBar()))
    callbacks.extend(_user_callbacks(p["callbacks"], callbacks))
    # With the reconstruction alone, train_reconstruction is train_loss.
    quiet = ["grad_norms", "train_batch_count", "valid_batch_count", "restart"]
    if objective.names == ["reconstruction"]:
        quiet.append("train_reconstruction")
    net = AutoencoderNet(
        module=module,
        module__n_features=n_features,
        module__n_components=n_components,
        module__hidden_layer_sizes=tuple(p["hidden_layer_sizes"]),
        module__activation=p["activation"],
        module__output_activation=_output_activation(p),
        module__normalization=p["normalization"],
        module__dropout=p["dropout"],
        module__residual=p["residual"],
        module__init=p["init"],
        module__noise=p["noise"],
        module__noise_level=p["noise_level"],
        module__tied_weights=p["tied_weights"],
        module__random_state=seed,
        criterion=partial(Objective, p),
        optimizer=optimizer,
        lr=p["learning_rate_init"],
        max_epochs=p["max_iter"],
        batch_size=p["batch_size"],
        train_split=HoldoutSplit(
            p["validation_fraction"], torch.Generator().manual_seed(seed + 2)
        )
        if validate
        else None,
        callbacks=callbacks,
        **(
            {"callbacks__print_log__keys_ignored": quiet}
            if p["verbose"]
            # Silent: no epoch table to format (1 ms an epoch on small data).
            else {"callbacks__print_log": None}
        ),
        alpha=p["alpha"],
        seed=seed + 3,
        parallel=parallel,
        verbose=int(p["verbose"] > 0),
        device=str(device),
        **{f"optimizer__{k}": v for k, v in opt_kwargs.items()},
    )
    return net


def _output_activation(params):
    """The decoder's output activation: a sigmoid for ``loss="bce"``."""
    return "sigmoid" if params["loss"] == "bce" else params["output_activation"]


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
