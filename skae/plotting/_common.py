"""Helpers shared by the figures: matplotlib's lazy import, axes and image shapes."""

import math

import numpy as np


def _pyplot():
    """Return ``matplotlib.pyplot``, or raise an ImportError saying how to get it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "skae.plotting needs matplotlib; install it with "
            "`pip install skae[plot]` or `pip install matplotlib`."
        ) from exc
    return plt


def _colormap(cmap):
    """Return the colormap named ``cmap`` (or ``cmap`` itself if a Colormap)."""
    _pyplot()
    import matplotlib

    return matplotlib.colormaps.get_cmap(cmap)


def _new_axes(ax):
    """Return ``ax``, or the axes of a new figure when ``ax`` is None."""
    if ax is None:
        _, ax = _pyplot().subplots()
    return ax


def _image_shape(image_shape, n_features):
    """Return one image's shape (None: a square if possible), or None if no image."""
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


def _grid(n, axes, n_cols, size):
    """Return ``(fig, axes)``: a new grid of ``n`` axes, or ``axes`` checked."""
    n_cols = min(n, n_cols)
    n_rows = math.ceil(n / n_cols)
    if axes is None:
        fig, axes = _pyplot().subplots(
            n_rows,
            n_cols,
            figsize=(size * n_cols + 0.8, size * n_rows + 0.5),
            squeeze=False,
            layout="constrained",
        )
        for ax in axes.flat[n:]:
            ax.set_visible(False)
        return fig, axes.flat[:n]
    axes = np.asarray(axes, dtype=object).ravel()
    if axes.size != n:
        raise ValueError(f"axes holds {axes.size} axes; {n} are needed, one per plot.")
    return axes[0].figure, axes
