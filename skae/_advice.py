"""What the training warnings advise: remedies that fit the model's settings."""

from ._checks import hidden_sizes
from .exceptions import ExplodingGradientWarning, VanishingGradientWarning

#: A run that ends at ``max_iter`` raises a ConvergenceWarning only when its
#: monitored loss (the validation loss with ``early_stopping``, else the
#: training loss) fell by more than this fraction over its last
#: ``n_iter_no_change`` epochs (or since training started, in shorter runs):
#: then more epochs would very likely lower it by a margin a user cares
#: about. Below it the run has converged for practical purposes, even if
#: ``tol`` (an absolute threshold) still counted small gains as progress.
#: Measured: ``load_digits`` with ``max_iter=2`` falls by ~8 % per epoch,
#: while default runs that reach ``max_iter`` gain well under 1 % over their
#: last 10 epochs (see the "skae versus PCA" guide).
CONVERGENCE_MARGIN = 0.01

#: Activations whose gradient vanishes for large inputs.
SATURATING = {"sigmoid", "logistic", "tanh"}


def remedies_for(params):
    """Return the remedies to suggest, per warning, for a model's ``params``.

    ``params`` are the ``get_params()`` an AutoencoderTransformer was fitted
    with; settings already in use are left out of the suggestions.
    """
    exploding = [
        "a lower learning_rate_init (e.g. {:g})".format(
            params["learning_rate_init"] / 10
        )
    ]
    if params["scaling"] in ("center", None):
        # Gradient norms grow with the square of the data's units.
        exploding.insert(0, "scaling='global' (or 'standard')")
    if params["max_grad_norm"] is None and params["clip_value"] is None:
        exploding.append("max_grad_norm=1.0 or clip_value")
    if params["normalization"] is None:
        exploding.append("normalization='batch'")
    if params["solver"] != "adam":
        exploding.append("solver='adam'")
    vanishing = []
    if not params["residual"]:
        vanishing.append("residual=True")
    if params["normalization"] != "batch":
        vanishing.append("normalization='batch'")
    if params["activation"] in SATURATING:
        vanishing.append("a non-saturating activation such as 'relu' or 'gelu'")
    elif params["init"] not in ("auto", "pca"):
        # (init="pca" initializes the hidden layers as "auto" does.)
        vanishing.append("init='auto' (scaled to the activation)")
    if len(hidden_sizes(params["hidden_layer_sizes"])) > 1:
        vanishing.append("fewer layers")
    return {ExplodingGradientWarning: exploding, VanishingGradientWarning: vanishing}


def recent_gain(losses, window):
    """Relative fall of the best of ``losses`` over their last ``window`` entries.

    One loss per epoch, after the loss training started from when the
    starting weights compete (see :class:`~skae._training.TrainReport`); with
    ``window`` or fewer epochs, the fall since the first entry. 0 when the
    best did not fall (or a loss is not finite).
    """
    if len(losses) < 2:
        return 0.0
    before = min(losses[: max(1, len(losses) - window)])
    after = min(losses)
    if not (before > 0 and after < before):
        return 0.0
    return (before - after) / before


def learned_nothing(error, baseline, params, stopped_early, rows="training"):
    """Return the learned-nothing part of the convergence warning, or None.

    ``error`` is the eval-mode reconstruction error on the ``rows``
    (``"training"`` or ``"validation"``) and ``baseline`` that of predicting
    every feature's mean, both in scaled units; ``params`` the estimator's.
    None when the model beats the mean, or when there is nothing to learn
    (``baseline`` 0: constant data).
    """
    if not baseline > 0 or error is None or error < baseline:
        return None
    if error > 1.2 * baseline:  # the steps overshoot
        remedies = [
            "a lower learning_rate_init (e.g. {:g})".format(
                params["learning_rate_init"] / 10
            )
        ]
        if params["solver"] != "adam":
            remedies.append("solver='adam'")
    else:  # stuck at the mean: steps too small, or no gradient
        remedies = [
            "a higher learning_rate_init",
            "the remedies of any gradient warning",
        ]
    if stopped_early:
        remedies.append(f"a smaller tol (now {params['tol']:g})")
    else:
        remedies.append("a larger max_iter")
    return (
        f"Its reconstruction error on the {rows} data, {error:.4g}, is not "
        f"below {baseline:.4g}, the error of predicting every feature's mean: "
        f"the autoencoder has learned nothing useful. Try "
        f"{', '.join(remedies[:-1])} or {remedies[-1]}."
    )
