"""Callbacks: gradient monitor, learning-rate record, clipping, penalties, restarts."""

import math
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from skae import (
    AutoencoderTransformer,
    ExplodingGradientWarning,
    TrainingDivergedError,
    VanishingGradientWarning,
)
from skae.callbacks import GradientMonitor
from tests.conftest import FAST, PLAIN


class _Spy(Callback):
    """Records the initial weights and each step's gradients (after clipping)."""

    def on_train_begin(self, net, **kwargs):
        self.initial = [p.detach().clone() for p in net.module_.parameters()]
        self.grads = []

    def on_grad_computed(self, net, named_parameters, training=False, **kwargs):
        if training:
            self.grads.append([p.grad.detach().clone() for _, p in named_parameters])


def _single_step(X, **params):
    """Fit one epoch of one batch with plain SGD; return (estimator, spy)."""
    spy = _Spy()
    est = AutoencoderTransformer(
        2,
        hidden_layer_sizes=(8,),
        solver="sgd",
        momentum=0.0,
        batch_size=len(X),
        max_iter=1,
        random_state=0,
        callbacks=[("spy", spy)],
        **{"alpha": 0.0, **PLAIN, **params},
    ).fit(X)
    return est, spy


def test_grad_norms_recorded_per_layer_per_epoch(digits):
    est = AutoencoderTransformer(
        3, hidden_layer_sizes=(8, 4), max_iter=2, random_state=0
    )
    est.fit(digits)
    norms = est.history_[:, "grad_norms"]
    assert len(norms) == 2
    # Input to output; the PCA layers of init="pca" (the default) between
    # the encoder's and the decoder's stacks.
    assert list(norms[0]) == [
        "encoder.0",
        "encoder.1",
        "encoder.code",
        "encoder.pca",
        "decoder.pca",
        "decoder.0",
        "decoder.1",
        "decoder.output",
    ]
    assert all(v > 0 and math.isfinite(v) for row in norms for v in row.values())


def _first_layer_norm(grads, weight=None, alpha=0.0, l1=0.0, n=300):
    """Norm of encoder.0's gradient (weight, bias) minus the penalties' part."""
    g_weight, g_bias = grads[0], grads[1]
    if weight is not None:
        g_weight = g_weight - alpha / n * weight - l1 / n * torch.sign(weight)
    return torch.sqrt(g_weight.square().sum() + g_bias.square().sum()).item()


def test_grad_norm_is_the_mean_over_batches_of_the_layer_norm(digits):
    spy = _Spy()
    est = AutoencoderTransformer(
        2,
        hidden_layer_sizes=(8,),
        batch_size=100,
        max_iter=1,
        alpha=0.0,
        random_state=0,
        callbacks=[("spy", spy)],
    ).fit(digits)
    assert len(spy.grads) == 3
    expected = np.mean([_first_layer_norm(g) for g in spy.grads])
    assert est.history_[0, "grad_norms"]["encoder.0"] == pytest.approx(
        expected, rel=1e-5
    )


@pytest.mark.parametrize("fold_every", [1, 2])
def test_grad_norms_are_folded_while_the_epoch_runs(digits, monkeypatch, fold_every):
    # Large data sets: a bounded number of per-batch norms is kept.
    kept = []

    class Watch(Callback):
        def on_batch_end(self, net, **kwargs):
            kept.append(len(dict(net.callbacks_)["gradient_monitor"]._batches))

    params = dict(hidden_layer_sizes=(8,), batch_size=30, max_iter=2, random_state=0)
    whole = AutoencoderTransformer(2, **params).fit(digits)
    monkeypatch.setattr(GradientMonitor, "_FOLD_EVERY", fold_every)
    folded = AutoencoderTransformer(2, **params, callbacks=[("watch", Watch())])
    folded.fit(digits)
    assert len(kept) == 20 and max(kept) < fold_every
    for epoch in range(2):
        got, expected = (
            folded.history_[epoch, "grad_norms"],
            whole.history_[epoch, "grad_norms"],
        )
        assert got.keys() == expected.keys()
        np.testing.assert_allclose(
            list(got.values()), list(expected.values()), rtol=1e-5
        )


def test_grad_norm_leaves_out_alpha(digits):
    # alpha is weight decay inside the optimizer's step: the gradient of the
    # first (only) batch is the data's whatever alpha is. (From random
    # weights: from init="pca" the first layer's first gradient is zero.)
    def first_norm(alpha):
        est = AutoencoderTransformer(
            2,
            hidden_layer_sizes=(8,),
            batch_size=300,
            max_iter=1,
            alpha=alpha,
            random_state=0,
            **PLAIN,
        ).fit(digits)
        return est.history_[0, "grad_norms"]["encoder.0"]

    assert first_norm(1e4) == first_norm(0.0)


