"""What the warnings say: the remedies, the convergence warning and its margin."""

import re
import warnings

import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skae import (
    AutoencoderTransformer,
    ExplodingGradientWarning,
    VanishingGradientWarning,
)
from skae._training.advice import CONVERGENCE_MARGIN, Advice, recent_gain
from tests.conftest import FAST, PLAIN

EXPLODING, VANISHING = ExplodingGradientWarning, VanishingGradientWarning


def _suggested(advice, warning):
    """The remedies ``advice`` suggests for ``warning``, as one string."""
    return " | ".join(advice.remedies()[warning])


# ---------------------------------------------------------------- remedies


@pytest.mark.parametrize(
    "applies, in_use, warning, remedy",
    [
        ({"solver": "sgd"}, {"solver": "adam"}, EXPLODING, r"solver="),
        ({"scaling": "center"}, {"scaling": "global"}, EXPLODING, r"scaling="),
        ({"scaling": None}, {"scaling": "standard"}, EXPLODING, r"scaling="),
        ({}, {"max_grad_norm": 1.0}, EXPLODING, r"max_grad_norm|clip_value"),
        ({}, {"clip_value": 0.5}, EXPLODING, r"max_grad_norm|clip_value"),
        ({}, {"normalization": "layer"}, EXPLODING, r"normalization="),
        # Layer normalization is no remedy for vanishing gradients.
        ({"normalization": "layer"}, {"normalization": "batch"}, VANISHING, "norm"),
        ({}, {"residual": True}, VANISHING, r"residual="),
        (
            {"activation": "tanh"},
            {"activation": "relu"},
            VANISHING,
            r"non-saturating activation",
        ),
        (
            {"activation": "relu", "init": "default"},
            {"activation": "relu", "init": "random"},
            VANISHING,
            r"init=",
        ),
        (
            {"activation": "relu", "init": "default"},
            {"activation": "relu", "init": "pca"},
            VANISHING,
            r"init=",
        ),
        ({"n_layers": 2}, {"n_layers": 1}, VANISHING, r"fewer layers"),
    ],
)
def test_a_setting_in_use_is_not_suggested(applies, in_use, warning, remedy):
    assert re.search(remedy, _suggested(Advice(**applies), warning))
    assert not re.search(remedy, _suggested(Advice(**in_use), warning))


def test_the_lower_rate_suggested_is_a_tenth_of_the_rate_in_use():
    suggested = _suggested(Advice(learning_rate_init=0.05), EXPLODING)
    assert re.search(r"lower learning_rate_init \(e\.g\. 0\.005\)", suggested)
    # An unknown rate: no example.
    assert re.search(
        r"lower learning_rate_init(?! \()", _suggested(Advice(), EXPLODING)
    )


def test_a_fits_gradient_warning_leaves_out_its_settings_in_use(digits):
    # SGD far too fast, clipped: a lower rate and Adam are suggested, not
    # clipping, nor the scaling (global) it uses.
    ae = AutoencoderTransformer(
        3,
        **{**FAST, **PLAIN},
        solver="sgd",
        learning_rate_init=30.0,
        max_grad_norm=1.0,
    )
    with pytest.warns(ExplodingGradientWarning) as record:
        ae.fit(digits)
    (message,) = [str(w.message) for w in record if w.category is EXPLODING]
    assert re.search(r"lower learning_rate_init \(e\.g\. 3\)", message)
    assert re.search(r"solver='adam'", message)
    assert not re.search(r"max_grad_norm|clip_value|scaling=", message)


# ------------------------------------------------------- the learned nothing


def _convergence(advice=None, **kwargs):
    """The convergence message of a run of 50 epochs with ``kwargs`` changed."""
    advice = advice or Advice(
        learning_rate_init=0.01, solver="sgd", tol=0.001, max_iter=50
    )
    run = dict(
        stopped_early=False,
        n_iter=50,
        error=0.5,
        baseline=1.0,
        rows="validation",
        losses=[1.0] * 6,
        window=3,
    )
    return advice.convergence(**{**run, **kwargs})


@pytest.mark.parametrize("stopped_early", [False, True])
def test_learned_nothing_when_the_error_is_not_below_the_means(stopped_early):
    assert _convergence(stopped_early=stopped_early, error=0.99) is None
    for error in (1.0, 1.1, 5.0):
        message = _convergence(stopped_early=stopped_early, error=error)
        assert re.search(r"validation data, .*learned nothing", message)
    # Constant data (nothing to learn), or no baseline: never.
    assert _convergence(stopped_early=stopped_early, error=1.0, baseline=0.0) is None
    assert _convergence(stopped_early=stopped_early, error=1.0, baseline=None) is None


