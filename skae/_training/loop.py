"""The training loop: which weights training keeps, and why it stopped.

:func:`train` runs skorch's ``partial_fit``; the :class:`Keeper` callback
watches every batch and epoch. They alone decide the weights a call ends with:

- the weights training starts from (with ``init="pca"``, PCA's solution) are
  a candidate: an epoch replaces them only if it beats their validation loss
  by :data:`START_MARGIN` (and ``tol``) and is better on the validation rows
  in a one-sided paired t-test (:func:`~skae._training.start.better`);
  without validation rows, only if its error on the training rows is lower;
- with validation rows, the best validation epoch is restored at the end;
- a non-finite loss or gradient drops the epoch and restarts from the weights
  of the lowest training loss, at :data:`RESTART_LR_FACTOR` times the
  learning rate, at most ``max_restarts`` times;
- after a Ctrl-C, or a stop in the middle of an epoch, the best weights so far
  come back.
"""

import copy
import math
from dataclasses import dataclass, field

import torch
from sklearn.exceptions import ConvergenceWarning
from skorch.callbacks import Callback

from .._runtime import interrupt_flag
from ..exceptions import ExplodingGradientWarning, TrainingDivergedError
from . import advice as words
from .schedules import scale_rates
from .start import better, copy_state, row_losses, spaced_rows

#: Relative margin by which a trained epoch's validation loss must beat that of
#: the starting weights: on 12 to 40 validation rows an epoch can look better
#: than PCA and be worse on new data (see the "skae versus PCA" guide).
START_MARGIN = 0.005

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
    """What a training call did: why it stopped, its restarts, its warnings."""

    stop_reason: str = "max_iter"
    n_restarts: int = 0
    #: ``(category, message)`` pairs for the estimator to emit.
    warnings: list = field(default_factory=list)


class Diverged(Exception):
    """The training loss or a gradient norm became non-finite at ``epoch``."""

    def __init__(self, epoch, loss):
        super().__init__(epoch, loss)
        self.epoch, self.loss = epoch, loss


