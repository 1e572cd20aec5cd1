"""Batched inference: encode, decode and score under ``torch.inference_mode``."""

import numpy as np
import torch
from torch.func import functional_call


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
    if next(module.parameters()).dtype == dtype:
        return target
    state = {
        name: tensor.to(dtype) if tensor.is_floating_point() else tensor
        for name, tensor in target.state_dict().items()
    }

    def run(x):
        return functional_call(target, state, (x,))

    return run


def infer(net, part, X, *, mean, scale, batch_size):
    """Run ``part`` of ``net``'s module on ``X`` in input units, batch by batch.

    Standardization ``(X - mean) / scale`` and its inverse are applied to each
    batch on the device, in the compute dtype (``X``'s: float32 or float64).
    The output is preallocated with ``X``'s dtype (float64 for ``"score"``)
    and runs under
    ``torch.inference_mode``: memory beyond input and output is
    O(batch_size).

    Parameters
    ----------
    part : {"encoder", "decoder", "score"}
        ``"encoder"``: codes of ``X``; ``"decoder"``: reconstructions (input
        units) of codes ``X``; ``"score"``: minus each row's mean squared
        reconstruction error in input units.

    Returns
    -------
    out : ndarray of shape (n_samples, n_out) or (n_samples,)
    """
    module, device = net.module_, net.device
    dtype = X.dtype
    compute = torch.float64 if dtype == np.float64 else torch.float32
    fn = inference_fn(module, "autoencoder" if part == "score" else part, dtype)
    mean = torch.as_tensor(mean, dtype=compute, device=device)
    scale = torch.as_tensor(scale, dtype=compute, device=device)
    if part == "encoder":
        n_out = module.encoder.out.out_features

        def step(x):
            return fn((x - mean) / scale)

    elif part == "decoder":
        n_out = module.decoder.out.out_features

        def step(z):
            return torch.addcmul(mean, fn(z), scale)

    else:
        n_out = None

        scale64 = scale.double()

        def step(x):
            x = (x - mean) / scale
            # float64 from here: squared errors of large-valued data overflow
            # float32 (values of 1e20 already do).
            error = (fn(x) - x).double().mul_(scale64)
            return error.square_().mean(dim=1).neg_()

    n = X.shape[0]
    out = np.empty((n, n_out) if n_out else n, dtype=dtype if n_out else np.float64)
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            # Contiguous and writable: torch.from_numpy warns on read-only arrays.
            batch = np.require(X[start : start + batch_size], requirements=["C", "W"])
            result = step(torch.from_numpy(batch).to(device))
            out[start : start + batch_size] = result.cpu().numpy()
    return out
