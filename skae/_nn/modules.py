"""PyTorch modules: the encoder and decoder :class:`Stack` of the autoencoder.

With ``init="pca"`` each stack adds a linear layer ``pca``: ``z = P (x - m) + f(x)``,
``f`` starting at zero, so the model starts as PCA once ``anchor_to_pca`` sets P, m.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .layers import (
    ACTIVATIONS,
    BatchNorm1d,
    Dropout,
    InputMajorLinear,
    LayerNorm,
    Linear,
    RandomSource,
    TopK,
    linear,
)
from .noise import Corruption
from .tying import tie


class Block(nn.Module):
    """Hidden layer ``Linear -> [Norm] -> Activation -> [Dropout]``, or residual."""

    def __init__(
        self,
        n_in,
        n_out,
        *,
        activation,
        normalization=None,
        dropout=0.0,
        residual=False,
        init="random",
        generator=None,
        random=None,
    ):
        super().__init__()
        self.residual = residual
        self.linear = linear(
            n_in, n_out, init=init, activation=activation, generator=generator
        )
        width = n_in if residual else n_out
        if normalization == "batch":
            self.norm = BatchNorm1d(width)
        elif normalization == "layer":
            self.norm = LayerNorm(width)
        else:
            self.norm = None
        self.activation = ACTIVATIONS[activation]()
        random = random if random is not None else RandomSource()
        self.dropout = Dropout(dropout, random) if dropout > 0 else None
        if residual and n_in != n_out:
            self.proj = linear(
                n_in,
                n_out,
                init="xavier_uniform",
                activation="identity",
                generator=generator,
                bias=False,
            )
        else:
            self.proj = None

    def forward(self, x):
        if self.residual:
            h = self.activation(x if self.norm is None else self.norm(x))
            if self.dropout is not None:
                h = self.dropout(h)
            # The branch ends linear: its output stays centred at any depth.
            return (x if self.proj is None else self.proj(x)) + self.linear(h)
        h = self.linear(x)
        if self.norm is not None:
            h = self.norm(h)
        h = self.activation(h)
        return h if self.dropout is None else self.dropout(h)


class Stack(nn.Module):
    """Hidden blocks, a linear output layer, and with ``init="pca"`` a ``pca`` layer."""

    def __init__(
        self, sizes, *, out_name, out_activation, init, generator=None, **block_params
    ):
        super().__init__()
        anchored = init == "pca"
        if anchored:
            init = "random"
        self.blocks = nn.ModuleList(
            Block(n_in, n_out, init=init, generator=generator, **block_params)
            for n_in, n_out in zip(sizes[:-2], sizes[1:-1])
        )
        # It feeds the next stack or the loss: initialized for a linear map.
        self.out = linear(
            sizes[-2],
            sizes[-1],
            init="xavier_uniform" if init == "random" else init,
            activation="identity",
            generator=generator,
        )
        self.pca = None
        if anchored:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)
            # P is stored (n_components, n_features) in both stacks: the thin
            # dimension first keeps the skip's gradients on BLAS's fast path.
            if out_name == "code":  # the encoder: P (x - m)
                self.pca = Linear(sizes[0], sizes[-1], bias=False)
                nn.init.zeros_(self.pca.weight)
            else:  # the decoder: m + P^T z
                self.pca = InputMajorLinear(sizes[0], sizes[-1])
        self.out_activation = ACTIVATIONS[out_activation]()
        self.out_name = out_name

    def hidden(self, x):
        """Return the last hidden layer's output (``x`` without hidden layers)."""
        for block in self.blocks:
            x = block(x)
        return x

    def pre_activation(self, x):
        """Return the output layer's value before ``out_activation``."""
        h = self.hidden(x)
        if self.pca is None:
            return self.out(h)
        # The skip carries the output layer's bias (PCA's -P m, or m), and
        # one GEMM adds the hidden path onto it: no separate sum of
        # (rows x outputs), no bias of its own, so the PCA start costs little.
        if isinstance(self.pca, InputMajorLinear):
            skip = torch.addmm(self.out.bias, x, self.pca.matrix())
        else:
            skip = F.linear(x, self.pca.weight, self.out.bias)
        return torch.addmm(skip, h, self.out.weight.t())

    def forward(self, x):
        return self.out_activation(self.pre_activation(x))

    def named_layers(self, prefix):
        """Yield ``(name, module)`` for each block, in forward order."""
        for i, block in enumerate(self.blocks):
            yield f"{prefix}.{i}", block
        yield f"{prefix}.{self.out_name}", self.out


