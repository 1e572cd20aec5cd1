"""The training loop: stop reasons, restarts, partial_fit, the weights kept."""

import math
import os
import re
import signal
import warnings

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback, EarlyStopping

from skae import AutoencoderTransformer, TrainingDivergedError
from skae._data.rows import load_rows
from skae._data.scaling import Scaling
from skae._training.loop import Diverged, scheduler
from skae._training.schedules import SCHEDULES, default_schedule_params
from skae._training.start import anchor_to_pca, copy_state
from tests.conftest import FAST, PLAIN


class _RaiseAt(Callback):
    """Stop training at the end of epoch ``at``, as a callback or by Ctrl-C."""

    def __init__(self, at=3, sigint=False):
        self.at = at
        self.sigint = sigint

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.at:
            if self.sigint:  # a real SIGINT, delivered to this process
                os.kill(os.getpid(), signal.SIGINT)
            raise KeyboardInterrupt


def _fit(X, **params):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = AutoencoderTransformer(2, **{**FAST, **params}).fit(X)
    return est, [str(w.message) for w in caught]


def test_all_epochs_run_is_max_iter(digits):
    est, _ = _fit(digits)
    assert est.stop_reason_ == "max_iter" and est.n_iter_ == 3


def test_no_improvement_of_tol_is_tol(digits):
    est, _ = _fit(
        digits,
        max_iter=100,
        batch_size=16,
        tol=0.1,
        n_iter_no_change=2,
        early_stopping=False,  # the training loss is then the one watched
    )
    assert est.stop_reason_ == "tol" and est.n_iter_ < 100


def test_validation_patience_is_early_stopping(digits):
    est, _ = _fit(
        digits,
        max_iter=100,
        early_stopping=True,
        learning_rate_init=0.05,
        n_iter_no_change=2,
        tol=0.05,
    )
    assert est.stop_reason_ == "early_stopping" and est.n_iter_ < 100


@pytest.mark.parametrize(
    "callback",
    [
        _RaiseAt(at=2),
        EarlyStopping(monitor="train_loss", patience=1, threshold=10.0),
    ],
    ids=["raises-KeyboardInterrupt", "skorch-EarlyStopping"],
)
def test_a_callback_stop_is_never_an_interruption(digits, callback):
    est, messages = _fit(digits, max_iter=20, callbacks=[("user", callback)])
    assert est.stop_reason_ == "callback"
    assert est.n_iter_ == 2
    assert not [m for m in messages if "interrupted" in m]


def test_a_real_sigint_is_an_interruption_that_keeps_the_best_weights(digits):
    # A rate this high makes later epochs worse than an earlier one, so
    # restoring the best epoch is visible.
    est, messages = _fit(
        digits,
        max_iter=20,
        solver="sgd",
        learning_rate_init=4.0,
        alpha=0.0,
        callbacks=[("user", _RaiseAt(at=3, sigint=True))],
        **PLAIN,  # no validation split: the lowest training loss is kept
    )
    assert est.stop_reason_ == "interrupted" and est.n_iter_ == 3
    assert [m for m in messages if "Training interrupted by user" in m]
    keeper = dict(est.net_.callbacks_)["early_stopping"]
    assert keeper.lowest_epoch_ == int(np.argmin(est.history_[:, "train_loss"])) + 1
    assert keeper.lowest_epoch_ < 3
    for name, tensor in est.net_.module_.state_dict().items():
        assert torch.equal(tensor, keeper.lowest_state_[name]), name
    # The SIGINT handler is the caller's again.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_divergence_beyond_max_restarts_says_diverged(low_rank):
    est = AutoencoderTransformer(
        2, **{**FAST, "solver": "sgd", "learning_rate_init": 1e9, "max_restarts": 1}
    )
    with pytest.raises(TrainingDivergedError) as raised:
        est.fit(low_rank)
    assert raised.value.stop_reason == "diverged"
    assert not hasattr(est, "stop_reason_")


