"""PyTorch modules: the encoder and decoder stacks of the autoencoder.

An :class:`Autoencoder` is a pair of :class:`Stack` objects. A stack is a list
of blocks; a block is ``Linear -> [Norm] -> Activation -> [Dropout]``, or a
pre-activation residual block with ``residual=True``. The last layer of each
stack (the code layer of the encoder, the output layer of the decoder) is a
plain linear map followed by the output activation (identity for the code).

Blocks are named ``encoder.0``, ``encoder.1``, ..., ``encoder.code`` and
``decoder.0``, ..., ``decoder.output``; these names key the per-layer gradient
norms recorded during training.

With ``init="pca"`` each stack also holds a linear layer ``pca`` from its
input to its output, added to the stack's output: the encoder computes
``z = P (x - m) + f(x)`` and the decoder ``x_hat = m + P^T z + g(z)``, where
``f`` and ``g`` are the usual stacks, whose output layers start at zero.
:func:`skae._anchor.anchor_to_pca` sets ``P`` and ``m`` to PCA's components
and mean once the training rows are known, so that the untrained model *is*
PCA (named ``encoder.pca`` and ``decoder.pca``).

Every random draw comes from a generator the model owns, never from torch's
global one (see :mod:`skae._layers`): fits running at once in several
threads therefore neither share nor disturb any random state.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .layers import (
    ACTIVATIONS,
    BatchNorm1d,
    Dropout,
    LayerNorm,
    Linear,
    RandomSource,
    linear,
)
from .noise import Corruption
from .tying import tie


class Block(nn.Module):
    """One hidden layer: ``Linear -> [Norm] -> Activation -> [Dropout]``.

    With ``residual=True`` the block is a pre-activation residual block,
    ``skip(x) + Linear(Dropout(Activation(Norm(x))))``, where ``skip`` is the
    identity when the widths agree and a bias-free linear map otherwise. Ending
    the branch with a linear map keeps its output centred whatever the
    activation (a sigmoid branch would add about 0.5 per layer and make deep
    activations drift), so the skip path carries signal and gradient through
    any depth.
    """

    def __init__(
        self,
        n_in,
        n_out,
        *,
        activation,
        normalization=None,
        dropout=0.0,
        residual=False,
        init="auto",
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
            return (x if self.proj is None else self.proj(x)) + self.linear(h)
        h = self.linear(x)
        if self.norm is not None:
            h = self.norm(h)
        h = self.activation(h)
        return h if self.dropout is None else self.dropout(h)


class Stack(nn.Module):
    """A sequence of hidden blocks followed by one linear output block.

    With ``init="pca"`` the output layer starts at zero and a linear layer
    ``pca``, from the stack's input to its output, is added to it (its
    weights are set later, by :func:`skae._anchor.anchor_to_pca`); the
    hidden blocks are initialized as with ``init="auto"``.
    """

    def __init__(
        self, sizes, *, out_name, out_activation, init, generator=None, **block_params
    ):
        super().__init__()
        anchored = init == "pca"
        if anchored:
            init = "auto"
        self.blocks = nn.ModuleList(
            Block(n_in, n_out, init=init, generator=generator, **block_params)
            for n_in, n_out in zip(sizes[:-2], sizes[1:-1])
        )
        # The output layer feeds the next stack (or the loss), so it is
        # initialized for a linear map whatever the hidden activation.
        self.out = linear(
            sizes[-2],
            sizes[-1],
            init="xavier_uniform" if init == "auto" else init,
            activation="identity",
            generator=generator,
        )
        self.pca = Linear(sizes[0], sizes[-1]) if anchored else None
        for layer in (self.out, self.pca) if anchored else ():
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.out_activation = ACTIVATIONS[out_activation]()
        self.out_name = out_name

    def hidden(self, x):
        """Return the last hidden layer's output (``x`` without hidden layers)."""
        for block in self.blocks:
            x = block(x)
        return x

    def pre_activation(self, x):
        """Return the output layer's value before ``out_activation``."""
        h = self.out(self.hidden(x))
        return h if self.pca is None else self.pca(x) + h

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
        The decoder's output before its output activation.
    activation : nn.Module
        The output activation; ``reconstruction`` applies it to ``logits``.
    vjp : callable or None
    log_var : Tensor of shape (n_rows, n_components) or None
    """

    code: torch.Tensor
    logits: torch.Tensor
    activation: nn.Module
    #: With ``jacobian=True``: ``vjp(v)`` returns ``(v^T dcode/dinput,)``,
    #: the input being what the encoder read (after any corruption).
    vjp: Callable = None
    #: Variational models: log-variance of the posterior (``code`` is its mean).
    log_var: torch.Tensor = None

    @property
    def reconstruction(self):
        return self.activation(self.logits)


class Autoencoder(nn.Module):
    """Mirrored encoder/decoder pair.

    Parameters
    ----------
    n_features : int
        Width of the input and of the reconstruction.
    n_components : int
        Width of the code.
    hidden_layer_sizes : tuple of int
        Encoder widths; the decoder uses them in reverse order.
    activation, output_activation : str
        Keys of :data:`ACTIVATIONS`. ``output_activation`` is applied to the
        reconstruction; the code layer is always linear.
    normalization : {None, "batch", "layer"}
    dropout : float
    residual : bool
    init : str
        One of :data:`~skae._layers.INITS`. ``"pca"`` adds the PCA layers
        (see the module's docstring), zero until
        :func:`skae._anchor.anchor_to_pca` sets them.
    noise : {None, "gaussian", "mask"}
    noise_level : float
        Corruption of the encoder's input in training mode (see
        :class:`~skae._noise.Corruption`).
    tied_weights : bool
        Decoder layers use the transposed encoder weights (see
        :mod:`skae._tying`).
    random_state : int or None
        Seeds the weights (drawn on CPU, so the same on every device) and,
        through :attr:`random`, the dropout masks and the input noise. None
        draws from torch's global generator, as torch's own modules do.
    """

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
        init="auto",
        noise=None,
        noise_level=0.0,
        tied_weights=False,
        random_state=None,
    ):
        super().__init__()
        hidden = [int(h) for h in hidden_layer_sizes]
        generator = None
        if random_state is not None:
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
                # Untied (its mirror, the code layer, has no skip path), it
                # starts at zero like the stack's output layer: the decoder's
                # hidden path then adds nothing before the first step.
                nn.init.zeros_(first.proj.weight)

    def corrupt(self, x):
        """The encoder's input: ``x``, corrupted in training mode with ``noise``."""
        return x if self.corruption is None else self.corruption(x)

    def forward(self, x):
        return self.decoder(self.encoder(self.corrupt(x)))

    def parts(self, x, jacobian=False):
        """Return the :class:`Output` of one pass: the code and the logits.

        ``jacobian=True`` runs the encoder under :func:`torch.func.vjp`, so
        that the output's ``vjp`` gives products with the encoder's Jacobian
        (for the contractive term) from this same pass.
        """
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
        """Yield ``(name, module)`` for every layer, input to output.

        The PCA layers of ``init="pca"`` come between the two stacks.
        """
        yield from self.encoder.named_layers("encoder")
        for name, stack in (("encoder", self.encoder), ("decoder", self.decoder)):
            if stack.pca is not None:
                yield f"{name}.pca", stack.pca
        yield from self.decoder.named_layers("decoder")

    def depth_span(self):
        """Names of the layers the vanishing-gradient check compares.

        The network's first and last layers; with ``init="pca"``, the first
        and last hidden layers of the encoder: every gradient into them
        passes through the encoder's output layer, which starts at zero, a
        factor that cancels between them but not against the decoder.
        """
        layers = [name for name, _ in self.named_layers()]
        if self.encoder.pca is not None:
            return layers[0], layers[max(len(self.encoder.blocks) - 1, 0)]
        return layers[0], layers[-1]

    @property
    def vanishing_grace(self):
        """Epochs the vanishing-gradient check leaves out (1 with ``init="pca"``,
        whose encoder gets no gradient before its output layer has moved)."""
        return 1 if self.encoder.pca is not None else 0

    def weights(self):
        """Return the weight matrices: what ``alpha`` and ``l1`` act on.

        A tied weight is the encoder's and is listed once.
        """
        return [m.weight for m in self.modules() if isinstance(m, nn.Linear)]

    def decayed_weights(self):
        """Return the weight matrices ``alpha`` decays.

        All of them, except with ``init="pca"`` the encoder's hidden layers:
        they get no gradient until the encoder's output layer, which starts
        at zero, has moved, and meanwhile the decay alone would shrink them to
        nothing (Adam divides the decay's gradient by its own size; measured
        on a 256-feature manifold, the decayed encoder died within the first
        epoch).
        """
        if self.encoder.pca is None:
            return self.weights()
        spared = {id(p) for p in self.encoder.blocks.parameters()}
        return [w for w in self.weights() if id(w) not in spared]


def layer_parameter_groups(module):
    """Return layer names and, for each trainable parameter, its layer index.

    Returns
    -------
    names : list of str
    params : list of torch.nn.Parameter
    index : torch.LongTensor of shape (len(params),)
    """
    names, params, index = [], [], []
    for i, (name, layer) in enumerate(module.named_layers()):
        names.append(name)
        for p in layer.parameters():
            if p.requires_grad:
                params.append(p)
                index.append(i)
    return names, params, torch.tensor(index, dtype=torch.long)
