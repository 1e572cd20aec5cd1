"""skorch callbacks that record how an autoencoder trains.

skae adds both to its net by itself; they work with any skorch net (the
gradient monitor with a module that has ``named_layers()``) and can be passed
to another net's ``callbacks``.
"""

from ._training.monitor import GradientMonitor, LearningRateMonitor

__all__ = ["GradientMonitor", "LearningRateMonitor"]
