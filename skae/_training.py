"""The training driver: runs the net's epochs, owns restarts and stop reasons.

:func:`train` is the one place that knows why training stopped. It runs
skorch's public training loop (``notify("on_train_begin")``, ``fit_loop``,
``notify("on_train_end")``, the steps of ``NeuralNet.partial_fit``) and sees
every exception that ends it:

- ``fit_loop`` returns: every epoch ran (``"max_iter"``);
- :class:`~skae.callbacks.Stopper` raised ``KeyboardInterrupt``: no
  improvement of ``tol`` for ``n_iter_no_change`` epochs (``"tol"``, or
  ``"early_stopping"`` on the validation loss);
- a SIGINT arrived (a real Ctrl-C, seen by :func:`~skae._runtime.interrupt_flag`):
  ``"interrupted"``;
- any other ``KeyboardInterrupt`` came from a user callback, e.g. skorch's
  ``EarlyStopping`` (``"callback"``);
- the guard signalled a divergence: the epoch is dropped from the history,
  the module rolls back to the weights of the lowest training loss, the
  optimizer's state is cleared and every learning rate (the scheduler's
  included) is multiplied by :data:`RESTART_LR_FACTOR`; the same optimizer
  and scheduler go on at their position. Beyond ``max_restarts`` a
  :class:`~skae.exceptions.TrainingDivergedError` is raised
  (``"diverged"``).

``fit`` never ends with weights worse, by its own measure, than those it
started from (with ``init="pca"``, PCA's solution): see :mod:`skae._start`.
"""

import copy
import math
from dataclasses import dataclass, field

import torch

from ._runtime import interrupt_flag
from ._start import Start
from .callbacks import _Diverged
from .exceptions import ExplodingGradientWarning, TrainingDivergedError

#: Factor applied to the learning rate after a divergence.
RESTART_LR_FACTOR = 0.1

#: Why training stopped, as recorded in ``stop_reason_``.
STOP_REASONS = (
    "max_iter",
    "tol",
    "early_stopping",
    "diverged",
    "callback",
    "interrupted",
)


@dataclass
class TrainReport:
    """What happened during :func:`train`."""

    stop_reason: str = "max_iter"
    restarts: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    #: Reconstruction error of the final weights in scaled units, eval mode:
    #: on the validation rows with a validation split, else on the training
    #: rows; None for ``partial_fit`` and after a Ctrl-C.
    error: float | None = None
    #: Where ``error`` was measured: ``"validation"`` or ``"training"``.
    error_rows: str = "training"
    #: The weights training started from were kept (no epoch beat them).
    kept_start: bool = False
    #: The monitored loss of each epoch, after that of the starting weights
    #: when they compete (:func:`skae._start.competes`; scored as early
    #: stopping or the end-of-fit check scored them): what the convergence
    #: warning reads. Empty for ``partial_fit``.
    losses: list = field(default_factory=list)
    #: Epochs over which the convergence warning measures the recent gain.
    window: int = 1


def train(net, data, epochs, *, incremental, max_restarts, remedies=None):
    """Run up to ``epochs`` epochs of the initialized ``net`` on ``data``.

    ``incremental`` (``partial_fit``): train on every row (no validation
    split), never stop early. With a validation split in ``fit``, the weights
    of the best validation epoch are restored at the end (skorch's
    ``EarlyStopping(load_best=True)``). After a Ctrl-C, or a stop in the
    middle of an epoch (whose partial row is dropped), the best weights so
    far are restored: of the validation loss if there is one, else of the
    training loss. The module is left in eval mode. The caller puts the net
    back (:func:`snapshot`, :func:`restore`) if an exception escapes.

    ``remedies`` (warning class -> suggestions, see
    :func:`skae._advice.remedies_for`) word the warnings and the error.

    Returns
    -------
    TrainReport
        With ``warnings``: the ``(category, message)`` pairs the gradient
        monitor found in this call's epochs, for the caller to emit.
    """
    start = len(net.history)
    net.begin_call(incremental)
    try:
        report = _run(net, data, epochs, incremental, max_restarts, remedies or {})
        report.warnings = net.callback("gradient_monitor").diagnose(
            net.history[start:],
            len(report.restarts),
            remedies,
            # A loss that rose over epochs that were all discarded (the
            # starting weights, e.g. PCA's solution, beat them) did the model
            # no harm.
            loss_rise=math.inf if report.kept_start else None,
        )
    finally:
        net.end_call()
        net.module_.eval()
    return report


