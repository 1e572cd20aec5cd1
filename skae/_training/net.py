"""The private skorch net that trains the autoencoder, and its construction.

skorch is extended through its documented hooks only: ``initialize_optimizer``,
``get_dataset``, ``get_iterator``, ``train_step_single``, ``validation_step``,
``get_loss``, ``on_batch_end`` and callbacks. :func:`build_net` is the one place
that assembles a net.
"""

from functools import partial

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import (
    Callback,
    GradientNormClipping,
    PassthroughScoring,
    ProgressBar,
)

from .._data.rows import BatchIterator, HoldoutSplit, Rows
from .._devices import fused_supported, loading_device
from .callbacks import ObjectiveTerms, Penalties, ValueClipping
from .loop import Keeper
from .monitor import GradientMonitor, LearningRateMonitor
from .objective import Objective
from .schedules import make_scheduler


class AutoencoderNet(NeuralNet):
    """skorch net that reconstructs its input under a composable objective.

    ``forward`` and ``predict`` return reconstructions of standardized rows.
    ``seed`` seeds the batch order; ``parallel`` holds the ranks of
    data-parallel training (None in one process).
    """

    def __init__(self, *args, seed=0, parallel=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.seed = seed
        self.parallel = parallel

    def initialize(self):
        super().initialize()
        self.generator_ = torch.Generator().manual_seed(self.seed)
        return self

    def initialize_optimizer(self, *args, **kwargs):
        """Build the optimizer with the weight matrices in a ``decay`` group.

        Only that group gets ``alpha``'s weight decay (from ``penalties``).
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
        # skorch maps a CUDA net to CPU when CUDA is missing; any other device
        # this machine lacks falls back to CPU the same way, with a warning.
        if state.get("device") is not None:
            state = {**state, "device": str(loading_device(state["device"]))}
        super().__setstate__(state)

    def get_rng_states(self):
        """The generators' states by role: batch order, module, validation split."""
        states = {
            "batch_order": self.generator_.get_state(),
            "module": self.module_.random.get(torch.device(self.device)).get_state(),
        }
        if self.train_split is not None:
            states["validation_split"] = self.train_split.generator.get_state()
        return states

    def set_rng_states(self, states):
        """Restore states from :meth:`get_rng_states`; a missing role is left."""
        self.generator_.set_state(states["batch_order"])
        if "module" in states:
            device = torch.device(self.device)
            self.module_.random.get(device).set_state(states["module"])
        if self.train_split is not None:
            self.train_split.generator.set_state(states["validation_split"])

    # ------------------------------------------------------------ skorch hooks

    def get_dataset(self, X, y=None):
        """Wrap standardized rows (an array or tensor) as a :class:`Rows` dataset."""
        if isinstance(X, Rows):
            return X
        X = X if isinstance(X, torch.Tensor) else np.asarray(X)
        return Rows(torch.as_tensor(X, dtype=torch.float32, device=self.device))

    def get_iterator(self, dataset, training=False):
        return BatchIterator(
            dataset,
            self.batch_size,
            shuffle=training,
            generator=self.generator_,
            shard=self.parallel if training else None,
        )

    def train_step_single(self, batch, **fit_params):
        """Forward, loss and backward for one batch whose target is itself.

        ``Module.train`` walks every submodule: called only when needed.
        """
        if not self.module_.training:
            self.module_.train()
        Xi, n_global = batch
        output = self.module_.parts(Xi, jacobian=self.criterion_.needs_jacobian)
        loss = self.get_loss(output, None, X=Xi, training=True)
        if self.parallel is None:
            loss.backward()
            return {"loss": loss, "y_pred": output.reconstruction}
        # Data parallel: this rank's piece of a global batch of n_global rows.
        parallel, n_local = self.parallel, len(Xi)
        (loss * parallel.weight(n_local, n_global, parallel.world)).backward()
        parallel.average_gradients(self.module_)
        values = parallel.reduce_batch(
            {**self.terms_, "": loss.detach()}, n_local, n_global
        )
        loss = values.pop("")
        self.terms_ = values  # the global batch's terms, not the piece's
        return {"loss": loss, "y_pred": output.reconstruction}

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        """With data parallel, record the global batch's size, not the piece's."""
        if self.parallel is not None and training:
            self.history.record_batch("train_batch_size", batch[1])

    def validation_step(self, batch, **fit_params):
        """Loss of one validation batch, in eval mode, without gradients."""
        if self.module_.training:
            self.module_.eval()
        Xi, _ = batch
        # torch.func.vjp computes the contractive term's products under
        # no_grad too.
        with torch.no_grad():
            output = self.module_.parts(Xi, jacobian=self.criterion_.needs_jacobian)
            loss = self.get_loss(output, None, X=Xi, training=False)
        return {"loss": loss, "y_pred": output.reconstruction}

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """The objective's loss; its terms kept, detached, in ``terms_``."""
        loss, values = self.criterion_(X, y_pred, self.module_, training)
        self.terms_ = {name: value.detach() for name, value in values.items()}
        return loss


def _optimizer(solver, momentum, device):
    """Return the optimizer class and its settings for ``solver``."""
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


#: Names of the callbacks skorch adds by itself.
SKORCH_CALLBACKS = ("epoch_timer", "train_loss", "valid_loss", "print_log")


def build_net(
    *,
    module,
    module_params,
    objective_params,
    solver,
    momentum,
    learning_rate_init,
    alpha,
    batch_size,
    max_iter,
    tol,
    n_iter_no_change,
    validation_fraction,
    lr_schedule,
    lr_schedule_params,
    max_grad_norm,
    clip_value,
    callbacks,
    verbose,
    seed,
    device,
    parallel=None,
):
    """Return an uninitialized :class:`AutoencoderNet`.

    skorch builds ``module`` from ``module_params`` and the
    :class:`~skae._training.objective.Objective` from ``objective_params``;
    ``validation_fraction`` is None without a split; ``seed`` seeds a
    generator per role. The rest are the estimator parameters of those names.
    """
    validate = validation_fraction is not None
    objective = Objective(**objective_params)  # for the names of its terms
    optimizer, settings = _optimizer(solver, momentum, device)
    own = [
        ("lr", LearningRateMonitor()),
        ("gradient_monitor", GradientMonitor()),
    ]
    if max_grad_norm is not None:
        own.append(("grad_norm_clipping", GradientNormClipping(max_grad_norm)))
    if clip_value is not None:
        own.append(("grad_value_clipping", ValueClipping(clip_value)))
    own.append(("objective_terms", ObjectiveTerms()))
    for name in objective.names:
        key = f"train_{name}"
        own.append((key, PassthroughScoring(name=key, on_train=True)))
    if validate and len(objective.validated_names) > 1:
        for name in objective.validated_names:
            key = f"valid_{name}"
            own.append((key, PassthroughScoring(name=key, on_train=False)))
    own.append(("penalties", Penalties(alpha)))
    own.append(("early_stopping", Keeper(patience=n_iter_no_change, tol=tol)))
    scheduler = make_scheduler(lr_schedule, lr_schedule_params, max_iter)
    if scheduler is not None:
        own.append(("lr_scheduler", scheduler))
    if verbose >= 2:
        own.append(("progress_bar", ProgressBar()))
    own.extend(_user_callbacks(callbacks, reserved=[name for name, _ in own]))
    # With the reconstruction alone, train_reconstruction is train_loss.
    quiet = ["grad_norms", "train_batch_count", "valid_batch_count", "restart"]
    if objective.names == ["reconstruction"]:
        quiet.append("train_reconstruction")
    return AutoencoderNet(
        module=module,
        **{f"module__{name}": value for name, value in module_params.items()},
        module__random_state=seed,
        criterion=partial(Objective, **objective_params),
        optimizer=optimizer,
        lr=learning_rate_init,
        max_epochs=max_iter,
        batch_size=batch_size,
        train_split=HoldoutSplit(
            validation_fraction, torch.Generator().manual_seed(seed + 2)
        )
        if validate
        else None,
        callbacks=own,
        # Silent: no epoch table to format (1 ms an epoch on small data).
        **(
            {"callbacks__print_log__keys_ignored": quiet}
            if verbose
            else {"callbacks__print_log": None}
        ),
        seed=seed + 3,
        parallel=parallel,
        verbose=int(verbose > 0),
        device=str(device),
        **{f"optimizer__{k}": v for k, v in settings.items()},
    )


#: skae's callbacks that only some settings add.
OPTIONAL_CALLBACKS = (
    "grad_norm_clipping",
    "grad_value_clipping",
    "lr_scheduler",
    "progress_bar",
)


def _user_callbacks(extra, reserved):
    """The ``callbacks`` parameter's items: callbacks or unreserved (name, cb)."""
    reserved = {*reserved, *OPTIONAL_CALLBACKS, *SKORCH_CALLBACKS}
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
