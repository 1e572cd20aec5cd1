"""skae: a PyTorch autoencoder as a scikit-learn transformer."""

from . import metrics  # noqa: F401  (skae.metrics after `import skae`)
from ._estimator import AutoencoderTransformer
from ._variational import VariationalAutoencoderTransformer
from .exceptions import (
    ExplodingGradientWarning,
    TrainingDivergedError,
    VanishingGradientWarning,
)
from .persistence import load, save

__version__ = "0.1.0"

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
