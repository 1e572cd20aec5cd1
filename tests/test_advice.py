"""What the warnings say: the convergence warning's margin, the remedies."""

import warnings

import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skae import AutoencoderTransformer
from skae._training.advice import CONVERGENCE_MARGIN, recent_gain


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
