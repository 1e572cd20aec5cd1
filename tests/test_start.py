"""The starting weights: fit keeps them unless training beats them (never worse
than PCA from init="pca")."""

import re

import numpy as np
import pytest
import torch
from sklearn import datasets
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skae import AutoencoderTransformer
from skae._training import loop
from skae._training.start import better


def _split(X):
    return train_test_split(X, test_size=0.25, random_state=0)


def _pca_error(X_fit, X_test, k):
    pca = PCA(k).fit(X_fit)
    return np.mean((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2)


def _low_rank(n=500, p=10, seed=0):
    """Gaussian along random axes: PCA is optimal, there is nothing to learn."""
    rng = np.random.default_rng(seed)
    axes, _ = np.linalg.qr(rng.standard_normal((p, p)))
    std = 3.0 * 2.0 ** (-np.arange(p) / 2)
    return (rng.standard_normal((n, p)) * std) @ axes.T + rng.standard_normal(p)


def _one_class(loader, label):
    """Training and held-out rows of one class, standardized on the training
    rows: an anomaly detector's setting."""
    X, y = loader(return_X_y=True)
    X_fit, X_test, y_fit, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0
    )
    scaler = StandardScaler().fit(X_fit[y_fit == label])
    return scaler.transform(X_fit[y_fit == label]), scaler.transform(
        X_test[y_test == label]
    )


# ------------------------------------------------------------ the paired test


def test_better_needs_a_significant_mean_gain():
    rng = np.random.default_rng(0)
    start = torch.from_numpy(rng.uniform(1, 2, 200))
    assert better(start - 0.1, start)  # every row gains 0.1
    assert better(start * 0.9 + torch.from_numpy(rng.normal(0, 0.02, 200)), start)
    assert not better(start + 0.1, start)
    assert not better(start, start)
    # Four rows, one large gain among losses: a mean gain, not a significant one.
    few = torch.tensor([1.0, 1.0, 1.0, 1.0])
    assert not better(torch.tensor([0.2, 1.05, 1.05, 1.05]), few)
    assert not better(torch.tensor([0.5]), torch.tensor([1.0]))  # no evidence


# ------------------------------------------------------- never worse than PCA


def _assert_never_worse(X, k, seed, **params):
    X_fit, X_test = _split(X) if not isinstance(X, tuple) else X
    ae = AutoencoderTransformer(k, random_state=seed, **params).fit(X_fit)
    reference = _pca_error(X_fit, X_test, k)
    assert -ae.score(X_test) <= reference * (1 + 1e-5)
    return ae, reference


# Small data where training rarely helps: a raw feature dominating the scale
# (wine, breast cancer: PCA leaves 1e-4 of the variance), tiny sets (iris),
# PCA already optimal (low-rank Gaussian).
FAST_CASES = [
    ("wine", 2),
    ("breast_cancer", 5),
    ("diabetes", 2),
    ("iris", 2),
    ("low_rank", 5),
]


def _data(name):
    if name == "low_rank":
        return _low_rank()
    return getattr(datasets, f"load_{name}")().data