# SGD at rate 10 on the low-rank data diverges in epochs 2 and 3: one of them
# with a finite loss but an infinite gradient norm.
DIVERGING = dict(
    hidden_layer_sizes=(8,),
    solver="sgd",
    learning_rate_init=10.0,
    batch_size=256,
    max_iter=10,
    random_state=0,
    # From random weights on every row (PLAIN, but the schedule varies).
    init="random",
    early_stopping=False,
)


def _schedule_factors(name, epochs):
    """The rate of each epoch divided by the initial rate, as torch steps it."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = SCHEDULES[name](optimizer, **default_schedule_params(name, epochs))
    factors = []
    for _ in range(epochs):
        factors.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return np.array(factors)


@pytest.mark.parametrize(
    "schedule",
    ["constant", "exponential", "linear", "step", "cosine", "warm_restarts", "plateau"],
)
def test_restarts_drop_the_diverged_epoch_and_keep_the_schedule_position(
    low_rank, schedule
):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = AutoencoderTransformer(2, lr_schedule=schedule, **DIVERGING).fit(low_rank)
    assert est.n_restarts_ >= 1
    # Every epoch kept is finite: the diverged ones left no trace.
    assert est.n_iter_ == len(est.history_) == len(est.loss_curve_) == 10
    assert [row["epoch"] for row in est.history_] == list(range(1, 11))
    for row in est.history_:
        assert math.isfinite(row["train_loss"])
        assert all(map(math.isfinite, row["grad_norms"].values()))
    restarted = {
        row["epoch"]: row["restart"] for row in est.history_ if "restart" in row
    }
    assert sum(restarted.values()) == est.n_restarts_
    assert min(restarted) >= 2  # a real divergence after the first epoch
    # Each rate is the schedule's rate at that epoch times 0.1 per restart
    # so far: the schedule kept its position through the restarts.
    lrs = np.array(est.history_[:, "lr"]) / DIVERGING["learning_rate_init"]
    restarts_so_far = np.cumsum([restarted.get(e, 0) for e in range(1, 11)])
    if schedule == "plateau":
        # Its own reductions (x0.5) depend on the losses; restarts are x0.1.
        halvings = np.log(lrs / 0.1**restarts_so_far) / np.log(0.5)
        np.testing.assert_allclose(halvings, np.round(halvings), atol=1e-9)
        assert (np.round(halvings) == 0).all()
    else:
        expected = 0.1**restarts_so_far
        if schedule != "constant":
            expected = expected * _schedule_factors(schedule, 10)
        np.testing.assert_allclose(lrs, expected, rtol=1e-9)


class _Components(Callback):
    """Record the optimizer and scheduler objects each epoch starts with."""

    def on_epoch_begin(self, net, **kwargs):
        self.seen = getattr(self, "seen", []) + [(net.optimizer_, scheduler(net))]


def test_restarts_keep_the_optimizer_and_scheduler(low_rank):
    spy = _Components()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = AutoencoderTransformer(
            2, lr_schedule="cosine", callbacks=[("spy", spy)], **DIVERGING
        ).fit(low_rank)
    assert est.n_restarts_ >= 1
    optimizer, scheduler = spy.seen[0]
    assert all(o is optimizer and s is scheduler for o, s in spy.seen)


def test_partial_fit_never_holds_out_rows(digits):
    est = AutoencoderTransformer(2, **FAST, early_stopping=True).fit(digits)
    assert "valid_loss" in est.history_[-1]
    est.partial_fit(digits)
    row = est.history_[-1]
    assert "valid_loss" not in row
    assert sum(b.get("train_batch_size", 0) for b in row["batches"]) == len(digits)
    assert est.stop_reason_ == "max_iter"


class _RestartWeights(Callback):
    """Record the weights the epoch after a restart starts from."""

    def on_epoch_begin(self, net, **kwargs):
        if net.history[-1].get("restart"):
            self.weights = _state(net.module_)


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_partial_fit_rolls_back_within_its_own_call_only(digits):
    # Two calls on data with a low loss, one on data with a higher loss, then
    # a call that diverges: it rolls back to the weights it began with, not
    # to the earlier calls' lower-loss weights.
    spy = _RestartWeights()
    est = AutoencoderTransformer(
        2,
        **{**FAST, "solver": "sgd", "learning_rate_init": 0.1},
        callbacks=[("spy", spy)],
    )
    for X in (digits / 2, digits / 2, digits):
        est.partial_fit(X)
    assert est.loss_curve_[2] > min(est.loss_curve_[:2])
    began_with = _state(est.net_.module_)
    for group in est.net_.optimizer_.param_groups:
        group["lr"] = 50.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.partial_fit(digits)
    assert est.n_restarts_ >= 1 and est.n_iter_ == 4
    for name, tensor in began_with.items():
        assert torch.equal(spy.weights[name], tensor), name


class _SigintAtBatch(Callback):
    """A real Ctrl-C in the middle of epoch ``epoch``."""

    def __init__(self, epoch=3):
        self.epoch = epoch

    def on_batch_end(self, net, training=False, **kwargs):
        batches = net.history[-1]["batches"]
        if training and len(net.history) == self.epoch and len(batches) == 2:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_a_ctrl_c_mid_epoch_restores_the_best_weights(digits, early_stopping):
    est, _ = _fit(
        digits,
        max_iter=20,
        batch_size=32,
        early_stopping=early_stopping,
        callbacks=[("user", _SigintAtBatch(epoch=3))],
    )
    assert est.stop_reason_ == "interrupted" and est.n_iter_ == 2
    keeper = dict(est.net_.callbacks_)["early_stopping"]
    best = keeper.best_weights_ if early_stopping else keeper.lowest_state_
    for name, tensor in est.net_.module_.state_dict().items():
        assert torch.equal(tensor, best[name]), name


def test_fit_and_partial_fit_with_metadata_routing(digits):
    from sklearn import config_context

    with config_context(enable_metadata_routing=True):
        est = AutoencoderTransformer(2, **FAST, early_stopping=True).fit(digits)
        est.partial_fit(digits)
    assert est.n_iter_ == 4


def test_partial_fit_takes_small_chunks_after_early_stopping(digits):
    est = AutoencoderTransformer(2, **FAST, early_stopping=True).fit(digits)
    est.partial_fit(digits[:2])  # too few to split, and nothing is held out
    assert est.n_iter_ == 4


def test_training_data_is_released_after_fit(digits, monkeypatch):
    import gc
    import weakref

    from skae import _base

    real, refs = _base.load_rows, []

    def load(*args, **kwargs):
        rows = real(*args, **kwargs)
        refs.append(weakref.ref(rows.data))
        return rows

    monkeypatch.setattr(_base, "load_rows", load)
    est = AutoencoderTransformer(2, **FAST, early_stopping=True).fit(digits)
    gc.collect()
    # The fitted model holds no copy of the standardized training rows.
    assert refs and refs[0]() is None
    assert est.n_iter_ == 3


class _InfiniteGradient(Callback):
    """Make one gradient infinite in the last batch of epoch ``epoch``, once.

    The batch's loss, computed before the backward pass, stays finite.
    """

    def __init__(self, epoch=2):
        self.epoch = epoch

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        self.n_train_ = len(dataset_train)

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        done = sum(b.get("train_batch_size", 0) for b in net.history[-1]["batches"])
        last = done + len(batch[0]) == self.n_train_
        if training and last and len(net.history) == self.epoch:
            if not getattr(self, "fired_", False):
                self.fired_ = True
                weight = net.module_.encoder.out.weight
                self.handle_ = weight.register_hook(lambda g: g * float("inf"))

    def on_batch_end(self, net, **kwargs):
        handle = getattr(self, "handle_", None)
        if handle is not None:
            handle.remove()
            self.handle_ = None


def test_finite_loss_with_an_infinite_gradient_restarts(digits):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = AutoencoderTransformer(
            2, **{**FAST, "max_iter": 4}, callbacks=[("inf", _InfiniteGradient())]
        ).fit(digits)
    assert est.n_restarts_ == 1
    assert [row.get("restart") for row in est.history_] == [None, 1, None, None]
    for row in est.history_:
        assert math.isfinite(row["train_loss"])
        assert all(map(math.isfinite, row["grad_norms"].values()))


def test_early_stopping_after_a_restart_restores_the_best_validation_epoch(digits):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = AutoencoderTransformer(
            2,
            **{**FAST, "max_iter": 6},
            early_stopping=True,
            init="random",  # no epoch keeps the starting weights
            n_iter_no_change=50,
            callbacks=[("inf", _InfiniteGradient(epoch=3))],
        ).fit(digits)
    assert est.n_restarts_ == 1 and est.stop_reason_ == "max_iter"
    valid = est.history_[:, "valid_loss"]
    keeper = dict(est.net_.callbacks_)["early_stopping"]
    assert keeper.best_epoch_ == int(np.argmin(valid)) + 1
    for name, tensor in est.net_.module_.state_dict().items():
        assert torch.equal(tensor, keeper.best_weights_[name]), name


def test_verbose_prints_the_epoch_that_decided_a_stop_before_saying_why(digits, capsys):
    est, _ = _fit(
        digits,
        max_iter=50,
        tol=10.0,
        n_iter_no_change=2,
        early_stopping=False,
        verbose=1,
    )
    assert est.stop_reason_ == "tol" and est.n_iter_ < 50
    lines = capsys.readouterr().out.splitlines()
    epochs = [line.split()[0] for line in lines if line[:7].strip().isdigit()]
    assert epochs == [str(epoch) for epoch in range(1, est.n_iter_ + 1)]
    last = [str(est.n_iter_)]  # the epoch that decided the stop
    deciding = next(i for i, line in enumerate(lines) if line.split()[:1] == last)
    stopping = next(i for i, line in enumerate(lines) if line.startswith("Stopping:"))
    assert deciding < stopping
    assert re.search(r"train_loss\b.*tol=10\b.*\b2 epochs", lines[stopping])


def test_net_forward_and_predict_reconstruct_standardized_rows(digits):
    est, _ = _fit(digits, dropout=0.2)  # eval mode: dropout would change them
    standardized = (digits - est.mean_) / est.scale_
    expected = (est.inverse_transform(est.transform(digits)) - est.mean_) / est.scale_
    forward = est.net_.forward(standardized)
    assert isinstance(forward, torch.Tensor) and forward.shape == digits.shape
    np.testing.assert_allclose(forward.numpy(), expected, rtol=0, atol=1e-6)
    predicted = est.net_.predict(standardized)
    assert isinstance(predicted, np.ndarray) and predicted.shape == digits.shape
    np.testing.assert_allclose(predicted, expected, rtol=0, atol=1e-6)


# ------------------------------------------------------------------ the keeper


@pytest.mark.parametrize("init", ["pca", "random"])
def test_the_first_batch_scores_the_starting_weights_as_a_rollback_candidate(
    low_rank, init
):
    # PCA's solution is the lowest on this data; random weights are not.
    est, _ = _fit(low_rank, init=init)
    keeper = dict(est.net_.callbacks_)["early_stopping"]
    first_batch = est.history_[0, "batches"][0]["train_loss"]
    losses = est.history_[:, "train_loss"]
    assert keeper.lowest_loss_ == min(first_batch, *losses)
    best = 0 if first_batch < min(losses) else int(np.argmin(losses)) + 1
    assert keeper.lowest_epoch_ == best


def _keeper(X, *, early_stopping=True, **params):
    """A new net for ``X`` (``FAST``, PCA layers at zero), its rows and its keeper."""
    est = AutoencoderTransformer(2, **FAST, early_stopping=early_stopping, **params)
    cpu = torch.device("cpu")
    fraction = est.validation_fraction if early_stopping else None
    rows = load_rows(X, Scaling(est.scaling), cpu, validation_fraction=fraction)
    net = est._new_net(X.shape[1], 0, cpu, early_stopping, init="pca").initialize()
    return net, rows, dict(net.callbacks_)["early_stopping"]


def _begin(net, rows, keeper):
    """Begin a call as ``train`` and skorch do; the start is scored when the
    first epoch begins, after every callback's ``on_train_begin``."""
    keeper.begin(net, rows, incremental=False, interrupt={"sigint": False})
    keeper.on_train_begin(net, X=rows)
    assert keeper.start_ is None
    keeper.on_epoch_begin(net)


