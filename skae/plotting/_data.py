"""Figures of data and codes: samples next to their reconstructions, latent spaces."""

from numbers import Integral

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._common import _colormap, _image_shape, _new_axes, _pyplot

_MAX_CATEGORIES = 20


def _is_transformer(obj):
    """Return whether ``obj`` can reconstruct (``transform`` and its inverse)."""
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
    """Return the row title of the ``i``-th reconstruction."""
    if _is_transformer(reconstruction):
        return type(reconstruction).__name__
    return f"reconstruction {i + 1}"


def plot_reconstructions(
    X, *reconstructions, labels=None, image_shape=None, n_samples=8, axes=None
):
    """Show samples next to their reconstructions, one row per model.

    Read more in the :ref:`User Guide <diagnostics>`.

    Parameters
    ----------
    X : array-like of shape (n_samples_X, n_features)
        Original samples.
    *reconstructions : array-like of shape (n_samples_X, n_features) or \
            fitted transformer
        Reconstructions of ``X``, or fitted transformers such as PCA.
    labels : list of str, default=None
        Row titles; None uses the class name or ``"reconstruction 1"``, ...
    image_shape : tuple of int, default=None
        Shape of one image. None infers a square if possible, else line plots.
    n_samples : int, default=8
        Number of samples (columns) shown; at most ``n_samples_X``.
    axes : array of matplotlib.axes.Axes, default=None
        Shape (1 + len(reconstructions), n_samples). None creates a new figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.

    Raises
    ------
    ValueError
        If a reconstruction, ``labels`` or ``axes`` does not match ``X``.

    See Also
    --------
    plot_latent : Scatter plot of a 2-D code.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.decomposition import PCA
    >>> from skae.plotting import plot_reconstructions
    >>> X, _ = load_digits(return_X_y=True)
    >>> fig = plot_reconstructions(X, PCA(n_components=8).fit(X), n_samples=5)
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
    """Scatter-plot the first two columns of a code, colored by label.

    Read more in the :ref:`User Guide <diagnostics>`.

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_components)
        Codes, e.g. the output of ``transform``.
    y : array-like of shape (n_samples,), default=None
        Labels; up to 20 distinct ints, strings or bools get a legend, else a colorbar.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw on. None creates a new figure.
    title : str, default=None
        Title of the axes.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The axes drawn on.

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
