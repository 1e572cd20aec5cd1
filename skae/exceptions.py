"""Warnings and errors raised by skae."""


class VanishingGradientWarning(UserWarning):
    """The first layers' gradients are orders of magnitude below the last layers'.

    Raised by ``fit`` when, over the last epochs, the median ratio of the
    first layer's gradient norm to the last layer's is below
    :class:`~skae.callbacks.GradientMonitor`'s ``vanishing_ratio``: the first
    layers barely learn.

    Remedies: ``residual=True``, ``normalization="batch"`` or ``"layer"``, an
    activation that does not saturate (``"relu"``, ``"gelu"``, ``"selu"``), or
    fewer layers.
    """


class ExplodingGradientWarning(UserWarning):
    """Gradient norms grew very large or training diverged and was restarted.

    Remedies: ``max_grad_norm`` or ``clip_value``, a lower
    ``learning_rate_init``, normalization, or an adaptive solver (``"adam"``).
    """


class TrainingDivergedError(ValueError, FloatingPointError):
    """The loss stayed NaN or infinite after every allowed restart.

    It subclasses :class:`ValueError` (the hyperparameters do not suit the data)
    and :class:`FloatingPointError`.
    """
