"""Input corruption for denoising autoencoders (``noise``, ``noise_level``).

Like dropout, :class:`Corruption` acts in training mode only; the loss still
compares with the clean batch.
"""

import torch
from torch import nn

#: Values of the ``noise`` parameter (None: no corruption).
NOISES = ("gaussian", "mask")


class Corruption(nn.Module):
    """Corrupt the rows in training mode; the identity in eval mode.

    ``kind="gaussian"`` adds ``level * N(0, 1)`` (scaled units); ``"mask"``
    zeroes each entry with probability ``level``, without rescaling. Draws
    come from ``source``, a :class:`~skae._nn.layers.RandomSource`.
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