def _run(net, data, epochs, incremental, max_restarts, remedies):
    report = TrainReport()
    target = len(net.history) + epochs
    net.notify("on_train_begin", X=data, y=None)
    partial, start = False, None
    stopper = net.callback("early_stopping")
    if not incremental:
        # The weights training starts from are a candidate too: fit keeps
        # them unless training beats them (see skae._start).
        start = Start(net, data, net.validates)
        if start.competes:
            # Scored like the epochs: the convergence warning reads the gain
            # since the start.
            report.losses = [start.score]
            if net.validates:
                stopper.start_from(net, start.score, start.state)
    with interrupt_flag() as interrupt:
        while len(net.history) < target:
            try:
                net.fit_loop(data, epochs=target - len(net.history))
            except _Diverged as signal:
                _drop_epoch(net, signal.epoch)
                if len(report.restarts) >= max_restarts:
                    error = _diverged_error(net, signal, report, max_restarts, remedies)
                    raise error from None
                _restart(net, signal, report, max_restarts)
                continue
            except KeyboardInterrupt:
                partial = _drop_partial_epoch(net)
                if interrupt["sigint"]:
                    report.stop_reason = "interrupted"
                elif stopper.stopped_:
                    report.stop_reason = "early_stopping" if net.validates else "tol"
                else:
                    report.stop_reason = "callback"
            break
    net.notify("on_train_end", X=data, y=None)
    if start is not None:
        first = target - epochs
        report.losses += [row[stopper.monitor] for row in net.history[first:]]
        report.window = stopper.patience
    if report.stop_reason == "interrupted" or partial:
        # The weights are those of a half-run epoch no row describes, or
        # the user asked to stop: the best so far are the ones to keep.
        net.restore_best()
    if report.stop_reason != "interrupted" and start is not None:
        report.error, report.kept_start = start.settle(net, data, stopper)
        report.error_rows = "validation" if net.validates else "training"
    return report


def _restart(net, signal, report, max_restarts):
    lr, best_epoch = net.restart(RESTART_LR_FACTOR)
    report.restarts.append((signal.epoch, signal.loss, lr))
    if net.verbose:
        print(
            f"Restart {len(report.restarts)}/{max_restarts}: the training loss was "
            f"{signal.loss:.4g} at epoch {signal.epoch}; going on from the weights "
            f"of epoch {best_epoch} with learning rate {lr:.3g}."
        )


def _diverged_error(net, signal, report, max_restarts, remedies):
    advice = remedies.get(ExplodingGradientWarning) or ["a lower learning_rate_init"]
    error = TrainingDivergedError(
        f"Training diverged: the training loss was {signal.loss} at "
        f"epoch {signal.epoch} after {len(report.restarts)} restart(s) "
        f"(max_restarts={max_restarts}), the last with learning rate "
        f"{net.optimizer_.param_groups[0]['lr']:.3g}. Try "
        f"{', '.join(advice[:-1]) + ' or ' if len(advice) > 1 else ''}{advice[-1]}."
    )
    error.stop_reason = "diverged"
    return error


def _drop_epoch(net, epoch):
    """Drop the history rows from ``epoch`` on: it diverged."""
    while len(net.history) and net.history[-1]["epoch"] >= epoch:
        del net.history[-1]


def _drop_partial_epoch(net):
    """Drop the last history row if its epoch did not finish; say if it did."""
    if len(net.history) and "train_loss" not in net.history[-1]:
        del net.history[-1]
        return True
    return False


def snapshot(net):
    """What a failed call must put back: weights, optimizer, schedule, RNG."""
    scheduler = net.lr_scheduler()
    return (
        copy.deepcopy(net.module_.state_dict()),
        copy.deepcopy(net.optimizer_.state_dict()),
        None if scheduler is None else copy.deepcopy(scheduler.state_dict()),
        {role: state.clone() for role, state in net.get_rng_states().items()},
        len(net.history),
    )


def restore(net, snapshot):
    """Put ``net`` back as :func:`snapshot` found it."""
    module_state, optimizer_state, scheduler_state, rng, n_epochs = snapshot
    with torch.no_grad():
        net.module_.load_state_dict(module_state)
    net.optimizer_.load_state_dict(optimizer_state)
    if scheduler_state is not None:
        net.lr_scheduler().load_state_dict(scheduler_state)
    net.set_rng_states(rng)
    del net.history[n_epochs:]