def test_max_grad_norm_bounds_the_update_and_norms_are_measured_before(digits):
    lr, max_norm = 0.5, 1e-3
    est, spy = _single_step(digits, learning_rate_init=lr, max_grad_norm=max_norm)
    clipped = torch.sqrt(sum(g.square().sum() for g in spy.grads[0]))
    assert clipped.item() == pytest.approx(max_norm, rel=1e-4)
    after = list(est.net_.module_.parameters())
    step = torch.sqrt(sum((a - b).square().sum() for a, b in zip(after, spy.initial)))
    assert step.item() <= lr * max_norm * (1 + 1e-4)
    # The recorded norms are the raw ones, far above the clipping threshold.
    assert max(est.history_[0, "grad_norms"].values()) > 100 * max_norm


def test_clip_value_bounds_every_gradient_element(digits):
    _, spy = _single_step(digits, learning_rate_init=0.01, clip_value=1e-4)
    largest = max(g.abs().max().item() for g in spy.grads[0])
    assert largest == pytest.approx(1e-4)


def test_l1_shrinks_weights_towards_zero(digits):
    def weights(**params):
        est = AutoencoderTransformer(
            2,
            hidden_layer_sizes=(16,),
            max_iter=30,
            learning_rate_init=1e-2,
            random_state=0,
            **params,
        ).fit(digits)
        return torch.cat(
            [w.detach().abs().flatten() for w in est.net_.module_.weights()]
        )

    plain, sparse = weights(alpha=0.0), weights(alpha=0.0, l1=3.0)
    assert sparse.sum() < 0.5 * plain.sum()
    assert (sparse < 1e-3).float().mean() > (plain < 1e-3).float().mean()


@pytest.mark.parametrize("solver", ["adam", "adamw"])
def test_alpha_shrinks_weight_norm(digits, solver):
    def norm(alpha):
        est = AutoencoderTransformer(
            2,
            hidden_layer_sizes=(16,),
            max_iter=30,
            learning_rate_init=1e-2,
            random_state=0,
            solver=solver,
            alpha=alpha,
            **PLAIN,
        ).fit(digits)
        return sum(w.detach().square().sum().item() for w in est.net_.module_.weights())

    assert norm(300.0) < 0.7 * norm(0.0)


@pytest.mark.parametrize(
    "layout",
    [{}, {"normalization": "batch"}, {"normalization": "layer", "residual": True}],
)
def test_alpha_decays_the_weight_matrices_and_nothing_else(digits, layout):
    # One plain SGD step from the same start, with and without alpha: the
    # weight matrices differ by lr * alpha / n_train * W, every other
    # parameter (biases, normalization) not at all.
    lr, alpha = 0.1, 30.0
    with_decay, spy = _single_step(digits, learning_rate_init=lr, alpha=alpha, **layout)
    without, _ = _single_step(digits, learning_rate_init=lr, **layout)
    start = dict(zip(dict(with_decay.net_.module_.named_parameters()), spy.initial))
    weights = {id(w) for w in with_decay.net_.module_.weights()}
    a = dict(with_decay.net_.module_.named_parameters())
    b = dict(without.net_.module_.named_parameters())
    assert a.keys() == b.keys()
    for name, p in a.items():
        if id(p) in weights:
            expected = b[name] - lr * alpha / len(digits) * start[name]
            torch.testing.assert_close(p, expected, rtol=1e-5, atol=1e-7)
        else:
            assert torch.equal(p, b[name]), name
    # It is not a term of the loss.
    rows = with_decay.history_
    assert rows[:, "train_loss"] == rows[:, "train_reconstruction"]


@pytest.mark.parametrize("solver", ["adam", "adamw", "sgd", "rmsprop"])
def test_alpha_has_one_coefficient_for_every_solver(digits, solver):
    est = AutoencoderTransformer(2, solver=solver, alpha=0.5, **FAST, **PLAIN).fit(
        digits
    )
    decays = {
        id(p): group["weight_decay"]
        for group in est.net_.optimizer_.param_groups
        for p in group["params"]
    }
    for w in est.net_.module_.weights():
        assert decays[id(w)] == 0.5 / len(digits)


