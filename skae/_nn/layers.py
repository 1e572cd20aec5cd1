"""Layers of the stacks, seeded by the model and independent of the thread count."""

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

#: The random initializations; ``"random"`` is scaled to the activation.
INITS = (
    "random",
    "default",
    "kaiming_uniform",
    "kaiming_normal",
    "xavier_uniform",
    "xavier_normal",
    "lecun_normal",
    "orthogonal",
)


def _random_init(activation):
    """Return the initialization that keeps activations' scale for ``activation``."""
    if activation in ("relu", "leaky_relu", "elu", "gelu"):
        return "kaiming_uniform"
    if activation == "selu":
        return "lecun_normal"
    return "xavier_uniform"


class Linear(nn.Linear):
    """``nn.Linear`` without torch's initialization, which uses the global RNG."""

    def reset_parameters(self):
        pass


class InputMajorLinear(nn.Module):
    """``x @ weight``, no bias, ``weight`` stored ``(in_features, out_features)``.

    For a thin input (a code of a few columns), BLAS computes both gradients in
    its fast orientation; ``nn.Linear``'s ``(out, in)`` layout costs about 8
    times more there. With ``source`` (tied weights) ``weight`` is that
    layer's: no parameter of its own, nor a state-dict entry.
    """

    def __init__(self, in_features, out_features, source=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.__dict__["source"] = source  # not a submodule: it is the encoder's
        if source is None:
            self.weight = nn.Parameter(torch.zeros(in_features, out_features))

    def matrix(self):
        """The ``(in_features, out_features)`` matrix, own or tied."""
        return self.weight if self.source is None else self.source.weight

    def forward(self, x):
        return x @ self.matrix()


def linear(n_in, n_out, *, init, activation, generator=None, bias=True):
    """Return a :class:`Linear` initialized by :func:`init_linear`."""
    layer = Linear(n_in, n_out, bias=bias)
    init_linear(layer, init, activation, generator)
    return layer


def init_linear(layer, init, activation, generator=None):
    """Initialize ``layer`` from ``generator``; biases zero unless init is "default"."""
    weight, g = layer.weight, generator
    if init == "random":
        init = _random_init(activation)
    nonlinearity = "leaky_relu" if activation == "leaky_relu" else "relu"
    with torch.no_grad():
        if init == "default":
            nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=g)
            if layer.bias is not None:
                bound = 1 / math.sqrt(weight.shape[1]) if weight.shape[1] else 0
                nn.init.uniform_(layer.bias, -bound, bound, generator=g)
            return
        if init == "kaiming_uniform":
            nn.init.kaiming_uniform_(
                weight, a=0.01, nonlinearity=nonlinearity, generator=g
            )
        elif init == "kaiming_normal":
            nn.init.kaiming_normal_(
                weight, a=0.01, nonlinearity=nonlinearity, generator=g
            )
        elif init == "lecun_normal":
            nn.init.normal_(weight, std=1.0 / math.sqrt(weight.shape[1]), generator=g)
        elif init == "orthogonal":
            nn.init.orthogonal_(weight, gain=_gain(activation), generator=g)
        elif init == "xavier_normal":
            nn.init.xavier_normal_(weight, gain=_gain(activation), generator=g)
        else:
            nn.init.xavier_uniform_(weight, gain=_gain(activation), generator=g)
        if layer.bias is not None:
            layer.bias.zero_()


def _gain(activation):
    name = {"identity": "linear", "logistic": "sigmoid", "gelu": "relu"}.get(
        activation, activation
    )
    if name in ("elu", "leaky_relu"):
        return nn.init.calculate_gain("leaky_relu", 0.01)
    return nn.init.calculate_gain(name)


class RandomSource:
    """The seeded generator random layers draw from, on their device (None: global)."""

    def __init__(self, seed=None):
        self.seed = seed
        self.generator = None

    def get(self, device):
        """Return the generator for tensors on ``device`` (None: global)."""
        if self.seed is None:
            return None
        device = torch.device(device)
        if device.type == "cuda" and device.index is None:
            # "cuda" means the current device, which is where tensors go.
            device = torch.device("cuda", torch.cuda.current_device())
        generator = self.generator
        if generator is None or generator.device != device:
            generator = torch.Generator(device=device).manual_seed(self.seed)
            self.generator = generator
        return generator

    def __getstate__(self):
        g = self.generator
        state = None if g is None else (str(g.device), g.get_state())
        return {"seed": self.seed, "state": state}

    def __setstate__(self, state):
        self.seed, self.generator = state["seed"], None
        if state["state"] is not None:
            device, rng = state["state"]
            try:
                self.generator = torch.Generator(device=device)
                self.generator.set_state(rng)
            except RuntimeError:  # that device is not available here
                self.generator = None


class TopK(nn.Module):
    """Keep each row's ``k`` entries of largest magnitude; zero the others."""

    def __init__(self, k):
        super().__init__()
        self.k = k

    def forward(self, z):
        kth = z.abs().topk(self.k, dim=1).values[:, -1:]
        return z * (z.abs() >= kth)


class Dropout(nn.Module):
    """Dropout whose masks come from a :class:`RandomSource`, not the global RNG."""

    def __init__(self, p, source):
        super().__init__()
        self.p = p
        self.source = source

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        keep = 1.0 - self.p
        mask = torch.empty_like(x).bernoulli_(keep, generator=self.source.get(x.device))
        return x * mask.div_(keep)

    def extra_repr(self):
        return f"p={self.p}"


class BatchNorm1d(nn.BatchNorm1d):
    """``nn.BatchNorm1d`` in plain tensor operations: thread-count independent."""

    def forward(self, x):
        if not self.training:
            inv = torch.rsqrt(self.running_var + self.eps)
            return torch.addcmul(self.bias, (x - self.running_mean) * inv, self.weight)
        mean = x.mean(dim=0)
        centred = x - mean
        var = (centred * centred).mean(dim=0)
        with torch.no_grad():
            n = x.shape[0]
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var * (n / max(n - 1, 1)), self.momentum)
            self.num_batches_tracked.add_(1)
        return torch.addcmul(
            self.bias, centred * torch.rsqrt(var + self.eps), self.weight
        )


class LayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` over the last dimension: thread-count independent."""

    def forward(self, x):
        mean = x.mean(dim=-1, keepdim=True)
        centred = x - mean
        var = (centred * centred).mean(dim=-1, keepdim=True)
        return torch.addcmul(
            self.bias, centred * torch.rsqrt(var + self.eps), self.weight
        )
