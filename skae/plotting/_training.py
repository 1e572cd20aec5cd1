"""Figures of how training went: loss curves, learning rate, gradient flow."""

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._common import _colormap, _new_axes

#: Above this many layers a legend gets unreadable; a colorbar replaces it.
_MAX_LEGEND_LAYERS = 8


def _history(est):
    """Return the training history of a fitted estimator."""
    check_is_fitted(est)
    history = getattr(est, "history_", None)
    if history is None:
        raise TypeError(
            f"{type(est).__name__} has no history_ attribute; pass a fitted "
            "skae.AutoencoderTransformer (for a Pipeline, its last step: "
            "pipeline[-1])."
        )
    return history


def _column(history, key):
    """Return ``(epochs, values)`` of the rows of ``history`` that have ``key``."""
    rows = [row for row in history if key in row]
    epochs = np.array([row["epoch"] for row in rows], dtype=int)
    return epochs, [row[key] for row in rows]


def plot_history(est, ax=None):
    """Plot the loss curves and the learning rate of a fitted autoencoder.

    Read more in the :ref:`User Guide <diagnostics>`.

    Parameters
    ----------
    est : AutoencoderTransformer
        A fitted estimator; its ``history_`` is plotted.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw the losses on. None creates a new figure.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The losses' axes; the learning rate's twin axes is ``ax.figure.axes[-1]``.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If ``est`` is not fitted.

    See Also
    --------
    plot_gradient_flow : Per-layer gradient norms over the epochs.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoencoderTransformer
    >>> from skae.plotting import plot_history
    >>> X, _ = load_digits(return_X_y=True)
    >>> ae = AutoencoderTransformer(2, max_iter=3, random_state=0).fit(X[:300])
    >>> ax = plot_history(ae)
    >>> [line.get_label() for line in ax.get_lines()]
    ['train_reconstruction', 'valid_loss']
    """
    history = _history(est)
    ax = _new_axes(ax)
    lines = []
    # Histories saved by older versions have only train_loss, the reconstruction.
    train = "train_reconstruction" if "train_reconstruction" in history[0] else None
    # valid_loss may sum several terms; the reconstruction matches the train curve.
    valid = "valid_reconstruction" if "valid_reconstruction" in history[0] else None
    for key in (train or "train_loss", valid or "valid_loss"):
        epochs, values = _column(history, key)
        if len(epochs):
            lines += ax.plot(epochs, values, marker=".", label=key)
    epochs, total = _column(history, "train_loss")
    _, reconstruction = _column(history, train or "train_loss")
    if not np.allclose(total, reconstruction, rtol=1e-6, atol=0):
        lines += ax.plot(
            epochs, total, lw=1, color="0.6", label="train_loss (with penalties)"
        )
    restarts, _ = _column(history, "restart")
    for i, epoch in enumerate(restarts):
        restart = ax.axvline(epoch - 0.5, ls=":", color="0.3", lw=1, label="restart")
        lines += [restart] if i == 0 else []
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(True, which="major", alpha=0.3)

    epochs, lr = _column(history, "lr")
    if len(epochs):
        lr = np.asarray(lr, dtype=float)
        ax_lr = ax.twinx()
        lines += ax_lr.plot(
            epochs, lr, "--", color="0.4", drawstyle="steps-mid", label="lr"
        )
        positive = lr[lr > 0]
        # Step and exponential schedules span decades; a log axis shows them.
        if len(positive) == len(lr) and positive.max() > 10 * positive.min():
            ax_lr.set_yscale("log")
        else:
            ax_lr.set_ylim(0, 1.1 * lr.max() if lr.max() > 0 else 1)
        ax_lr.set_ylabel("learning rate")
    ax.legend(lines, [line.get_label() for line in lines], loc="lower left")
    return ax


def plot_gradient_flow(est, ax=None, cmap="viridis"):
    """Plot each layer's gradient norm over the epochs.

    Read more in the :ref:`User Guide <diagnostics>`.

    Parameters
    ----------
    est : AutoencoderTransformer
        A fitted estimator.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw on. None creates a new figure.
    cmap : str or matplotlib.colors.Colormap, default="viridis"
        Colormap running from the input layer to the output layer.

    Returns
    -------
    ax : matplotlib.axes.Axes
        One line per layer; a legend, or a colorbar above 8 layers.

    Raises
    ------
    ValueError
        If the history has no gradient norms.

    See Also
    --------
    plot_history : Loss curves and learning rate.
    skae.VanishingGradientWarning : Warned by ``fit`` when gradients vanish.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoencoderTransformer
    >>> from skae.plotting import plot_gradient_flow
    >>> X, _ = load_digits(return_X_y=True)
    >>> ae = AutoencoderTransformer(2, hidden_layer_sizes=(16,), max_iter=3).fit(X)
    >>> ax = plot_gradient_flow(ae)
    >>> [line.get_label() for line in ax.get_lines()]  # doctest: +NORMALIZE_WHITESPACE
    ['encoder.0', 'encoder.code', 'encoder.pca', 'decoder.pca', 'decoder.0',
     'decoder.output']
    """
    history = _history(est)
    epochs, norms = _column(history, "grad_norms")
    if not len(epochs):
        raise ValueError(
            "est.history_ has no 'grad_norms' entries to plot; they are "
            "recorded by skae.callbacks.GradientMonitor during fit."
        )
    layers = list(norms[0])
    ax = _new_axes(ax)
    colormap = _colormap(cmap)
    n = len(layers)
    positions = np.linspace(0, 1, n) if n > 1 else np.array([0.0])
    for layer, position in zip(layers, positions, strict=True):
        values = [row.get(layer, np.nan) for row in norms]
        ax.plot(epochs, values, color=colormap(position), label=layer)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean gradient L2 norm")
    ax.grid(True, which="major", alpha=0.3)
    if n <= _MAX_LEGEND_LAYERS:
        ax.legend(title="layer", fontsize="small")
    else:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        mappable = ScalarMappable(norm=Normalize(0, n - 1), cmap=colormap)
        colorbar = ax.figure.colorbar(mappable, ax=ax, ticks=[0, n - 1])
        colorbar.ax.set_yticklabels([layers[0], layers[-1]])
        colorbar.set_label("layer")
    return ax
