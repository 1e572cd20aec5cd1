"""Warnings and errors raised by skae."""


class VanishingGradientWarning(UserWarning):
    """The first layers' gradients are orders of magnitude below the last layers'.

    The first layers barely learn. The message names the remedies that fit the
    model; the user guide's :ref:`training` page explains them.
    """


class ExplodingGradientWarning(UserWarning):
    """Gradient norms grew very large, or training diverged and was restarted.

    The message names the remedies that fit the model; the user guide's
    :ref:`training` page explains them.
    """


class TrainingDivergedError(ValueError, FloatingPointError):
    """The loss stayed NaN or infinite after every allowed restart.

    A :class:`ValueError` (the hyperparameters do not suit the data) and a
    :class:`FloatingPointError`.
    """
