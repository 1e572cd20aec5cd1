"""Tied weights: decoder layers that use the transpose of an encoder weight.

With ``tied_weights=True`` every linear layer of the decoder is a
:class:`TiedLinear` reading the weight of its mirrored encoder layer,
transposed, and keeping a bias of its own. The mirror of the decoder's first
layer is the encoder's code layer, that of the decoder's output layer the
encoder's first layer, and so on inwards. In residual blocks the bias-free
skip projections are tied the same way where both mirrored blocks have one;
the first decoder block mirrors the code layer, which has no skip path, so
its projection (present when its widths differ) keeps a weight of its own.

The shared weight is a parameter of the encoder only: it appears once in
``parameters()`` (so once in the optimizer and in the weight penalties), the
state dict holds it under the encoder's key, and the decoder layer's entries
are its bias (and its normalization parameters).
"""

from torch import nn
from torch.nn import functional as F


class TiedLinear(nn.Module):
    """``x @ source.weight + bias``: a linear map tied to ``source``, transposed.

    ``source`` is not registered as a submodule (it belongs to the encoder):
    moving or converting the encoder moves the weight this layer reads.

    Parameters
    ----------
    source : nn.Linear
        The mirrored encoder layer.
    bias : nn.Parameter or None
        This layer's own bias, of width ``source.in_features``.
    """

    def __init__(self, source, bias):
        super().__init__()
        self.__dict__["source"] = source
        self.bias = bias
        self.in_features = source.out_features
        self.out_features = source.in_features

    @property
    def weight(self):
        """The transposed weight of ``source`` (a view, not a parameter)."""
        return self.source.weight.t()

    def forward(self, x):
        return F.linear(x, self.source.weight.t(), self.bias)

    def extra_repr(self):
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, tied to the encoder"
        )


def mirrored_pairs(encoder, decoder):
    """Yield ``(owner, attribute, encoder_layer)`` for each decoder layer to tie.

    ``getattr(owner, attribute)`` is the decoder's linear layer (a block's
    ``linear`` or ``proj``, or the stack's ``out``); ``encoder_layer`` the
    ``nn.Linear`` whose transpose it becomes.
    """
    enc = [block.linear for block in encoder.blocks] + [encoder.out]
    enc_proj = [block.proj for block in encoder.blocks] + [None]
    dec = [(block, "linear") for block in decoder.blocks] + [(decoder, "out")]
    dec_proj = [block for block in decoder.blocks] + [None]
    if encoder.pca is not None and decoder.pca is not None:
        # init="pca": the decoder's P^T is the encoder's P, transposed.
        yield decoder, "pca", encoder.pca
    n = len(enc)
    for i, (owner, attribute) in enumerate(dec):
        yield owner, attribute, enc[n - 1 - i]
        block, source = dec_proj[i], enc_proj[n - 1 - i]
        if block is not None and block.proj is not None and source is not None:
            yield block, "proj", source


def tie(encoder, decoder):
    """Replace the decoder's linear layers by :class:`TiedLinear` layers, in place."""
    for owner, attribute, source in mirrored_pairs(encoder, decoder):
        setattr(owner, attribute, TiedLinear(source, getattr(owner, attribute).bias))