@pytest.mark.parametrize("name, k", FAST_CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_held_out_error_never_above_pcas(name, k, seed):
    _assert_never_worse(_data(name), k, seed)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, k",
    [
        ("digits", 2),
        ("digits", 8),
        ("wine", 5),
        ("breast_cancer", 2),
        ("diabetes", 5),
        ("iris", 3),
        ("low_rank", 2),
        ("manifold", 8),
        ("swiss_roll", 2),
        ("s_curve", 2),
    ],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_held_out_error_never_above_pcas_broad(name, k, seed):
    if name == "manifold":
        rng = np.random.default_rng(0)
        z = rng.standard_normal((3000, 8))
        A, B = rng.standard_normal((8, 64)), rng.standard_normal((64, 128))
        X = np.tanh(z @ A / 3) @ B / 8 + 0.01 * rng.standard_normal((3000, 128))
    elif name in ("swiss_roll", "s_curve"):
        X = getattr(datasets, f"make_{name}")(1000, noise=0.1, random_state=0)[0]
    else:
        X = _data(name)
    _assert_never_worse(X, k, seed)


@pytest.mark.parametrize(
    "loader, label", [(datasets.load_iris, 2), (datasets.load_wine, 2)]
)
def test_a_chance_win_on_a_few_validation_rows_is_not_kept(loader, label, monkeypatch):
    # One class of ~50 rows holds out 5 for validation: early stopping can
    # pick an epoch that beats PCA on those 5 and is worse on new rows.
    verdicts = []
    monkeypatch.setattr(
        loop, "better", lambda *a: verdicts.append(better(*a)) or verdicts[-1]
    )
    X = _one_class(loader, label)
    for seed in range(4):
        ae, reference = _assert_never_worse(X, 2, seed)
        assert dict(ae.net_.callbacks_)["early_stopping"].best_epoch_ == 0
    assert verdicts and not any(verdicts)  # epochs were picked, and refused


def test_a_real_win_is_kept(digits):
    X_fit, X_test = _split(digits)
    ae, reference = _assert_never_worse((X_fit, X_test), 8, 0, max_iter=15)
    assert -ae.score(X_test) < 0.9 * reference
    assert dict(ae.net_.callbacks_)["early_stopping"].best_epoch_ > 0


def test_without_a_split_the_start_comes_back_when_training_ends_worse():
    X_fit, X_test = _split(datasets.load_wine().data)
    ae = AutoencoderTransformer(2, early_stopping=False, max_iter=5, random_state=0)
    ae.fit(X_fit)
    # Every epoch ended worse than PCA on the training rows (Adam's first
    # steps swamp a residual of 1e-4 of the variance)...
    pca_training_error = _pca_error(X_fit, X_fit, 2) / ae.scale_[0] ** 2
    assert ae.n_iter_ == 5 and min(ae.loss_curve_) > pca_training_error
    # ... and the model returned is PCA's solution.
    assert -ae.score(X_test) == pytest.approx(_pca_error(X_fit, X_test, 2), rel=1e-5)


def test_verbose_says_the_starting_weights_were_kept(capsys):
    X = datasets.load_wine().data
    AutoencoderTransformer(2, early_stopping=False, max_iter=3, verbose=1).fit(X)
    last = capsys.readouterr().out.rstrip().splitlines()[-1]
    assert re.search(
        r"^Keeping the weights training started from\b.*training rows", last
    )


def test_early_stopping_itself_keeps_the_start_when_no_epoch_beats_it(monkeypatch):
    # Raw wine: every epoch is worse than PCA. Early stopping counts PCA's
    # solution as epoch 0, so it stops n_iter_no_change epochs in and keeps
    # it, with no trained epoch left for the significance test to judge.
    judged = []
    monkeypatch.setattr(loop, "better", lambda *a: judged.append(a) or True)
    X_fit, X_test = _split(datasets.load_wine().data)
    ae = AutoencoderTransformer(2, n_iter_no_change=7, random_state=0).fit(X_fit)
    assert ae.n_iter_ == 7 and ae.stop_reason_ == "early_stopping"
    assert not judged
    assert -ae.score(X_test) == pytest.approx(_pca_error(X_fit, X_test, 2), rel=1e-5)


@pytest.mark.parametrize(
    "params",
    [{"activity_l1": 0.1}, {"noise": "gaussian"}, {"l1": 0.1}],
    ids=["activity_l1", "noise", "l1"],
)
def test_penalties_and_noise_are_not_judged_by_pcas_error(params):
    # Raw wine: every epoch reconstructs worse than PCA, which plain fits keep
    # (above). A penalty or noise trades reconstruction for something PCA's
    # error cannot judge: the trained model stays, and early stopping's
    # first candidate is a trained epoch, not the start.
    X_fit, X_test = _split(datasets.load_wine().data)
    ae = AutoencoderTransformer(2, n_iter_no_change=3, random_state=0, **params)
    ae.fit(X_fit)
    assert dict(ae.net_.callbacks_)["early_stopping"].best_epoch_ > 0
    assert -ae.score(X_test) > 1.01 * _pca_error(X_fit, X_test, 2)


def test_validation_loss_is_the_validated_objective(digits):
    # Early stopping judges what training minimizes (without the penalties on
    # weights): with activity_l1, valid_loss is the reconstruction plus the
    # sparsity term, each recorded too; the plot's curve is the former.
    ae = AutoencoderTransformer(
        3,
        hidden_layer_sizes=(8,),
        activity_l1=0.1,
        l1=0.1,
        max_iter=3,
        random_state=0,
    ).fit(digits)
    for row in ae.history_:
        parts = row["valid_reconstruction"] + row["valid_activity_l1"]
        assert row["valid_activity_l1"] > 0 and "valid_l1" not in row
        assert row["valid_loss"] == pytest.approx(parts, rel=1e-5)
