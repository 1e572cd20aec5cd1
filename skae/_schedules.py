"""Map ``lr_schedule`` names to torch schedulers run by skorch's ``LRScheduler``."""

import inspect
import math

import torch
from skorch.callbacks import LRScheduler
from torch.optim import lr_scheduler

from .callbacks import monitored_loss

SCHEDULES = {
    "exponential": lr_scheduler.ExponentialLR,
    "linear": lr_scheduler.LinearLR,
    "step": lr_scheduler.StepLR,
    "cosine": lr_scheduler.CosineAnnealingLR,
    "warm_restarts": lr_scheduler.CosineAnnealingWarmRestarts,
    "plateau": lr_scheduler.ReduceLROnPlateau,
}


def default_schedule_params(name, max_iter):
    """Return the documented default settings of schedule ``name``.

    Defaults that depend on the training length use ``max_iter`` (epochs):

    - ``"exponential"``: ``gamma=0.97``.
    - ``"linear"``: ``start_factor=1.0, end_factor=0.01, total_iters=max_iter``.
    - ``"step"``: ``step_size=max(1, max_iter // 3), gamma=0.1``.
    - ``"cosine"``: ``T_max=max_iter, eta_min=0.0``.
    - ``"warm_restarts"``: ``T_0=ceil(max_iter / 7), T_mult=2``: restarts
      after about 1/7 and 3/7 of training; the third cycle ends at
      ``max_iter`` or up to 6 epochs after it (rounding), so runs of about 30
      epochs or more end with the small steps of a cycle's end.
    - ``"plateau"``: ``factor=0.5, patience=5, threshold=1e-4``.
    """
    return {
        "constant": {},
        "exponential": {"gamma": 0.97},
        "linear": {"start_factor": 1.0, "end_factor": 0.01, "total_iters": max_iter},
        "step": {"step_size": max(1, max_iter // 3), "gamma": 0.1},
        "cosine": {"T_max": max_iter, "eta_min": 0.0},
        "warm_restarts": {"T_0": max(1, math.ceil(max_iter / 7)), "T_mult": 2},
        "plateau": {"factor": 0.5, "patience": 5, "threshold": 1e-4},
    }[name]


def check_schedule_params(name, params, max_iter=10, lr=1.0):
    """Raise ValueError unless ``params`` suit the scheduler of ``name``.

    Unknown keys are named; then the scheduler is built with the merged
    settings on a dummy optimizer with learning rate ``lr`` and stepped
    through ``max_iter`` epochs (at most 1000), so bad values (a zero
    ``step_size``, a string ``gamma``) fail here, before training, as do
    settings under which the learning rate would turn negative, non-finite
    or grow above ``lr`` (an ``eta_min`` above it). A ``gamma`` must be in
    (0, 1], also where a long ``step_size`` would hide it from the
    simulation. ``"plateau"`` must watch a loss going down: ``mode="min"``.
    """
    if name == "constant":
        if params:
            raise ValueError(
                "lr_schedule_params must be empty with lr_schedule='constant'; "
                f"got {sorted(params)}. Choose a schedule such as 'exponential'."
            )
        return
    accepted = set(inspect.signature(SCHEDULES[name]).parameters) - {
        "optimizer",
        "last_epoch",
        "verbose",
    }
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise ValueError(
            f"lr_schedule_params has keys {unknown} that "
            f"{SCHEDULES[name].__name__} (lr_schedule={name!r}) does not accept; "
            f"accepted keys are {sorted(accepted)}."
        )
    kwargs = {**default_schedule_params(name, max_iter), **params}
    where = f"lr_schedule_params={params!r} for lr_schedule={name!r}"
    gamma = kwargs.get("gamma", 1.0)
    if isinstance(gamma, (int, float)) and not 0 < gamma <= 1:
        raise ValueError(
            f"{where}: gamma={gamma!r} must be in (0, 1], so that the learning "
            "rate decreases and stays positive."
        )
    if kwargs.get("mode", "min") != "min":
        raise ValueError(
            f"{where}: mode must be 'min', because the monitored quantity is a "
            "loss, which should go down."
        )
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    factors = []
    try:
        scheduler = SCHEDULES[name](optimizer, **kwargs)
        for _ in range(min(max(max_iter, 2), 1000)):
            optimizer.step()
            # A plateau scheduler sees a loss that never improves.
            scheduler.step(1.0) if name == "plateau" else scheduler.step()
            factors.append(optimizer.param_groups[0]["lr"] / lr)
    except Exception as exc:
        raise ValueError(
            f"lr_schedule_params={params!r} are not valid for "
            f"{SCHEDULES[name].__name__} (lr_schedule={name!r}): {exc}"
        ) from None
    # The worst epoch: the highest rate, or the first negative or non-finite.
    epoch, factor = max(
        enumerate(factors, start=2),
        key=lambda item: math.inf if not item[1] >= 0 else item[1],
    )
    if not (math.isfinite(factor) and 0 <= factor <= 1 + 1e-12):
        raise ValueError(
            f"{where}: at epoch {epoch} the learning rate would be "
            f"{factor * lr:.4g}, {factor:.4g} x learning_rate_init. A schedule "
            "must keep it between 0 and learning_rate_init (e.g. an eta_min or "
            "min_lr below learning_rate_init)."
        )


class ResumingLRScheduler(LRScheduler):
    """skorch's ``LRScheduler`` that keeps its torch scheduler across calls.

    skorch rebuilds the scheduler at every ``on_train_begin``, that is at every
    ``partial_fit`` call, which restarts cyclic schedules and double-steps
    ``StepLR``. This one rebuilds it only when the optimizer changed (a new
    fit, or a model loaded from a file).
    """

    def on_train_begin(self, net, **kwargs):
        scheduler = getattr(self, "lr_scheduler_", None)
        if scheduler is not None and scheduler.optimizer is net.optimizer_:
            return
        super().on_train_begin(net, **kwargs)


def make_scheduler(name, params, max_iter):
    """Return a skorch ``LRScheduler`` callback, or None for ``"constant"``.

    ``"plateau"`` watches :func:`~skae.callbacks.monitored_loss`: the
    validation loss when there is one, else the training loss.
    """
    if name == "constant":
        return None
    kwargs = {**default_schedule_params(name, max_iter), **(params or {})}
    return ResumingLRScheduler(
        policy=SCHEDULES[name], monitor=monitored_loss, event_name=None, **kwargs
    )


def scale_rates(optimizer, scheduler, factor):
    """Multiply every learning rate of ``optimizer`` and ``scheduler`` by ``factor``.

    After a divergence training goes on with the same optimizer and scheduler
    at a lower rate. The schedules keep their position: the chainable ones
    (exponential, linear, step, cosine) step from the group's current rate,
    the closed-form warm restarts from ``base_lrs``, and both cosine
    schedules' floor ``eta_min`` is scaled too, so the whole curve from here
    on is ``factor`` times the one it replaces.
    """
    for group in optimizer.param_groups:
        group["lr"] *= factor
        if "initial_lr" in group:
            group["initial_lr"] *= factor
    if scheduler is None:
        return
    if hasattr(scheduler, "base_lrs"):
        scheduler.base_lrs = [lr * factor for lr in scheduler.base_lrs]
    if hasattr(scheduler, "eta_min"):
        scheduler.eta_min *= factor
