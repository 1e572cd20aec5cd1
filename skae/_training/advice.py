"""What training tells the user: every warning, error and progress line, worded here.

A remedy already in use is not suggested (see the user guide's training page).
"""

from dataclasses import dataclass

from ..exceptions import ExplodingGradientWarning, VanishingGradientWarning

#: A run that ends at ``max_iter`` warns only when its monitored loss fell by
#: more than this fraction over its last ``n_iter_no_change`` epochs: then
#: more epochs would lower it by a margin that matters. Default runs that
#: reach ``max_iter`` gain well under 1 % (see the "skae versus PCA" guide).
CONVERGENCE_MARGIN = 0.01

#: Activations whose gradient vanishes for large inputs.
SATURATING = {"sigmoid", "logistic", "tanh"}


def suggest(items):
    """`` Try a, b, or c.``; or that the usual remedies are in use."""
    if not items:
        return " The usual remedies are already in use."
    if len(items) <= 2:
        return f" Try {' or '.join(items)}."
    return f" Try {', '.join(items[:-1])}, or {items[-1]}."


def restarted(n):
    return f"training diverged and was restarted {n} time(s)"


def peak_norm(peak):
    return f"the largest per-layer gradient norm reached {peak:.3g}"


def loss_rose(first, last):
    return (
        f"the training loss rose from {first:.4g} (epoch 1) to {last:.4g} (last epoch)"
    )


def exploding(what, items):
    return f"Exploding gradients: {what}." + suggest(items)


def vanishing(first, last, ratio, loss, items):
    return (
        f"Vanishing gradients: the gradient norm of {first!r} is {ratio:.1e} "
        f"times that of {last!r}: the first layers barely learn (final training "
        f"loss {loss:.4g})."
    ) + suggest(items)


def diverged(loss, epoch, n_restarts, max_restarts, lr, items):
    return (
        f"Training diverged: the training loss was {loss} at epoch {epoch} after "
        f"{n_restarts} restart(s) (max_restarts={max_restarts}), the last with "
        f"learning rate {lr:.3g}." + suggest(items)
    )


def restarting(n, max_restarts, loss, epoch, best_epoch, lr):
    return (
        f"Restart {n}/{max_restarts}: the training loss was {loss:.4g} at epoch "
        f"{epoch}; going on from the weights of epoch {best_epoch} with learning "
        f"rate {lr:.3g}."
    )


def stopping(monitor, tol, patience):
    return (
        f"Stopping: {monitor} has not gone below its best minus tol={tol:g} for "
        f"{patience} epochs."
    )


def restoring(epoch):
    if epoch:
        return f"Restoring the weights of epoch {epoch}."
    return "Keeping the weights training started from: no epoch beat them."


def keeping_start(rows):
    return (
        "Keeping the weights training started from: training did not beat them "
        f"on the {rows} rows."
    )


def interrupted(n_iter):
    return (
        f"Training interrupted by user after {n_iter} epochs; the weights of the "
        "best epoch so far were restored."
    )


def recent_gain(losses, window):
    """Relative fall of the best of ``losses`` over their last ``window`` entries.

    With ``window`` or fewer entries, the fall since the first. 0 when the
    best did not fall (or a loss is not finite).
    """
    if len(losses) < 2:
        return 0.0
    before = min(losses[: max(1, len(losses) - window)])
    after = min(losses)
    if not (before > 0 and after < before):
        return 0.0
    return (before - after) / before


@dataclass(frozen=True)
class Advice:
    """The settings of a model that its training messages depend on.

    A setting left at None is unknown: its remedy is suggested.
    """

    learning_rate_init: float = None
    solver: str = None
    scaling: str = "global"
    max_grad_norm: float = None
    clip_value: float = None
    normalization: str = None
    residual: bool = False
    activation: str = None
    init: str = None
    n_layers: int = None
    tol: float = 1e-4
    max_iter: int = None

    def remedies(self):
        """Warning class -> the remedies to suggest, settings in use left out."""
        lower = "a lower learning_rate_init"
        if self.learning_rate_init is not None:
            lower += f" (e.g. {self.learning_rate_init / 10:g})"
        exploding = [lower]
        if self.scaling in ("center", None):
            # Gradient norms grow with the square of the data's units.
            exploding.insert(0, "scaling='global' (or 'standard')")
        if self.max_grad_norm is None and self.clip_value is None:
            exploding.append("max_grad_norm=1.0 or clip_value")
        if self.normalization is None:
            exploding.append("normalization='batch'")
        if self.solver != "adam":
            exploding.append("solver='adam'")
        vanishing = []
        if not self.residual:
            vanishing.append("residual=True")
        if self.normalization != "batch":
            # Layer normalization is no remedy: in deep sigmoid stacks it
            # leaves the first layer's gradient 1e-12 times the last's.
            vanishing.append("normalization='batch'")
        if self.activation is None or self.activation in SATURATING:
            vanishing.append("a non-saturating activation such as 'relu' or 'gelu'")
        elif self.init not in ("random", "pca"):  # "pca" starts as "random"
            vanishing.append("init='random' (scaled to the activation)")
        if self.n_layers is None or self.n_layers > 1:
            vanishing.append("fewer layers")
        return {
            ExplodingGradientWarning: exploding,
            VanishingGradientWarning: vanishing,
        }

    def convergence(
        self, *, stopped_early, n_iter, error, baseline, rows, losses, window
    ):
        """The ConvergenceWarning's message for a ``fit``, or None when it converged.

        A model whose reconstruction ``error`` (scaled units, on the ``rows``)
        is not below ``baseline``, that of predicting every feature's mean,
        learned nothing; one that ran ``max_iter`` epochs warns when its
        monitored ``losses`` fell by more than :data:`CONVERGENCE_MARGIN` over
        the last ``window`` epochs.
        """
        if stopped_early:
            message = f"Training stopped after {n_iter} epochs."
        else:
            message = (
                f"Maximum iterations ({self.max_iter}) reached and the optimization "
                "hasn't converged yet."
            )
        if baseline is not None and baseline > 0 and not error < baseline:
            if error > 1.2 * baseline:  # the steps overshoot
                lr = self.learning_rate_init
                items = [f"a lower learning_rate_init (e.g. {lr / 10:g})"]
                if self.solver != "adam":
                    items.append("solver='adam'")
            else:  # stuck at the mean: steps too small, or no gradient
                items = [
                    "a higher learning_rate_init",
                    "the remedies of any gradient warning",
                ]
            items.append(
                f"a smaller tol (now {self.tol:g})"
                if stopped_early
                else "a larger max_iter"
            )
            return (
                f"{message} Its reconstruction error on the {rows} data, {error:.4g}, "
                f"is not below {baseline:.4g}, the error of predicting every "
                "feature's mean: the autoencoder has learned nothing useful."
                + suggest(items)
            )
        if stopped_early:
            return None
        gain = recent_gain(losses, window)
        if not gain > CONVERGENCE_MARGIN:
            return None
        window = min(window, len(losses) - 1)
        epochs = f"{window} epoch" + ("s" if window != 1 else "")
        return (
            f"{message} The {rows} loss fell by {gain:.1%} over the last {epochs}, "
            "so more epochs would lower it further: increase max_iter."
        )


#: The remedies for a model whose settings are unknown.
DEFAULT_REMEDIES = Advice().remedies()
