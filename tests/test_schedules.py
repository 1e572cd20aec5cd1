"""Learning-rate schedules: names -> torch schedulers, recorded per epoch."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from skae import AutoencoderTransformer
from skae._training.schedules import (
    SCHEDULES,
    check_schedule_params,
    default_schedule_params,
    make_scheduler,
)
from tests.conftest import FAST


def _torch_lrs(name, params, lr0, epochs):
    """The learning rates torch's scheduler gives each epoch (non-plateau)."""
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=lr0)
    scheduler = SCHEDULES[name](opt, **params)
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return lrs


def test_exponential_lr_follows_lr0_times_gamma_power_epoch(digits):
    est = AutoencoderTransformer(
        2,
        hidden_layer_sizes=(4,),
        max_iter=6,
        learning_rate_init=0.01,
        lr_schedule="exponential",
        lr_schedule_params={"gamma": 0.5},
        random_state=0,
    ).fit(digits)
    assert_allclose(est.history_[:, "lr"], [0.01 * 0.5**k for k in range(6)])


@pytest.mark.parametrize("name", ["linear", "step", "cosine", "warm_restarts"])
def test_schedule_matches_torch_with_documented_defaults(digits, name):
    epochs = 14
    est = AutoencoderTransformer(
        2,
        hidden_layer_sizes=(4,),
        max_iter=epochs,
        tol=0.0,
        n_iter_no_change=epochs,
        learning_rate_init=0.01,
        lr_schedule=name,
        random_state=0,
    ).fit(digits)
    expected = _torch_lrs(name, default_schedule_params(name, epochs), 0.01, epochs)
    assert_allclose(est.history_[:, "lr"], expected, rtol=1e-12)
    assert len(set(est.history_[:, "lr"])) > 1


def test_constant_schedule_keeps_the_rate(digits):
    est = AutoencoderTransformer(
        2, hidden_layer_sizes=(4,), max_iter=4, lr_schedule="constant", random_state=0
    )
    est.fit(digits)
    assert est.history_[:, "lr"] == [3e-3] * 4
    assert "lr_scheduler" not in dict(est.net_.callbacks_)


def test_plateau_lowers_the_rate_when_the_loss_stalls(digits):
    est = AutoencoderTransformer(
        2,
        hidden_layer_sizes=(4,),
        max_iter=8,
        learning_rate_init=1e-4,
        tol=0.0,
        n_iter_no_change=50,
        lr_schedule="plateau",
        lr_schedule_params={"patience": 0, "factor": 0.5, "threshold": 0.5},
        random_state=0,
    ).fit(digits)
    lrs = est.history_[:, "lr"]
    # Epoch 1 sets the reference; no later epoch improves by 50 %, so from
    # epoch 2 on each epoch halves the rate of the next.
    assert_allclose(lrs, [1e-4] + [1e-4 * 0.5**k for k in range(7)])


def test_plateau_monitors_validation_loss_when_there_is_one():
    from types import SimpleNamespace

    scheduler = make_scheduler("plateau", {}, 10)
    fit_row = {"train_loss": 1.0, "valid_loss": 2.0}  # fit with early_stopping
    assert scheduler.monitor(SimpleNamespace(history=[fit_row])) == 2.0
    partial_fit_row = {"train_loss": 1.0}  # partial_fit validates nothing
    assert scheduler.monitor(SimpleNamespace(history=[partial_fit_row])) == 1.0


def test_plateau_steps_on_the_validation_loss_in_fit(digits):
    est = AutoencoderTransformer(
        2,
        **{**FAST, "max_iter": 12, "learning_rate_init": 0.1, "batch_size": 16},
        early_stopping=True,
        n_iter_no_change=50,
        lr_schedule="plateau",
        lr_schedule_params={"patience": 0, "threshold": 0.0, "factor": 0.5},
    ).fit(digits)
    valid, lrs = est.history_[:, "valid_loss"], est.history_[:, "lr"]
    # The rate halves after each epoch whose validation loss is no new best.
    stalled = [valid[i] >= min(valid[:i]) for i in range(1, 12)]
    expected = [0, 0, *np.cumsum(stalled[:-1])]
    halvings = np.log2(lrs[0] / np.array(lrs))
    assert_allclose(halvings, expected, atol=1e-9)
    assert halvings[-1] > 0


def test_user_params_override_defaults(digits):
    # step_size keeps its default (max_iter // 3 = 2); gamma is the user's.
    est = AutoencoderTransformer(
        2,
        **{**FAST, "max_iter": 6, "tol": 0.0, "n_iter_no_change": 99},
        lr_schedule="step",
        lr_schedule_params={"gamma": 0.3},
    ).fit(digits)
    lr0 = est.learning_rate_init
    assert_allclose(
        est.history_[:, "lr"], [lr0, lr0, lr0 * 0.3, lr0 * 0.3, lr0 * 0.09, lr0 * 0.09]
    )


@pytest.mark.parametrize(
    "name, params, match",
    [
        ("exponential", {"gama": 0.9}, r"keys \['gama'\] that ExponentialLR"),
        ("constant", {"gamma": 0.9}, "must be empty with lr_schedule='constant'"),
    ],
)
def test_unknown_schedule_params_are_rejected(name, params, match):
    with pytest.raises(ValueError, match=match):
        check_schedule_params(name, params)


@pytest.mark.parametrize(
    "name, params, match",
    [
        ("exponential", {"gamma": -1.0}, r"gamma=-1.0 must be in \(0, 1\]"),
        ("exponential", {"gamma": 1.0000001}, r"gamma=1.0000001 must be in"),
        # A step_size beyond the simulated epochs hides gamma from simulation.
        ("step", {"step_size": 3333, "gamma": 2.0}, r"gamma=2.0 must be in"),
        ("cosine", {"eta_min": 0.5}, r"epoch 1001 .* be 0\.01516, 5\.054 x learning_"),
        ("warm_restarts", {"eta_min": 1.0}, r"be 0\.7942, 264\.7 x learning_rate"),
        ("plateau", {"mode": "max"}, "mode must be 'min'"),
    ],
)
def test_schedules_that_leave_the_learning_rate_range_are_rejected(name, params, match):
    with pytest.raises(ValueError, match=match):
        check_schedule_params(name, params, max_iter=10_000, lr=0.003)
    check_schedule_params("step", {"gamma": 1.0}, max_iter=20, lr=0.003)
    check_schedule_params("linear", {"end_factor": 0.0}, max_iter=20, lr=0.003)


@pytest.mark.parametrize("max_iter", [30, 31, 34, 40, 75, 200, 201])
def test_default_warm_restarts_end_at_small_rates(max_iter):
    # The third cycle ends at max_iter or up to 6 epochs after it: from about
    # 30 epochs on, the last epochs run at the small rates of a cycle's end.
    kwargs = default_schedule_params("warm_restarts", max_iter)
    assert 0 <= 7 * kwargs["T_0"] - max_iter <= 6
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = SCHEDULES["warm_restarts"](optimizer, **kwargs)
    rates = []
    for _ in range(max_iter):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[-1] < 0.5 and rates[-1] <= min(rates[-4:])


def test_bad_schedule_params_fail_at_fit_before_training(digits):
    est = AutoencoderTransformer(lr_schedule="cosine", lr_schedule_params={"tmax": 3})
    with pytest.raises(ValueError, match=r"lr_schedule_params has keys \['tmax'\]"):
        est.fit(digits)
    assert not hasattr(est, "history_")
