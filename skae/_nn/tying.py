"""Tied weights: decoder layers that use the transpose of an encoder weight.

With ``tied_weights=True`` each decoder linear layer (and skip projection whose
mirror has one) is a :class:`TiedLinear` reading its mirrored encoder layer's
weight, with a bias of its own. The weight belongs to the encoder only: once in
``parameters()``, the optimizer, the penalties and the state dict.
"""

from torch import nn
from torch.nn import functional as F

from .layers import InputMajorLinear


class TiedLinear(nn.Module):
    """``x @ source.weight + bias``: a linear map tied to ``source``, transposed.

    ``source``, the mirrored encoder layer, is not a submodule: it moves with
    the encoder. ``bias`` is this layer's own.
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
    """Yield ``(owner, attribute, encoder_layer)`` for each decoder layer to tie."""
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
        layer = getattr(owner, attribute)
        if isinstance(layer, InputMajorLinear):  # P, stored as the encoder's
            tied = InputMajorLinear(layer.in_features, layer.out_features, source)
        else:
            tied = TiedLinear(source, layer.bias)
        setattr(owner, attribute, tied)
