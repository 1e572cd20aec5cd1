"""skae: a PyTorch autoencoder as a scikit-learn transformer."""

from ._estimator import AutoencoderTransformer
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
    "__version__",
    "load",
    "save",
]
