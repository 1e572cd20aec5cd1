"""PyTorch modules: the encoder and decoder stacks of the autoencoder.

An :class:`Autoencoder` is a pair of :class:`Stack` objects. A stack is a list
of blocks; a block is ``Linear -> [Norm] -> Activation -> [Dropout]``, or a
pre-activation residual block with ``residual=True``. The last layer of each
stack (the code layer of the encoder, the output layer of the decoder) is a
plain linear map followed by the output activation (identity for the code).

Blocks are named ``encoder.0``, ``encoder.1``, ..., ``encoder.code`` and
``decoder.0``, ..., ``decoder.output``; these names key the per-layer gradient
norms recorded during training.
"""

import math

import torch
from torch import nn

ACTIVATIONS = {
    "identity": nn.Identity,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "selu": nn.SELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "logistic": nn.Sigmoid,  # scikit-learn's MLP name for the sigmoid
}

INITS = (
    "auto",
    "default",
    "kaiming_uniform",
    "kaiming_normal",
    "xavier_uniform",
    "xavier_normal",
    "lecun_normal",
    "orthogonal",
)


def _auto_init(activation):
    """Return the initialization that keeps activations' scale for ``activation``."""
    if activation in ("relu", "leaky_relu", "elu", "gelu"):
        return "kaiming_uniform"
    if activation == "selu":
        return "lecun_normal"
    return "xavier_uniform"


def _init_linear(linear, init, activation):
    """Initialize the weights of ``linear`` in place; biases start at zero."""
    if init == "default":
        return
    if init == "auto":
        init = _auto_init(activation)
    weight = linear.weight
    if init == "kaiming_uniform":
        nonlinearity = "leaky_relu" if activation == "leaky_relu" else "relu"
        nn.init.kaiming_uniform_(weight, a=0.01, nonlinearity=nonlinearity)
    elif init == "kaiming_normal":
        nonlinearity = "leaky_relu" if activation == "leaky_relu" else "relu"
        nn.init.kaiming_normal_(weight, a=0.01, nonlinearity=nonlinearity)
    elif init == "lecun_normal":
        nn.init.normal_(weight, std=1.0 / math.sqrt(weight.shape[1]))
    elif init == "orthogonal":
        nn.init.orthogonal_(weight, gain=_gain(activation))
    elif init == "xavier_normal":
        nn.init.xavier_normal_(weight, gain=_gain(activation))
    else:
        nn.init.xavier_uniform_(weight, gain=_gain(activation))
    if linear.bias is not None:
        nn.init.zeros_(linear.bias)


def _gain(activation):
    name = {"identity": "linear", "logistic": "sigmoid", "gelu": "relu"}.get(
        activation, activation
    )
    if name in ("elu", "leaky_relu"):
        return nn.init.calculate_gain("leaky_relu", 0.01)
    return nn.init.calculate_gain(name)


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
    ):
        super().__init__()
        self.residual = residual
        self.linear = nn.Linear(n_in, n_out)
        _init_linear(self.linear, init, activation)
        width = n_in if residual else n_out
        if normalization == "batch":
            self.norm = nn.BatchNorm1d(width)
        elif normalization == "layer":
            self.norm = nn.LayerNorm(width)
        else:
            self.norm = None
        self.activation = ACTIVATIONS[activation]()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        if residual and n_in != n_out:
            self.proj = nn.Linear(n_in, n_out, bias=False)
            nn.init.xavier_uniform_(self.proj.weight)
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
    """A sequence of hidden blocks followed by one linear output block."""

    def __init__(self, sizes, *, out_name, out_activation, init, **block_params):
        super().__init__()
        self.blocks = nn.ModuleList(
            Block(n_in, n_out, init=init, **block_params)
            for n_in, n_out in zip(sizes[:-2], sizes[1:-1])
        )
        self.out = nn.Linear(sizes[-2], sizes[-1])
        # The output layer feeds the next stack (or the loss), so it is
        # initialized for a linear map whatever the hidden activation.
        _init_linear(self.out, "xavier_uniform" if init == "auto" else init, "identity")
        self.out_activation = ACTIVATIONS[out_activation]()
        self.out_name = out_name

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.out_activation(self.out(x))

    def named_layers(self, prefix):
        """Yield ``(name, module)`` for each block, in forward order."""
        for i, block in enumerate(self.blocks):
            yield f"{prefix}.{i}", block
        yield f"{prefix}.{self.out_name}", self.out


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
        One of :data:`INITS`.
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
    ):
        super().__init__()
        hidden = [int(h) for h in hidden_layer_sizes]
        params = dict(
            activation=activation,
            normalization=normalization,
            dropout=dropout,
            residual=residual,
            init=init,
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

    def forward(self, x):
        return self.decoder(self.encoder(x))

    def named_layers(self):
        """Yield ``(name, module)`` for every layer, input to output."""
        yield from self.encoder.named_layers("encoder")
        yield from self.decoder.named_layers("decoder")

    def weights(self):
        """Return the weight matrices that the L1/L2 penalties act on."""
        return [m.weight for m in self.modules() if isinstance(m, nn.Linear)]


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
