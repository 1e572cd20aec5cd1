"""Matplotlib figures for fitted autoencoders: training curves, gradient flow,
reconstructions, latent spaces, Jacobians and samples.

matplotlib is an optional dependency (``pip install skae[plot]``); it is
imported when one of these functions is called, never by ``import skae``.
"""

import math
from numbers import Integral

import numpy as np
from sklearn.utils.validation import check_is_fitted

__all__ = [
    "plot_gradient_flow",
    "plot_history",
    "plot_jacobian",
    "plot_latent",
    "plot_reconstructions",
    "plot_samples",
]

#: Above this many layers, :func:`plot_gradient_flow` draws a colorbar
#: instead of a legend.
_MAX_LEGEND_LAYERS = 8

#: Labels with at most this many distinct values are drawn as categories.
_MAX_CATEGORIES = 20


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "skae.plotting needs matplotlib; install it with "
            "`pip install skae[plot]` or `pip install matplotlib`."
        ) from exc
    return plt


def _colormap(cmap):
    _pyplot()
    import matplotlib

    return matplotlib.colormaps.get_cmap(cmap)


def _new_axes(ax):
    if ax is None:
        _, ax = _pyplot().subplots()
    return ax


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

    The training reconstruction error (``loss_curve_``, the
    ``train_reconstruction`` term) and, with ``early_stopping=True``, the
    validation reconstruction error (the same term on the held-out rows,
    ``valid_loss`` or, with several validated terms, ``valid_reconstruction``)
    are drawn against
    the epoch on a logarithmic scale. When the objective has penalties
    (``l1``, ...), the whole training objective ``train_loss`` is drawn too,
    thin and grey. The learning rate used by each epoch is drawn dashed on a
    twin y-axis on the right; its axis is logarithmic when the rate spans
    more than a factor 10 (step or exponential schedules), linear from zero
    otherwise. Epochs run after a restart (a divergence) are marked with a
    dotted vertical line.

    Parameters
    ----------
    est : AutoencoderTransformer
        A fitted estimator; its ``history_`` is plotted.

    ax : matplotlib.axes.Axes, default=None
        Axes to draw the losses on. None creates a new figure.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The axes of the losses. The learning-rate axes is its twin, the last
        element of ``ax.figure.axes``.

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
    >>> ae = AutoencoderTransformer(
    ...     n_components=2, hidden_layer_sizes=(16,), max_iter=3, random_state=0
    ... )
    >>> ae = ae.fit(X[:300])
    >>> ax = plot_history(ae)
    >>> ax.get_yscale()
    'log'
    >>> [line.get_label() for line in ax.get_lines()]
    ['train_reconstruction', 'valid_loss']
    """
    history = _history(est)
    ax = _new_axes(ax)
    lines = []
    # Histories saved before the objective had named terms: train_loss.
    train = "train_reconstruction" if "train_reconstruction" in history[0] else None
    # With several validated terms (activity_l1, ...), valid_loss sums them:
    # their reconstruction is the curve on the training curve's footing.
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
        if len(positive) == len(lr) and positive.max() > 10 * positive.min():
            ax_lr.set_yscale("log")
        else:
            ax_lr.set_ylim(0, 1.1 * lr.max() if lr.max() > 0 else 1)
        ax_lr.set_ylabel("learning rate")
    ax.legend(lines, [line.get_label() for line in lines], loc="lower left")
    return ax


def plot_gradient_flow(est, ax=None, cmap="viridis"):
    """Plot each layer's gradient norm over the epochs.

    The norms are those recorded by
    :class:`~skae.callbacks.GradientMonitor` in ``est.history_[:,
    "grad_norms"]``: for each epoch and layer, the mean over the epoch's
    batches of the L2 norm of the layer's gradient, before clipping. Lines are
    colored along ``cmap`` from the input layer (``"encoder.0"``) to the output
    layer (``"decoder.output"``). Healthy networks keep the lines within an
    order of magnitude or two of each other; vanishing gradients show as the
    first layers' lines falling far below the last layers'.

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
        The axes, with one line per layer (labelled with the layer's name),
        a logarithmic y-axis, and a legend, or a colorbar when there are more
        than 8 layers.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If ``est`` is not fitted.
    ValueError
        If the history has no gradient norms.

    See Also
    --------
    plot_history : Loss curves and learning rate.
    skae.VanishingGradientWarning : Raised by ``fit`` when the first layers'
        gradients vanish.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoencoderTransformer
    >>> from skae.plotting import plot_gradient_flow
    >>> X, _ = load_digits(return_X_y=True)
    >>> ae = AutoencoderTransformer(
    ...     n_components=2, hidden_layer_sizes=(16,), max_iter=3, random_state=0
    ... )
    >>> ae = ae.fit(X[:300])
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


def _is_transformer(obj):
    return hasattr(obj, "transform") and hasattr(obj, "inverse_transform")


def _reconstruct(X, reconstruction):
    """Return ``reconstruction`` as an array, reconstructing ``X`` if needed."""
    if _is_transformer(reconstruction):
        check_is_fitted(reconstruction)
        return np.asarray(
            reconstruction.inverse_transform(reconstruction.transform(X)), dtype=float
        )
    return np.asarray(reconstruction, dtype=float)


def _default_label(reconstruction, i):
    if _is_transformer(reconstruction):
        return type(reconstruction).__name__
    return f"reconstruction {i + 1}"


def _image_shape(image_shape, n_features):
    if image_shape is None:
        side = math.isqrt(n_features)
        return (side, side) if side * side == n_features else None
    image_shape = tuple(int(s) for s in image_shape)
    if math.prod(image_shape) != n_features:
        raise ValueError(
            f"image_shape={image_shape} has {math.prod(image_shape)} pixels but X "
            f"has n_features={n_features}; pass a shape whose product is "
            f"{n_features}."
        )
    return image_shape


def plot_reconstructions(
    X, *reconstructions, labels=None, image_shape=None, n_samples=8, axes=None
):
    """Show samples next to their reconstructions, one row per model.

    The first row shows the first ``n_samples`` rows of ``X``; each following
    row shows the same samples as reconstructed by one model. Images share
    the gray scale of the originals, so a faded or blurred reconstruction
    looks so. Data that are not images (``image_shape`` None and a number of
    features that is not a perfect square) are drawn as line plots of the
    feature values.

    Parameters
    ----------
    X : array-like of shape (n_samples_X, n_features)
        Original samples.

    *reconstructions : array-like of shape (n_samples_X, n_features) or \
            fitted transformer
        Reconstructions of ``X``, or fitted transformers with an
        ``inverse_transform`` (such as :class:`~skae.AutoencoderTransformer`
        or :class:`sklearn.decomposition.PCA`), which are asked for
        ``inverse_transform(transform(X))``.

    labels : list of str, default=None
        One row title per reconstruction. Defaults to the transformer's class
        name, or ``"reconstruction 1"``, ... for arrays. The first row is
        titled ``"original"``.

    image_shape : tuple of int, default=None
        Shape of one image, e.g. ``(8, 8)`` for ``load_digits``. None infers a
        square image when ``n_features`` is a perfect square.

    n_samples : int, default=8
        Number of samples (columns) shown; at most ``n_samples_X``.

    axes : array of matplotlib.axes.Axes of shape \
            (1 + len(reconstructions), n_samples), default=None
        Axes to draw on. None creates a new figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure, with ``1 + len(reconstructions)`` rows of ``n_samples``
        axes.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If a transformer passed in ``reconstructions`` is not fitted.
    ValueError
        If a reconstruction's shape differs from ``X``'s, ``labels`` has the
        wrong length, or ``axes`` the wrong shape.

    See Also
    --------
    plot_latent : Scatter plot of a 2-D code.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.decomposition import PCA
    >>> from skae.plotting import plot_reconstructions
    >>> X, _ = load_digits(return_X_y=True)
    >>> pca = PCA(n_components=8, random_state=0).fit(X)
    >>> fig = plot_reconstructions(X, pca, n_samples=5)
    >>> len(fig.axes)
    10
    >>> fig.axes[5].get_ylabel()
    'PCA'
    """
    plt = _pyplot()
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D; got an array of shape {X.shape}.")
    if not reconstructions:
        raise ValueError(
            "plot_reconstructions needs at least one reconstruction (an array or "
            "a fitted transformer) after X."
        )
    if not isinstance(n_samples, Integral) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer; got {n_samples!r}.")
    n_shown = min(int(n_samples), X.shape[0])
    X_shown = X[:n_shown]
    rows = [X_shown]
    for i, reconstruction in enumerate(reconstructions):
        R = _reconstruct(X_shown, reconstruction)
        expected = X_shown.shape if _is_transformer(reconstruction) else X.shape
        if R.shape != expected:
            raise ValueError(
                f"reconstruction {i + 1} has shape {R.shape}; it must have "
                f"X's shape {X.shape}."
            )
        rows.append(R[:n_shown])
    if labels is None:
        labels = [_default_label(r, i) for i, r in enumerate(reconstructions)]
    labels = list(labels)
    if len(labels) != len(reconstructions):
        raise ValueError(
            f"labels has {len(labels)} entries but there are "
            f"{len(reconstructions)} reconstructions; pass one label per "
            "reconstruction."
        )
    labels = ["original", *labels]
    shape = _image_shape(image_shape, X.shape[1])

    n_rows = len(rows)
    if axes is None:
        fig, axes = plt.subplots(
            n_rows,
            n_shown,
            figsize=(1.2 * n_shown + 0.6, 1.3 * n_rows),
            squeeze=False,
            sharex=shape is None,
            sharey=shape is None,
        )
    else:
        axes = np.asarray(axes, dtype=object)
        if axes.shape != (n_rows, n_shown):
            raise ValueError(
                f"axes has shape {axes.shape}; expected ({n_rows}, {n_shown}): "
                "one row for the originals plus one per reconstruction, one "
                "column per sample."
            )
        fig = axes.flat[0].figure
    low, high = float(X_shown.min()), float(X_shown.max())
    for r, (values, label) in enumerate(zip(rows, labels, strict=True)):
        for c in range(n_shown):
            ax = axes[r, c]
            if shape is not None:
                ax.imshow(
                    values[c].reshape(shape),
                    cmap="gray_r",
                    vmin=low,
                    vmax=high,
                    interpolation="nearest",
                )
                ax.set_xticks([])
                ax.set_yticks([])
            else:
                ax.plot(values[c], color="C0" if r == 0 else f"C{r}")
                ax.set_ylim(low - 0.05 * (high - low), high + 0.05 * (high - low))
                ax.tick_params(labelbottom=False, labelleft=c == 0)
        axes[r, 0].set_ylabel(label)
    return fig


def plot_latent(Z, y=None, ax=None, title=None):
    """Scatter-plot a 2-D code, colored by label.

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_components)
        Codes, e.g. the output of ``transform``. The first two columns are
        plotted.

    y : array-like of shape (n_samples,), default=None
        Labels used for the colors. Labels with at most 20 distinct values
        (integers, strings, booleans) are drawn as categories with a legend;
        other numeric labels get a continuous colormap and a colorbar.

    ax : matplotlib.axes.Axes, default=None
        Axes to draw on. None creates a new figure.

    title : str, default=None
        Title of the axes.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The axes, with one scatter collection per category (or one in total).

    Raises
    ------
    ValueError
        If ``Z`` has fewer than 2 columns or ``y`` a different length.

    See Also
    --------
    plot_reconstructions : Samples next to their reconstructions.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.decomposition import PCA
    >>> from skae.plotting import plot_latent
    >>> X, y = load_digits(return_X_y=True)
    >>> Z = PCA(n_components=2, random_state=0).fit_transform(X)
    >>> ax = plot_latent(Z, y, title="PCA")
    >>> len(ax.collections)
    10
    """
    Z = np.asarray(Z, dtype=float)
    if Z.ndim != 2 or Z.shape[1] < 2:
        raise ValueError(
            f"Z must have shape (n_samples, n_components) with n_components >= 2; "
            f"got shape {Z.shape}."
        )
    ax = _new_axes(ax)
    style = {"s": 8, "alpha": 0.7, "linewidths": 0}
    if y is None:
        ax.scatter(Z[:, 0], Z[:, 1], **style)
    else:
        y = np.asarray(y)
        if y.shape != (Z.shape[0],):
            raise ValueError(
                f"y has shape {y.shape} but Z has {Z.shape[0]} samples; pass one "
                "label per row of Z."
            )
        categories = np.unique(y)
        discrete = y.dtype.kind in "biuOSU" and len(categories) <= _MAX_CATEGORIES
        if discrete:
            cmap = _colormap("tab10" if len(categories) <= 10 else "tab20")
            for i, category in enumerate(categories):
                mask = y == category
                ax.scatter(
                    Z[mask, 0], Z[mask, 1], color=cmap(i), label=str(category), **style
                )
            legend = ax.legend(
                title="label",
                loc="center left",
                bbox_to_anchor=(1.0, 0.5),
                fontsize="small",
                markerscale=2,
            )
            for handle in legend.legend_handles:
                handle.set_alpha(1)
        else:
            points = ax.scatter(Z[:, 0], Z[:, 1], c=y, cmap="viridis", **style)
            ax.figure.colorbar(points, ax=ax, label="y")
    ax.set_xlabel("component 1")
    ax.set_ylabel("component 2")
    if title is not None:
        ax.set_title(title)
    return ax


# Drawn by skae._family_plots (one file per group of figures); public here.
from ._family_plots import plot_jacobian, plot_samples  # noqa: E402