def _epoch(net, keeper, train_loss, valid_loss=None, batch_loss=None, grad_norm=1.0):
    """Record an epoch of one batch as skorch does, notifying the keeper."""
    net.history.new_epoch()
    net.history.record("epoch", len(net.history))
    keeper.on_epoch_begin(net)
    net.history.new_batch()
    net.history.record_batch(
        "train_loss", train_loss if batch_loss is None else batch_loss
    )
    keeper.on_batch_end(net, training=True)
    net.history.record("train_loss", train_loss)
    if valid_loss is not None:
        net.history.record("valid_loss", valid_loss)
    net.history.record("grad_norms", {"encoder.0": grad_norm, "decoder.output": 1.0})
    keeper.on_epoch_end(net)


def _nudge(module):
    """Move every weight, so that each epoch's weights differ."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.01)


def _assert_same(state, expected):
    assert state.keys() == expected.keys()
    for name, tensor in state.items():
        assert torch.equal(tensor, expected[name]), name


@pytest.mark.parametrize(
    "epoch",
    [
        dict(train_loss=math.nan, batch_loss=math.nan),
        dict(train_loss=0.5, batch_loss=math.inf),
        dict(train_loss=math.inf, batch_loss=0.5),
        dict(train_loss=0.5, grad_norm=math.inf),
        dict(train_loss=0.5, grad_norm=math.nan),
    ],
    ids=["nan-batch", "inf-batch", "inf-epoch", "inf-gradient", "nan-gradient"],
)
def test_keeper_signals_a_non_finite_loss_or_gradient_norm(digits, epoch):
    net, rows, keeper = _keeper(digits, early_stopping=False)
    _begin(net, rows, keeper)
    _epoch(net, keeper, 0.5)
    with pytest.raises(Diverged) as raised:
        _epoch(net, keeper, **epoch)
    assert raised.value.epoch == 2


def test_keeper_restarts_from_the_weights_of_the_lowest_training_loss(digits):
    net, rows, keeper = _keeper(digits, early_stopping=False)
    for p in net.module_.parameters():  # give the optimizer a state to clear
        p.grad = torch.zeros_like(p)
    net.optimizer_.step()
    start = copy_state(net.module_)
    _begin(net, rows, keeper)
    # The first batch's loss (0.4) scores the starting weights: epoch 1 does
    # not beat them ...
    _nudge(net.module_)
    _epoch(net, keeper, 0.9, batch_loss=0.4)
    assert keeper.lowest_epoch_ == 0 and keeper.lowest_loss_ == 0.4
    _assert_same(keeper.lowest_state_, start)
    # ... epoch 2 does, epoch 3 does not.
    _nudge(net.module_)
    _epoch(net, keeper, 0.3)
    second = copy_state(net.module_)
    _nudge(net.module_)
    _epoch(net, keeper, 0.7)
    assert keeper.lowest_epoch_ == 2 and keeper.lowest_loss_ == 0.3
    lr = net.optimizer_.param_groups[0]["lr"]
    assert keeper.restart(net, 0.1) == (pytest.approx(0.1 * lr, rel=1e-12), 2)
    _assert_same(net.module_.state_dict(), second)
    assert not net.optimizer_.state
    assert [g["lr"] for g in net.optimizer_.param_groups] == pytest.approx(
        [0.1 * lr] * len(net.optimizer_.param_groups), rel=1e-12
    )
    _epoch(net, keeper, 0.35)  # the next epoch records the restart
    assert net.history[-1, "restart"] == 1 and "restart" not in net.history[-2]


def test_keeper_counts_the_starting_weights_with_a_margin_then_stops(digits):
    net, rows, keeper = _keeper(digits)
    keeper.margin, keeper.tol, keeper.patience = 0.1, 0.01, 3
    _begin(net, rows, keeper)
    # The starting weights are epoch 0, scored by their validation loss.
    _, valid = net.get_split_datasets(rows)
    x = torch.cat([X for X, _ in net.get_iterator(valid)])
    with torch.no_grad():
        own = (net.module_(x) - x).double().square().mean().item()
    start = keeper.best_score_
    assert keeper.best_epoch_ == 0 and start == pytest.approx(own, rel=1e-5)
    # A trained epoch must go below start * (1 - margin) - tol ...
    bar = start * 0.9 - 0.01
    for loss, best in [(0.95 * start, 0), (bar + 1e-3, 0), (bar - 1e-3, 3)]:
        _epoch(net, keeper, 1.0, valid_loss=loss)
        assert keeper.best_epoch_ == best
    assert keeper.misses_ == 0 and keeper.best_score_ == bar - 1e-3
    # ... and later ones below the best minus tol: after ``patience`` epochs
    # short of that by a hair, the keeper decides to stop.
    for _ in range(3):
        assert not keeper.stopped_
        _epoch(net, keeper, 1.0, valid_loss=bar - 1e-3 - 0.009)
    assert keeper.stopped_ and keeper.misses_ == 3 and keeper.best_epoch_ == 3
    # The epoch after the deciding one stops before it runs.
    with pytest.raises(KeyboardInterrupt):
        _epoch(net, keeper, 1.0, valid_loss=0.0)
    assert len(net.history) == 6


def test_keeper_restores_the_best_validation_epoch_and_says_so(digits, capsys):
    net, rows, keeper = _keeper(digits)
    net.verbose = 1
    keeper.patience = 2
    _begin(net, rows, keeper)
    start = keeper.best_score_
    # Epoch 2 holds PCA's solution, which beats the random starting weights
    # on the validation rows too (the keeper checks that when training ends).
    _nudge(net.module_)
    _epoch(net, keeper, 1.0, valid_loss=0.9 * start)
    anchor_to_pca(net.module_, rows)
    _epoch(net, keeper, 1.0, valid_loss=0.5 * start)
    best = copy_state(net.module_)
    for _ in range(2):
        _nudge(net.module_)
        _epoch(net, keeper, 1.0, valid_loss=0.6 * start)
    assert keeper.stopped_
    keeper.on_train_end(net, X=rows)
    _assert_same(net.module_.state_dict(), best)
    assert keeper.best_epoch_ == 2 and not keeper.kept_start_
    out = capsys.readouterr().out
    assert re.search(r"Stopping: valid_loss\b.*\b2 epochs", out)
    assert re.search(r"Restoring the weights of epoch 2\b", out)


def test_the_start_is_judged_after_every_callbacks_on_train_begin(digits):
    # A callback may load weights when training begins (skorch's
    # LoadInitState does): the start the keeper judges are those weights.
    net, rows, keeper = _keeper(digits)
    keeper.begin(net, rows, incremental=False, interrupt={"sigint": False})
    keeper.on_train_begin(net, X=rows)
    _nudge(net.module_)  # another callback's on_train_begin
    loaded = copy_state(net.module_)
    keeper.on_epoch_begin(net)
    state, score, _ = keeper.start_
    _assert_same(state, loaded)
    _, valid = net.get_split_datasets(rows)
    x = torch.cat([X for X, _ in net.get_iterator(valid)])
    with torch.no_grad():
        own = (net.module_(x) - x).double().square().mean().item()
    assert score == pytest.approx(own, rel=1e-5)


def test_net_trained_directly_starts_each_call_afresh(digits):
    # net_ is a usable skorch net: each direct call is a call of its own.
    ae = AutoencoderTransformer(2, **FAST).fit(digits)
    rows = ((digits - ae.mean_) / ae.scale_).astype(np.float32)
    keeper = dict(ae.net_.callbacks_)["early_stopping"]
    for _ in range(2):
        n = len(ae.net_.history)
        ae.net_.partial_fit(rows)
        assert keeper.first_ == n and len(ae.net_.history) > n
        assert keeper.interrupt is None  # the call's rows and weights released
