"""
=======================
Learning-rate schedules
=======================

``lr_schedule`` changes the learning rate after every epoch, through one of
PyTorch's schedulers run by skorch's ``LRScheduler``. This example trains the
same autoencoder with each schedule, for at most the same number of epochs,
and plots the learning rate each epoch used (recorded in
``history_[:, "lr"]``) next to the training loss. ``lr_schedule_params``
overrides a schedule's defaults, e.g. ``{"gamma": 0.9}`` for
``"exponential"``.
"""

# %%
# One fit per schedule
# --------------------
# Small batches (``batch_size=64``) make each step noisy, which is where
# lowering the rate towards the end pays off. Early stopping (the default)
# ends a run once its validation loss has not improved for 10 epochs and
# restores the weights of its best epoch, so the runs last different numbers
# of epochs; the schedules that depend on the training length (``"linear"``,
# ``"step"``, ``"cosine"``, ``"warm_restarts"``) are laid out over
# ``max_iter``.
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skae import AutoencoderTransformer

X, _ = load_digits(return_X_y=True)
X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)

max_iter = 80
schedules = [
    "constant",
    "exponential",
    "linear",
    "step",
    "cosine",
    "warm_restarts",
    "plateau",
]
fitted, warned = {}, {}
for schedule in schedules:
    # A schedule still improving after max_iter epochs says so with a
    # ConvergenceWarning: recorded here to show it in the table below.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted[schedule] = AutoencoderTransformer(
            n_components=8,
            batch_size=64,
            lr_schedule=schedule,
            max_iter=max_iter,
            random_state=0,
        ).fit(X_train)
    warned[schedule] = ", ".join(w.category.__name__ for w in caught) or "-"

summary = pd.DataFrame(
    {
        "final lr": [m.history_[-1]["lr"] for m in fitted.values()],
        "final training loss": [m.loss_curve_[-1] for m in fitted.values()],
        "test MSE": [-m.score(X_test) for m in fitted.values()],
        "stopped": [m.stop_reason_ for m in fitted.values()],
        "warning": list(warned.values()),
    },
    index=pd.Index(schedules, name="lr_schedule"),
)
print(summary.to_string(float_format="{:.3g}".format))

# %%
# Learning rate and training loss per epoch
# -----------------------------------------
# Left: the rate each epoch used. ``"step"`` divides it by 10 every
# ``max_iter // 3`` epochs; ``"exponential"`` multiplies it by 0.97 each
# epoch; ``"cosine"`` and ``"linear"`` bring it smoothly to (almost) zero by
# ``max_iter``; ``"warm_restarts"`` runs cosine cycles that restart at the
# initial rate, each cycle twice as long as the previous one. ``"plateau"``
# (the default) halves the rate after 5 epochs without improvement of the
# validation loss. Right: the training loss.
fig, (ax_lr, ax_loss) = plt.subplots(1, 2, figsize=(12, 4.5))
colors = plt.get_cmap("tab10")
for i, (schedule, model) in enumerate(fitted.items()):
    epochs = np.asarray(model.history_[:, "epoch"])
    style = {"color": colors(i), "label": schedule}
    if schedule == "plateau":
        style["linestyle"] = "--"
    ax_lr.plot(epochs, model.history_[:, "lr"], **style)
    ax_loss.plot(epochs, model.loss_curve_, **style)
ax_lr.set_yscale("log")
ax_lr.set_xlabel("epoch")
ax_lr.set_ylabel("learning rate")
ax_lr.set_title("lr_schedule")
ax_loss.set_yscale("log")
ax_loss.set_xlabel("epoch")
ax_loss.set_ylabel("training loss (standardized units)")
ax_loss.set_title("Training loss")
ax_loss.legend(ncols=2)
for ax in (ax_lr, ax_loss):
    ax.grid(True, which="major", alpha=0.3)
fig.tight_layout()
plt.show()

# %%
# Test error per schedule
# -----------------------
# Every schedule that lowers the rate (``"cosine"``, ``"plateau"``,
# ``"linear"``, ``"exponential"``, ``"step"``) reaches a lower test error than
# the constant rate in this run: the small steps average out the noise of
# small batches, and the validation loss keeps improving for longer, so early
# stopping lets them train longer (60 to 80 epochs, against 46 for the
# constant rate). ``"warm_restarts"`` (cycles of 12, 24 and 48 epochs,
# ``T_0 = ceil(max_iter / 7)``) is back at a large rate when its third cycle
# starts, at epoch 37, and early stopping ends it there.
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.barh(schedules, summary["test MSE"], color=[colors(i) for i in range(7)])
ax.set_xlim(0.9 * summary["test MSE"].min(), 1.02 * summary["test MSE"].max())
ax.invert_yaxis()
ax.set_xlabel("test MSE (lower is better)")
fig.tight_layout()
plt.show()

# %%
# Which one to use
# ----------------
# * ``"cosine"`` or ``"linear"`` is a good choice when the number of epochs is
#   fixed in advance: large steps early, fine steps at the end.
# * ``"plateau"``, the default, adapts to the loss and suits
#   ``early_stopping=True``, where the number of epochs is not known in
#   advance; it then watches the validation loss.
# * ``"step"`` and ``"exponential"`` need their settings matched to the
#   training length, e.g. ``lr_schedule_params={"gamma": 0.9}``.
# * With the default ``batch_size=256`` and a short budget the constant rate
#   is hard to beat: the loss is still falling when training ends, and
#   lowering the rate only slows it down.
