"""Batched inference: encode, decode and score under ``torch.inference_mode``."""

import math

import numpy as np
import torch
from torch.func import functional_call

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def inference_fn(module, part, dtype):
    """Return a function running ``part`` of ``module`` in eval mode in ``dtype``.

    ``part`` is ``"encoder"``, ``"decoder"`` or ``"autoencoder"``. Float64
    input runs the module with float64 copies of its parameters and buffers
    (through :func:`torch.func.functional_call`; the module itself is not
    copied), so results do not depend on how rows are batched (float32 matmuls
    differ by ~1e-7 between batchings).
    """
    if module.training:  # fit leaves it in eval mode; walking it costs per call
        module.eval()
    target = module if part == "autoencoder" else getattr(module, part)
    dtype = torch.float64 if dtype == np.float64 else torch.float32
    # One known weight, not next(module.parameters()): walking the module
    # tree costs ~40 us per call when caches are cold after the matmuls.
    if module.encoder.out.weight.dtype == dtype:
        return target
    state = {
        name: tensor.to(dtype) if tensor.is_floating_point() else tensor
        for name, tensor in target.state_dict().items()
    }

    def run(x):
        return functional_call(target, state, (x,))

    return run


def _standardizer(mean, scale, compute, device):
    """Return ``f(x, out)`` writing ``(x - mean) / scale`` into ``out``.

    float32: one fused pass, ``x * (1 / scale) + (-mean / scale)`` with both
    factors computed in float64, when they fit in float32. Its rounding error
    is of the order of ``x``'s own (one ulp of ``x / scale``), as is rounding
    ``mean`` to float32 for a subtraction. float64 (or factors out of
    float32's range): subtract, then divide, in two passes over ``out``. The
    fused pass would cost float64 one ulp of ``mean / scale`` rather than of
    the result, about 1e-10 for data like timestamps; float32 speed is what
    matters. The range test is done in numpy: a few torch calls on tiny
    tensors cost more than the pass saves.
    """
    if compute == torch.float32:
        with np.errstate(over="ignore", divide="ignore"):
            inv, shift = 1.0 / scale, mean / -scale
        if np.abs(inv).max() < _FLOAT32_MAX and np.abs(shift).max() < _FLOAT32_MAX:
            inv = torch.tensor(inv, dtype=compute, device=device)
            shift = torch.tensor(shift, dtype=compute, device=device)
            return lambda x, out: torch.addcmul(shift, x, inv, out=out)
    mean = torch.tensor(mean, dtype=compute, device=device)
    scale = torch.tensor(scale, dtype=compute, device=device)
    return lambda x, out: torch.sub(x, mean, out=out).div_(scale)


def infer(net, part, X, *, mean, scale, batch_size, on_non_finite=None):
    """Run ``part`` of ``net``'s module on ``X`` in input units, batch by batch.

    Standardization ``(X - mean) / scale`` and its inverse are applied to each
    batch on the device, in the compute dtype (``X``'s: float32 or float64),
    into one reused buffer. The output is preallocated with ``X``'s dtype
    (float64 for ``"score"``) and filled under ``torch.inference_mode``:
    memory beyond input and output is O(batch_size).

    Parameters
    ----------
    part : {"encoder", "decoder", "score"}
        ``"encoder"``: codes of ``X``; ``"decoder"``: reconstructions (input
        units) of codes ``X``; ``"score"``: minus each row's mean squared
        reconstruction error in input units.

    on_non_finite : callable or None
        With ``"encoder"`` or ``"score"``: called with no argument when a
        standardized batch holds NaN or inf (seen from its sum, taken while
        the batch is in cache: cheaper than a separate pass over ``X``). It
        should raise the user-facing error; if it returns (finite ``X`` whose
        standardized values overflow), checking stops. None: no check.

    Returns
    -------
    out : ndarray of shape (n_samples, n_out) or (n_samples,)
    """
    module, device = net.module_, net.device
    dtype = X.dtype
    compute = torch.float64 if dtype == np.float64 else torch.float32
    fn = inference_fn(module, "autoencoder" if part == "score" else part, dtype)
    n = X.shape[0]
    check, standardize = None, None
    if part == "decoder":
        n_out = module.decoder.out.out_features
        mean = torch.tensor(mean, dtype=compute, device=device)
        scale = torch.tensor(scale, dtype=compute, device=device)

        def step(z):
            return torch.addcmul(mean, fn(z), scale)

    else:
        check = on_non_finite
        standardize = _standardizer(mean, scale, compute, device)
        buffer = torch.empty(
            (min(n, batch_size), X.shape[1]), dtype=compute, device=device
        )

    if part == "encoder":
        n_out = module.encoder.out.out_features
        step = fn
    elif part == "score":
        n_out = None
        scale64 = torch.tensor(scale, dtype=torch.float64, device=device)

        def step(x):
            # float64 from here: squared errors of large-valued data overflow
            # float32 (values of 1e20 already do).
            error = (fn(x) - x).double().mul_(scale64)
            return error.square_().mean(dim=1).neg_()

    out = np.empty((n, n_out) if n_out else n, dtype=dtype if n_out else np.float64)
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            # Contiguous and writable: torch.from_numpy warns on read-only arrays.
            batch = np.require(X[start : start + batch_size], requirements=["C", "W"])
            x = torch.from_numpy(batch).to(device)
            if standardize is not None:
                x = standardize(x, buffer[: x.shape[0]])
            total = x.sum() if check is not None else None
            out[start : start + batch_size] = step(x).cpu().numpy()
            # Read after the copy, which waits for the device anyway: no
            # extra synchronization per batch on a GPU.
            if total is not None and not math.isfinite(total.item()):
                check()
                check = None
    return out


def scaled_error(net, X, standardize, max_rows=4096):
    """Mean squared reconstruction error of ``X`` in scaled units (eval mode).

    At most ``max_rows`` evenly spaced rows are standardized and used: an
    estimate, cheap next to an epoch and with no copy of ``X``, of the error
    without the penalties and dropout that the training loss includes.
    """
    rows = standardize(X[:: max(1, -(-X.shape[0] // max_rows))])
    x = torch.tensor(np.asarray(rows), dtype=torch.float32, device=net.device)
    net.module_.eval()
    with torch.inference_mode():
        error = (net.module_(x) - x).double().square().mean()
    return float(error)
