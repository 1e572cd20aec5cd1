"""Matplotlib figures for fitted autoencoders: training curves, gradient flow,
reconstructions, latent spaces, Jacobians and samples.

matplotlib is an optional dependency (``pip install skae[plot]``); it is
imported when one of these functions is called, never by ``import skae``.
"""

from ._data import plot_latent, plot_reconstructions
from ._family import plot_jacobian, plot_samples
from ._training import plot_gradient_flow, plot_history

__all__ = [
    "plot_gradient_flow",
    "plot_history",
    "plot_jacobian",
    "plot_latent",
    "plot_reconstructions",
    "plot_samples",
]
