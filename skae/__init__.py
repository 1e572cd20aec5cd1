"""skae: a PyTorch autoencoder as a scikit-learn transformer."""

from . import metrics  # noqa: F401  (skae.metrics after `import skae`)
from ._estimator import AutoencoderTransformer
from ._variational import VariationalAutoencoderTransformer
from ._version import __version__
from .exceptions import (
    ExplodingGradientWarning,
    TrainingDivergedError,
    VanishingGradientWarning,
)
from .persistence import load, save

__all__ = [
    "AutoencoderTransformer",
    "ExplodingGradientWarning",
    "TrainingDivergedError",
    "VanishingGradientWarning",
    "VariationalAutoencoderTransformer",
    "__version__",
    "load",
    "save",
]