@pytest.mark.parametrize(
    "error, solver, present, absent",
    [
        # Far above the mean's error: the steps overshoot.
        (
            1.5,
            "sgd",
            [r"lower learning_rate_init \(e\.g\. 0\.001\)", r"solver='adam'"],
            [r"higher"],
        ),
        (1.5, "adam", [r"lower learning_rate_init"], [r"solver=", r"higher"]),
        # Stuck at the mean's error: steps too small, or no gradient.
        (
            1.1,
            "sgd",
            [r"higher learning_rate_init", r"gradient warning"],
            [r"lower", r"solver="],
        ),
    ],
)
def test_learned_nothing_suggests_what_fits_the_error(error, solver, present, absent):
    advice = Advice(learning_rate_init=0.01, solver=solver, tol=0.001, max_iter=50)
    message = _convergence(advice, error=error)
    for pattern in present:
        assert re.search(pattern, message)
    for pattern in absent:
        assert not re.search(pattern, message)


def test_learned_nothing_suggests_more_epochs_or_a_smaller_tol():
    stopped = _convergence(stopped_early=True, n_iter=7, error=1.0, rows="training")
    assert re.search(r"stopped after 7 epochs", stopped)
    assert re.search(r"training data", stopped)
    assert re.search(r"smaller tol \(now 0\.001\)", stopped)
    assert not re.search(r"max_iter", stopped)
    ran_out = _convergence(error=1.0)
    assert re.search(r"Maximum iterations \(50\)", ran_out)
    assert re.search(r"larger max_iter", ran_out)
    assert not re.search(r"\btol\b", ran_out)


def test_max_iter_warns_only_while_the_loss_still_falls_by_the_margin():
    falling = [1.0, 0.9, 0.8, 0.7, 0.6]
    message = _convergence(losses=falling, window=2)
    assert re.search(r"validation loss fell by 25\.0% over the last 2 epochs", message)
    assert re.search(r"increase max_iter", message)
    flat = [1.0, 0.9, 0.8, 0.8 * (1 - CONVERGENCE_MARGIN / 2), 0.8]
    assert _convergence(losses=flat, window=2) is None
    # A run that stopped early converged, whatever its last epochs gained.
    assert _convergence(stopped_early=True, losses=falling, window=2) is None


def test_recent_gain_is_the_relative_fall_of_the_best_loss():
    # losses[0] is where training started; then one loss per epoch.
    losses = [1.0, 0.8, 0.5, 0.45, 0.44]
    assert recent_gain(losses, window=2) == pytest.approx((0.5 - 0.44) / 0.5)
    assert recent_gain(losses, window=10) == pytest.approx(0.56)  # since the start
    # A worse last epoch does not hide an earlier gain within the window...
    assert recent_gain([1.0, 0.8, 0.6, 0.9], window=2) == pytest.approx(0.25)
    # ... and no gain at all is 0, as is a loss that only rose.
    assert recent_gain([1.0, 0.5, 0.6, 0.7], window=2) == 0.0
    assert recent_gain([1.0, 1.1], window=10) == 0.0
    assert recent_gain([1.0], window=10) == 0.0


def test_two_epochs_on_digits_warn_with_the_gain_still_to_come():
    X = load_digits().data
    with pytest.warns(ConvergenceWarning) as record:
        short = AutoencoderTransformer(8, max_iter=2, random_state=0).fit(X)
    (warning,) = [w for w in record if w.category is ConvergenceWarning]
    assert "Maximum iterations (2) reached" in str(warning.message)
    assert "validation loss fell by" in str(warning.message)
    assert "increase max_iter" in str(warning.message)
    # It tells the truth: more epochs lower the validation loss by more than
    # the margin.
    longer = AutoencoderTransformer(8, max_iter=10, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        longer.fit(X)
    before = min(short.history_[:, "valid_loss"])
    after = min(longer.history_[:, "valid_loss"])
    assert after < (1 - 5 * CONVERGENCE_MARGIN) * before


def test_no_warning_when_max_iter_ends_a_run_that_stopped_gaining(digits):
    # A rate this small changes the loss by far less than the margin: more
    # epochs would not help by a margin that matters, whatever tol says.
    ae = AutoencoderTransformer(
        3, hidden_layer_sizes=(8,), learning_rate_init=1e-7, max_iter=3, tol=0.0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ae.fit(digits)
    assert ae.stop_reason_ == "max_iter"
