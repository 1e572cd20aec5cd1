"""Input corruption for denoising autoencoders (``noise``, ``noise_level``).

:class:`Corruption` sits at the encoder's input, like dropout: in training
mode it corrupts each batch the encoder reads (the loss still compares the
reconstruction with the clean batch), in eval mode it passes its input
through. Validation, ``transform`` and the scores therefore see clean data.
Its draws come from the module's :class:`~skae._layers.RandomSource`, never
from torch's global generator.
"""

import torch
from torch import nn

#: Values of the ``noise`` parameter (None: no corruption).
NOISES = ("gaussian", "mask")


class Corruption(nn.Module):
    """Corrupt the rows in training mode; the identity in eval mode.

    Parameters
    ----------
    kind : {"gaussian", "mask"}
        ``"gaussian"`` adds ``level * N(0, 1)`` noise to every entry (so
        ``level`` is a standard deviation in the network's scaled units);
        ``"mask"`` sets each entry to 0 with probability ``level`` (with
        skae's default scaling, 0 is the feature's mean), without rescaling
        the entries kept.
    level : float
        Standard deviation (``"gaussian"``) or drop probability (``"mask"``).
    source : RandomSource
        Where the draws come from.
    """

    def __init__(self, kind, level, source):
        super().__init__()
        if kind not in NOISES:
            raise ValueError(f"noise must be one of {NOISES}; got {kind!r}.")
        self.kind = kind
        self.level = float(level)
        self.source = source

    def forward(self, x):
        if not self.training or self.level == 0:
            return x
        generator = self.source.get(x.device)
        if self.kind == "gaussian":
            noise = torch.empty_like(x).normal_(generator=generator)
            return torch.add(x, noise, alpha=self.level)
        keep = torch.empty_like(x).bernoulli_(1.0 - self.level, generator=generator)
        return x * keep

    def extra_repr(self):
        return f"kind={self.kind!r}, level={self.level}"