def test_diverging_run_restarts_lowers_lr_and_ends_finite(low_rank):
    with pytest.warns(ExplodingGradientWarning, match="restarted"):
        est = AutoencoderTransformer(
            2,
            hidden_layer_sizes=(8,),
            solver="sgd",
            learning_rate_init=10.0,
            max_iter=10,
            batch_size=256,  # the first epoch stays finite
            random_state=0,
            **PLAIN,
        ).fit(low_rank)
    assert est.n_restarts_ >= 1
    lrs = est.history_[:, "lr"]
    assert lrs[0] == 10.0 and lrs[-1] == pytest.approx(10.0 * 0.1**est.n_restarts_)
    assert len(est.history_) == 10 and np.isfinite(est.loss_curve_[-1])
    assert np.isfinite(est.transform(low_rank)).all()


def test_divergence_error_after_max_restarts_keeps_previous_fit(low_rank):
    est = AutoencoderTransformer(2, **FAST).fit(low_rank)
    before = est.transform(low_rank)
    est.set_params(solver="sgd", learning_rate_init=1e9, max_restarts=1)
    with pytest.raises(TrainingDivergedError, match=r"epoch \d+ after 1 restart"):
        est.fit(low_rank)
    assert est.n_iter_ == 3
    assert np.array_equal(est.transform(low_rank), before)


def test_vanishing_gradient_warning_on_deep_sigmoid_net(digits):
    X = (digits - digits.mean(0)) / (digits.std(0) + 1e-9)
    with pytest.warns(VanishingGradientWarning, match="residual=True"):
        AutoencoderTransformer(
            4,
            hidden_layer_sizes=(16,) * 12,
            activation="sigmoid",
            max_iter=20,
            random_state=0,
        ).fit(X)
    # The L2 penalty's gradient does not hide the vanishing data gradient.
    with pytest.warns(VanishingGradientWarning):
        AutoencoderTransformer(
            4,
            hidden_layer_sizes=(16,) * 12,
            activation="sigmoid",
            alpha=10.0,
            max_iter=20,
            random_state=0,
        ).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", VanishingGradientWarning)
        AutoencoderTransformer(
            4,
            hidden_layer_sizes=(16,) * 12,
            activation="sigmoid",
            residual=True,
            max_iter=20,
            random_state=0,
        ).fit(X)


class _Layers(torch.nn.Module):
    """A module with the named layers a GradientMonitor reads, not skae's.

    ``span`` and ``grace``, when given, are its ``depth_span()`` and
    ``vanishing_grace``, as skae's modules have.
    """

    def __init__(self, names, span=None, grace=None):
        super().__init__()
        self.names = names
        self.layers = torch.nn.ModuleList(torch.nn.Linear(2, 2) for _ in names)
        if span is not None:
            self.depth_span = lambda: span
        if grace is not None:
            self.vanishing_grace = grace

    def named_layers(self):
        return list(zip(self.names, self.layers, strict=True))


def _monitor(names=("encoder.0", "decoder.output"), span=None, grace=None, **params):
    """A GradientMonitor whose training began on a module of layers ``names``."""
    monitor = GradientMonitor(**params)
    monitor.on_train_begin(SimpleNamespace(module_=_Layers(list(names), span, grace)))
    return monitor


def test_diagnose_reads_thresholds_from_history():
    monitor = _monitor(vanishing_ratio=1e-3, exploding_norm=10.0)
    flat = [
        {"train_loss": 1.0, "grad_norms": {"encoder.0": 1e-6, "decoder.output": 1.0}}
    ] * 6
    assert [w for w, _ in monitor.diagnose(flat)] == [VanishingGradientWarning]
    healthy = [
        {
            "train_loss": 1.0 / (i + 1),
            "grad_norms": {"encoder.0": 0.5, "decoder.output": 1.0},
        }
        for i in range(6)
    ]
    assert monitor.diagnose(healthy) == []
    large = [
        {"train_loss": 1.0, "grad_norms": {"encoder.0": 50.0, "decoder.output": 1.0}}
    ]
    assert [w for w, _ in monitor.diagnose(large)] == [ExplodingGradientWarning]
    assert [w for w, _ in monitor.diagnose(healthy, n_restarts=1)] == [
        ExplodingGradientWarning
    ]
    # A loss that ends above where it started is reported as exploding, and
    # the vanishing ratio is not reported on top of it.
    worse = [
        {
            "train_loss": 1.0 + i,
            "grad_norms": {"encoder.0": 1e-6, "decoder.output": 1.0},
        }
        for i in range(6)
    ]
    ((category, message),) = monitor.diagnose(worse)
    assert category is ExplodingGradientWarning
    assert "rose from 1 (epoch 1) to 6" in message
    # A rise within ``loss_rise`` is noise around a plateau, not divergence.
    plateau = [
        {
            "train_loss": 1.0 + 0.01 * i,
            "grad_norms": {"encoder.0": 1.0, "decoder.output": 1.0},
        }
        for i in range(6)
    ]
    assert monitor.diagnose(plateau) == []
    strict = _monitor(loss_rise=0.0)
    assert [w for w, _ in strict.diagnose(plateau)] == [ExplodingGradientWarning]


