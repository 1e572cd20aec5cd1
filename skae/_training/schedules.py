"""Map ``lr_schedule`` names to torch schedulers run by skorch's ``LRScheduler``."""

import inspect
import math

from skorch.callbacks import LRScheduler
from torch.optim import lr_scheduler

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

    ``"warm_restarts"`` restarts at about 1/7 and 3/7 of ``max_iter`` and so
    ends at a cycle's end.
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

    Checks the keys, ``gamma`` in (0, 1] (a long ``step_size`` could hide it)
    and ``mode="min"``, then simulates up to 1000 epochs: the rate must stay
    finite and within ``[0, lr]``.
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
    steps = min(max(max_iter, 2), 1000)
    try:
        # A plateau scheduler sees a loss that never improves.
        rates = make_scheduler(name, params, max_iter).simulate(
            steps + 1, lr, step_args=1.0 if name == "plateau" else None
        )
    except Exception as exc:
        raise ValueError(
            f"lr_schedule_params={params!r} are not valid for "
            f"{SCHEDULES[name].__name__} (lr_schedule={name!r}): {exc}"
        ) from None
    factors = [float(rate) / lr for rate in rates[1:]]
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


def monitored_loss(net):
    """The last epoch's validation loss if it has one, else its training loss."""
    row = net.history[-1]
    return row["valid_loss"] if "valid_loss" in row else row["train_loss"]


class ResumingLRScheduler(LRScheduler):
    """skorch's ``LRScheduler``, not restarted by each ``partial_fit`` call."""

    def on_train_begin(self, net, **kwargs):
        scheduler = self.lr_scheduler_
        if scheduler is not None and scheduler.optimizer is net.optimizer_:
            return
        super().on_train_begin(net, **kwargs)


def make_scheduler(name, params, max_iter):
    """Return a skorch ``LRScheduler`` callback, or None for ``"constant"``."""
    if name == "constant":
        return None
    kwargs = {**default_schedule_params(name, max_iter), **(params or {})}
    return ResumingLRScheduler(
        policy=SCHEDULES[name], monitor=monitored_loss, event_name=None, **kwargs
    )


def scale_rates(optimizer, scheduler, factor):
    """Multiply every learning rate of ``optimizer`` and ``scheduler`` by ``factor``."""
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