@dataclass
class Output:
    """What one pass of :meth:`Autoencoder.parts` produced, for the loss terms.

    Attributes
    ----------
    code : Tensor of shape (n_rows, n_components)
    logits : Tensor of shape (n_rows, n_features)
        The decoder's output before ``activation``.
    activation : nn.Module
    vjp : callable or None
        With ``jacobian=True``, ``vjp(v)`` is ``(v^T dcode/dinput,)``.
    log_var : Tensor of shape (n_rows, n_components) or None
        Variational models: the posterior's log-variance (``code`` its mean).
    """

    code: torch.Tensor
    logits: torch.Tensor
    activation: nn.Module
    vjp: Callable = None
    log_var: torch.Tensor = None

    @property
    def reconstruction(self):
        return self.activation(self.logits)


class Autoencoder(nn.Module):
    """Mirrored encoder/decoder; parameters as ``AutoencoderTransformer``'s."""

    def __init__(
        self,
        n_features,
        n_components,
        hidden_layer_sizes=(),
        *,
        activation="relu",
        output_activation="identity",
        normalization=None,
        dropout=0.0,
        residual=False,
        init="random",
        noise=None,
        noise_level=0.0,
        tied_weights=False,
        n_nonzero_coefs=None,
        random_state=None,
    ):
        super().__init__()
        hidden = [int(h) for h in hidden_layer_sizes]
        generator = None
        if random_state is not None:
            # Weights drawn on the CPU are the same on every device.
            generator = torch.Generator().manual_seed(int(random_state))
        self.random = RandomSource(
            None if random_state is None else int(random_state) + 1
        )
        params = dict(
            activation=activation,
            normalization=normalization,
            dropout=dropout,
            residual=residual,
            init=init,
            generator=generator,
            random=self.random,
        )
        self.encoder = Stack(
            [n_features, *hidden, n_components],
            out_name="code",
            out_activation="identity",
            **params,
        )
        if n_nonzero_coefs is not None:  # a k-sparse code
            self.encoder.out_activation = TopK(n_nonzero_coefs)
        self.decoder = Stack(
            [n_components, *hidden[::-1], n_features],
            out_name="output",
            out_activation=output_activation,
            **params,
        )
        self.corruption = (
            Corruption(noise, noise_level, self.random) if noise is not None else None
        )
        if tied_weights:
            tie(self.encoder, self.decoder)
            first = self.decoder.blocks[0] if len(self.decoder.blocks) else None
            if init == "pca" and first is not None and first.proj is not None:
                # Untied (the code has no skip path): zero, so it adds nothing at first.
                nn.init.zeros_(first.proj.weight)

    def corrupt(self, x):
        """The encoder's input: ``x``, corrupted in training mode with ``noise``."""
        return x if self.corruption is None else self.corruption(x)

    def forward(self, x):
        return self.decoder(self.encoder(self.corrupt(x)))

    def parts(self, x, jacobian=False):
        """Return the :class:`Output` of one pass (with ``vjp`` if ``jacobian``)."""
        x = self.corrupt(x)
        vjp = None
        if jacobian:
            code, vjp = torch.func.vjp(self.encoder, x)
        else:
            code = self.encoder(x)
        return Output(
            code, self.decoder.pre_activation(code), self.decoder.out_activation, vjp
        )

    def named_layers(self):
        """Yield ``(name, module)`` per layer, input to output (PCA layers mid-way)."""
        yield from self.encoder.named_layers("encoder")
        for name, stack in (("encoder", self.encoder), ("decoder", self.decoder)):
            # A tied decoder's P is the encoder's: no parameter of its own.
            if stack.pca is not None and any(True for _ in stack.pca.parameters()):
                yield f"{name}.pca", stack.pca
        yield from self.decoder.named_layers("decoder")

    def depth_span(self):
        """Names of the two layers the vanishing-gradient check compares."""
        layers = [name for name, _ in self.named_layers()]
        if self.encoder.pca is not None:
            # Encoder hidden layers: both gradients pass its zero-started output.
            return layers[0], layers[max(len(self.encoder.blocks) - 1, 0)]
        return layers[0], layers[-1]

    @property
    def vanishing_grace(self):
        """Epochs the vanishing-gradient check skips (1 with ``init="pca"``)."""
        return 1 if self.encoder.pca is not None else 0

    def weights(self):
        """Return the weight matrices ``alpha`` and ``l1`` act on (tied ones once)."""
        return [
            m.weight
            for m in self.modules()
            if isinstance(m, nn.Linear)
            or (isinstance(m, InputMajorLinear) and m.source is None)
        ]

    def decayed_weights(self):
        """Return the weight matrices ``alpha`` decays."""
        if self.encoder.pca is None:
            return self.weights()
        # Not encoder blocks: no other gradient until the zero-started output moves.
        spared = {id(p) for p in self.encoder.blocks.parameters()}
        return [w for w in self.weights() if id(w) not in spared]


def layer_parameter_groups(module):
    """Return ``(names, params, index)``: layers, trainable parameters, layer index."""
    names, params, index = [], [], []
    for i, (name, layer) in enumerate(module.named_layers()):
        names.append(name)
        for p in layer.parameters():
            if p.requires_grad:
                params.append(p)
                index.append(i)
    return names, params, torch.tensor(index, dtype=torch.long)
