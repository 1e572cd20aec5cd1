"""Figures of the family's features: Jacobian heat maps, samples of a VAE."""

from numbers import Integral

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._common import _grid, _image_shape, _pyplot

_COLUMNS = 8


def plot_jacobian(
    est, X, *, components=None, image_shape=None, axes=None, cmap="RdBu_r"
):
    """Heat maps of the encoder's Jacobian: which features move each code unit.

    Read more in the :ref:`User Guide <family>`.

    Parameters
    ----------
    est : fitted estimator with ``encoder_jacobian``
        Such as :class:`~skae.AutoencoderTransformer`.
    X : array-like of shape (n_samples, n_features)
        Rows at which the Jacobian is taken and averaged.
    components : list of int, default=None
        Code units to draw; None draws every unit.
    image_shape : tuple of int, default=None
        Shape of one image. None infers a square if possible, else a heat map.
    axes : array of matplotlib.axes.Axes, default=None
        One axes per unit for images, one for a heat map. None creates a figure.
    cmap : str, default="RdBu_r"
        A diverging colormap.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure; its last axes is the colorbar.

    Raises
    ------
    TypeError
        If ``est`` has no ``encoder_jacobian``.
    ValueError
        If ``components`` or ``axes`` does not match the code.

    See Also
    --------
    skae.AutoencoderTransformer.encoder_jacobian : The Jacobians drawn here.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoencoderTransformer
    >>> from skae.plotting import plot_jacobian
    >>> X, _ = load_digits(return_X_y=True)
    >>> ae = AutoencoderTransformer(4, hidden_layer_sizes=(16,), max_iter=5).fit(X)
    >>> fig = plot_jacobian(ae, X[:100])
    >>> len(fig.axes)  # 4 maps and a colorbar
    5
    """
    if not hasattr(est, "encoder_jacobian"):
        raise TypeError(
            f"plot_jacobian needs a skae estimator with encoder_jacobian; got "
            f"{type(est).__name__}."
        )
    check_is_fitted(est)
    mean = est.encoder_jacobian(X).astype(np.float64).mean(axis=0)  # (k, p)
    n_components, n_features = mean.shape
    units = list(range(n_components)) if components is None else list(components)
    if not units or not all(
        isinstance(c, Integral) and 0 <= c < n_components for c in units
    ):
        raise ValueError(
            f"components={components!r} must list code units in [0, "
            f"{n_components - 1}] (n_components_={n_components})."
        )
    mean = mean[units]
    limit = float(np.abs(mean).max()) or 1.0
    style = {"cmap": cmap, "vmin": -limit, "vmax": limit, "interpolation": "nearest"}
    shape = _image_shape(image_shape, n_features)
    if shape is not None:
        fig, grid = _grid(len(units), axes, _COLUMNS, 1.4)
        for ax, unit, values in zip(grid, units, mean, strict=True):
            image = ax.imshow(values.reshape(shape), **style)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"unit {unit}", fontsize="small")
        fig.colorbar(image, ax=list(grid), shrink=0.8, label="d code / d feature")
        return fig
    if axes is None:
        fig, ax = _pyplot().subplots(
            figsize=(min(12, 2 + 0.25 * n_features), 1 + 0.4 * len(units))
        )
    else:
        ax = axes
        fig = ax.figure
    image = ax.imshow(mean, aspect="auto", **style)
    names = getattr(est, "feature_names_in_", None)
    if names is not None and n_features <= 40:
        ax.set_xticks(range(n_features), [str(n) for n in names], rotation=90)
    ax.set_yticks(range(len(units)), [f"unit {u}" for u in units])
    ax.set_xlabel("input feature")
    fig.colorbar(image, ax=ax, label="d code / d feature")
    return fig


def plot_samples(est, n_samples=16, *, random_state=None, image_shape=None, axes=None):
    """Show rows drawn from a variational autoencoder's prior, decoded.

    Read more in the :ref:`User Guide <family>`.

    Parameters
    ----------
    est : fitted estimator with ``sample``
        Such as :class:`~skae.VariationalAutoencoderTransformer`.
    n_samples : int, default=16
        Number of rows drawn (``est.sample(n_samples, random_state)``).
    random_state : int, RandomState instance or None, default=None
        Seeds the draws.
    image_shape : tuple of int, default=None
        Shape of one image. None infers a square if possible, else line plots.
    axes : array of matplotlib.axes.Axes, default=None
        ``n_samples`` axes to draw on. None creates a new figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.

    Raises
    ------
    TypeError
        If ``est`` has no ``sample`` method.

    See Also
    --------
    skae.VariationalAutoencoderTransformer.sample : The draws shown.
    plot_reconstructions : Rows next to their reconstructions.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import VariationalAutoencoderTransformer
    >>> from skae.plotting import plot_samples
    >>> X, _ = load_digits(return_X_y=True)
    >>> vae = VariationalAutoencoderTransformer(4, hidden_layer_sizes=(16,), max_iter=5)
    >>> fig = plot_samples(vae.fit(X), n_samples=8, random_state=0)
    >>> len(fig.axes)
    8
    """
    if not hasattr(est, "sample"):
        raise TypeError(
            f"plot_samples needs an estimator with a sample method, such as "
            f"VariationalAutoencoderTransformer; got {type(est).__name__}."
        )
    samples = est.sample(n_samples, random_state=random_state)
    shape = _image_shape(image_shape, samples.shape[1])
    fig, grid = _grid(len(samples), axes, _COLUMNS, 1.1)
    low, high = float(samples.min()), float(samples.max())
    for ax, row in zip(grid, samples, strict=True):
        if shape is not None:
            ax.imshow(
                row.reshape(shape),
                cmap="gray_r",
                vmin=low,
                vmax=high,
                interpolation="nearest",
            )
        else:
            ax.plot(row)
            ax.set_ylim(low - 0.05 * (high - low), high + 0.05 * (high - low))
        ax.set_xticks([])
        ax.set_yticks([])
    return fig