def test_vanishing_gradient_warning_fires_once_per_fit(digits):
    X = (digits - digits.mean(0)) / (digits.std(0) + 1e-9)
    est = AutoencoderTransformer(
        4,
        hidden_layer_sizes=(16,) * 12,
        activation="sigmoid",
        max_iter=20,
        random_state=0,
    )
    for _ in range(2):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est.fit(X)
        vanishing = [w for w in caught if w.category is VanishingGradientWarning]
        assert len(vanishing) == 1


def test_diagnose_words_the_remedies_it_is_given():
    monitor = _monitor()
    flat = [
        {"train_loss": 1.0, "grad_norms": {"encoder.0": 1e-6, "decoder.output": 1.0}}
    ] * 3
    ((_, message),) = monitor.diagnose(flat)
    assert message.endswith(
        "Try residual=True, normalization='batch', a non-saturating activation "
        "such as 'relu' or 'gelu', or fewer layers."
    )
    ((_, message),) = monitor.diagnose(flat, remedies={VanishingGradientWarning: []})
    assert message.endswith("The usual remedies are already in use.")
    one = {VanishingGradientWarning: ["fewer layers"]}
    assert monitor.diagnose(flat, remedies=one)[0][1].endswith("Try fewer layers.")
    two = {VanishingGradientWarning: ["residual=True", "fewer layers"]}
    assert monitor.diagnose(flat, remedies=two)[0][1].endswith(
        "Try residual=True or fewer layers."
    )


def test_diagnose_can_leave_out_the_loss_rise():
    # skae does so when every trained epoch was discarded: the weights it
    # started from (PCA's solution) were kept.
    monitor = _monitor()
    worse = [
        {"train_loss": 1.0 + i, "grad_norms": {"encoder.0": 1.0, "decoder.output": 1.0}}
        for i in range(3)
    ]
    assert [w for w, _ in monitor.diagnose(worse)] == [ExplodingGradientWarning]
    assert monitor.diagnose(worse, loss_rise=math.inf) == []
    assert monitor.diagnose(worse, n_restarts=1, loss_rise=math.inf)  # not this


def test_vanishing_check_reads_the_modules_span_and_grace():
    names = ["encoder.0", "encoder.1", "encoder.code", "decoder.output"]
    history = [
        {
            "epoch": epoch,
            "train_loss": 1.0,
            "grad_norms": dict(zip(names, [first, 1.0, 1.0, 100.0], strict=True)),
        }
        for epoch, first in [(1, 1e-9), (2, 0.05), (3, 0.05)]
    ]
    # Without a span, first against last layer: 0.05 / 100 vanishes.
    monitor = _monitor(names)
    assert [w for w, _ in monitor.diagnose(history)] == [VanishingGradientWarning]
    # Within the encoder's hidden layers, past the first epoch: healthy.
    monitor = _monitor(names, span=("encoder.0", "encoder.1"), grace=1)
    assert monitor.diagnose(history) == []
    # The first epoch alone: its ratio vanishes unless the grace skips it.
    assert monitor.diagnose(history[:1]) == []
    monitor = _monitor(names, span=("encoder.0", "encoder.1"), grace=0)
    assert [w for w, _ in monitor.diagnose(history[:1])] == [VanishingGradientWarning]
    # A span of one layer (a PCA start with one hidden layer) has no depth:
    # a layer is not compared with itself, even with no gradient at all.
    still = [{**row, "grad_norms": dict.fromkeys(names, 0.0)} for row in history]
    monitor = _monitor(names, span=("encoder.0", "encoder.0"), grace=0)
    assert monitor.diagnose(still) == []


def test_anchored_model_spans_its_encoders_hidden_layers():
    from skae._nn.modules import Autoencoder

    assert Autoencoder(6, 2, (8, 4, 4), init="pca").depth_span() == (
        "encoder.0",
        "encoder.2",
    )
    assert Autoencoder(6, 2, (8, 4, 4)).depth_span() == ("encoder.0", "decoder.output")
    assert Autoencoder(6, 2, (8,), init="pca").vanishing_grace == 1
    assert Autoencoder(6, 2, (8,)).vanishing_grace == 0