class Keeper(Callback):
    """Watch training: divergence, the best weights so far, when to stop.

    Not skorch's ``EarlyStopping``: its best starts at infinity, so it cannot
    count the starting weights as a candidate. Stops after ``patience`` epochs
    without a fall of ``tol``; an epoch must beat the starting weights by the
    relative ``margin``. :func:`train` calls :meth:`begin` for each call.
    """

    #: Set by :meth:`begin` for a training call.
    interrupt = None

    def __init__(self, patience=10, tol=1e-4, margin=START_MARGIN):
        self.patience = patience
        self.tol = tol
        self.margin = margin

    def begin(self, net, data, *, incremental, interrupt):
        """Set up a training call on ``data``.

        ``incremental`` (``partial_fit``): no validation rows, no stopping, no
        starting candidate. The start is scored when the first epoch begins,
        after every callback's ``on_train_begin``.
        """
        self.holdout = not incremental and net.train_split is not None
        self.stops = not incremental
        self.monitor = "valid_loss" if self.holdout else "train_loss"
        self.interrupt = interrupt
        self.first_ = len(net.history)
        self.stopped_ = False
        self.misses_ = 0
        self.restarts_pending_ = 0
        self.lowest_state_ = copy_state(net.module_)
        self.lowest_loss_, self.lowest_epoch_ = None, self.first_
        self.best_epoch_, self.best_score_, self.best_weights_ = 0, None, None
        self.bar_ = math.inf
        self.start_ = self.judged_rows_ = None
        self.error_, self.kept_start_, self.losses_ = None, False, []
        self.own_call_ = False
        # The rows the start and the trained weights are judged on: those
        # fit_loop validates on (the split is drawn once), or training rows.
        competes = (
            net.criterion_.names == ["reconstruction"]
            and net.module_.corruption is None
        )
        if self.holdout:
            self.judged_rows_ = net.get_split_datasets(data)[1]
        elif self.stops:
            self.judged_rows_ = spaced_rows(data)
        self.start_pending_ = self.stops and competes

    def _score_start(self, net):
        state, losses = copy_state(net.module_), row_losses(net, self.judged_rows_)
        score = float(losses.mean())
        if self.holdout:
            self.best_score_, self.best_epoch_ = score, self.first_
            self.best_weights_ = state
            self.bar_ = score * (1.0 - self.margin) - self.tol
        self.start_ = (state, score, losses)

    def end(self):
        """Release what the call held: the rows and the starting weights."""
        self.judged_rows_ = self.start_ = self.interrupt = None

    def on_train_begin(self, net, X=None, **kwargs):
        if self.interrupt is None:  # a call not run by train: net_ used directly
            self.begin(net, X, incremental=True, interrupt={"sigint": False})
            self.own_call_ = True

    def __getstate__(self):
        # Copies of weights and rows are the call's, not the model's.
        transient = ("lowest_state_", "best_weights_", "start_", "judged_rows_")
        return {k: None if k in transient else v for k, v in vars(self).items()}

    def on_epoch_begin(self, net, **kwargs):
        if self.stopped_:
            # Decided at the last epoch's end; stopping here lets skorch's
            # PrintLog (always the last callback) print that epoch first.
            del net.history[-1]
            raise KeyboardInterrupt
        if self.start_pending_:
            self._score_start(net)
            self.start_pending_ = False
        if self.restarts_pending_:
            net.history.record("restart", self.restarts_pending_)
            self.restarts_pending_ = 0

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        if not training:
            return
        # Read back what skorch recorded: no second device synchronization.
        value = net.history[-1]["batches"][-1]["train_loss"]
        if not math.isfinite(value):
            raise Diverged(net.history[-1]["epoch"], value)
        if self.lowest_loss_ is None:  # the starting weights' score
            self.lowest_loss_ = value

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        train_loss = row.get("train_loss", math.nan)
        norms = row.get("grad_norms", {}).values()
        if not (math.isfinite(train_loss) and all(map(math.isfinite, norms))):
            # A finite loss with infinite gradients is a blow-up in progress.
            raise Diverged(row["epoch"], train_loss)
        if train_loss <= self.lowest_loss_:
            self.lowest_state_ = copy_state(net.module_)
            self.lowest_loss_, self.lowest_epoch_ = train_loss, row["epoch"]
        if not self.stops:
            return
        score = row[self.monitor]
        if score < self.bar_:
            self.misses_, self.bar_ = 0, score - self.tol
            self.best_epoch_, self.best_score_ = row["epoch"], score
            if self.holdout:
                self.best_weights_ = copy_state(net.module_)
        else:
            self.misses_ += 1
            self.stopped_ = self.misses_ >= self.patience

    def restart(self, net, factor):
        """Go on after a divergence from the weights of the lowest training loss.

        The optimizer's state is cleared and every learning rate multiplied by
        ``factor``; optimizer and schedule stay the same objects, so the
        schedule keeps its position. Returns the new rate and the epoch whose
        weights were taken.
        """
        net.module_.load_state_dict(self.lowest_state_)
        net.optimizer_.state.clear()
        scale_rates(net.optimizer_, scheduler(net), factor)
        self.restarts_pending_ += 1
        return net.optimizer_.param_groups[0]["lr"], self.lowest_epoch_

    def on_train_end(self, net, X=None, **kwargs):
        partial = len(net.history) and "train_loss" not in net.history[-1]
        if partial:  # stopped in the middle of an epoch
            del net.history[-1]
        interrupted = self.interrupt["sigint"]
        say = print if net.verbose else (lambda message: None)
        if self.stopped_:
            say(words.stopping(self.monitor, self.tol, self.patience))
        last = net.history[-1, "epoch"] if len(net.history) else 0
        if self.best_weights_ is not None and self.best_epoch_ != last:
            net.module_.load_state_dict(self.best_weights_)
            say(words.restoring(self.best_epoch_))
        if interrupted or partial:
            # Weights of a half-run epoch, or the user asked to stop.
            net.module_.load_state_dict(self.best_weights_ or self.lowest_state_)
        if self.stops and not interrupted:
            self._settle(net, say)
        if self.stops:  # what the convergence warning reads
            start = [] if self.start_ is None else [self.start_[1]]
            rows = net.history[self.first_ :]
            self.losses_ = start + [row[self.monitor] for row in rows]
        if net.parallel is not None:  # every rank the main process's buffers
            with torch.no_grad():
                net.parallel.broadcast_buffers(net.module_)
        if self.own_call_:
            self.end()

    def _settle(self, net, say):
        """Put the starting weights back if training did not beat them."""
        rows = "validation" if self.holdout else "training"
        if self.holdout and self.start_ is not None and self.best_epoch_ == self.first_:
            self.error_, self.kept_start_ = self.start_[1], True
            return
        losses = row_losses(net, self.judged_rows_)
        self.error_ = float(losses.mean())
        if self.start_ is None:
            return
        if self.holdout:
            if better(losses, self.start_[2]):
                self.error_ = self.best_score_
                return
        elif self.error_ <= self.start_[1]:
            return
        state, score, _ = self.start_
        net.module_.load_state_dict(state)
        self.best_epoch_, self.best_score_ = self.first_, score
        if self.holdout:
            self.best_weights_ = state
        say(words.keeping_start(rows))
        self.error_, self.kept_start_ = score, True


def train(net, data, epochs, *, incremental, max_restarts, baseline, advice):
    """Run up to ``epochs`` epochs of the initialized ``net``; return a TrainReport.

    ``incremental`` (``partial_fit``): every row is trained on, no early stop.
    ``baseline`` is the error of predicting every feature's mean (0: constant
    data, nothing to judge); ``advice`` words the warnings. The module is left
    in eval mode; the caller rolls back (:func:`rollback`) on an exception.
    """
    keeper = dict(net.callbacks_)["early_stopping"]
    report, first = TrainReport(), len(net.history)
    target = first + epochs
    split = net.train_split
    if split is not None:
        split.active = not incremental
    try:
        with interrupt_flag() as interrupt:
            keeper.begin(net, data, incremental=incremental, interrupt=interrupt)
            while True:
                try:
                    net.partial_fit(data, epochs=target - len(net.history))
                    break
                except Diverged as signal:
                    while len(net.history) and net.history[-1]["epoch"] >= signal.epoch:
                        del net.history[-1]
                    _restart(net, keeper, signal, report, max_restarts, advice)
    finally:
        keeper.end()
        if split is not None:
            split.forget()
        net.module_.eval()
    if interrupt["sigint"]:
        report.stop_reason = "interrupted"
    elif keeper.stopped_:
        report.stop_reason = "early_stopping" if keeper.holdout else "tol"
    elif len(net.history) < target:
        report.stop_reason = "callback"
    report.warnings = _warnings(net, keeper, report, first, baseline, advice)
    return report


def _restart(net, keeper, signal, report, max_restarts, advice):
    if report.n_restarts >= max_restarts:
        lr = net.optimizer_.param_groups[0]["lr"]
        error = TrainingDivergedError(
            words.diverged(
                signal.loss,
                signal.epoch,
                report.n_restarts,
                max_restarts,
                lr,
                advice.remedies()[ExplodingGradientWarning],
            )
        )
        error.stop_reason = "diverged"
        raise error from None
    lr, best_epoch = keeper.restart(net, RESTART_LR_FACTOR)
    report.n_restarts += 1
    if net.verbose:
        print(
            words.restarting(
                report.n_restarts,
                max_restarts,
                signal.loss,
                signal.epoch,
                best_epoch,
                lr,
            )
        )


def _warnings(net, keeper, report, first, baseline, advice):
    found = []
    if baseline != 0:  # constant data: nothing to learn, no gradient to judge
        monitor = dict(net.callbacks_)["gradient_monitor"]
        found += monitor.diagnose(
            net.history[first:],
            report.n_restarts,
            advice.remedies(),
            # A loss that rose over epochs that were all discarded did the
            # model no harm.
            loss_rise=math.inf if keeper.kept_start_ else None,
        )
    if report.stop_reason == "interrupted":
        found.append((UserWarning, words.interrupted(len(net.history))))
    elif keeper.stops and report.stop_reason != "callback":
        message = advice.convergence(
            stopped_early=report.stop_reason != "max_iter",
            n_iter=len(net.history),
            error=keeper.error_,
            baseline=baseline,
            rows="validation" if keeper.holdout else "training",
            losses=keeper.losses_,
            window=keeper.patience,
        )
        if message is not None:
            found.append((ConvergenceWarning, message))
    return found


def scheduler(net):
    """The net's torch learning-rate scheduler, or None."""
    callback = dict(net.callbacks_).get("lr_scheduler")
    return None if callback is None else callback.lr_scheduler_


def checkpoint(net):
    """What a failed call must put back: weights, optimizer, schedule, RNG."""
    schedule = scheduler(net)
    return (
        copy_state(net.module_),
        copy.deepcopy(net.optimizer_.state_dict()),
        None if schedule is None else copy.deepcopy(schedule.state_dict()),
        {role: state.clone() for role, state in net.get_rng_states().items()},
        len(net.history),
    )


def rollback(net, saved):
    """Put ``net`` back as :func:`checkpoint` found it."""
    module_state, optimizer_state, scheduler_state, rng, n_epochs = saved
    with torch.no_grad():
        net.module_.load_state_dict(module_state)
    net.optimizer_.load_state_dict(optimizer_state)
    if scheduler_state is not None:
        scheduler(net).load_state_dict(scheduler_state)
    net.set_rng_states(rng)
    del net.history[n_epochs:]
