"""Jacobians of the fitted encoder and decoder, in input units, batch by batch.

Rows do not interact in eval mode, so one pass over a batch gives every
row's Jacobian at once: the encoder's by reverse mode (:func:`torch.func.vjp`
mapped with :func:`torch.func.vmap` over the ``n_components`` unit vectors of
the code), the decoder's by Jacobian-vector products with the unit vectors of
its input, the code (see :func:`_jacobian_products`). Both cost about
``n_components`` passes per batch, whatever ``n_features``.

The scaling is part of the map: the encoder reads ``(x - mean_) / scale_``
and the decoder's output is multiplied by ``scale_`` (plus ``mean_``), so the
Jacobians are divided, or multiplied, by ``scale_`` along the input features.
"""

import numpy as np
import torch

from ._inference import BATCH_ELEMENTS, inference_fn


def batch_rows(n_components, width):
    """Rows per batch: the batch's Jacobians hold about 2**19 numbers."""
    return max(1, BATCH_ELEMENTS // max(n_components * width, 1))


def jacobian(module, part, X, *, scaling, device, copies, batch_size=None):
    """Return the Jacobian of ``part`` at each row of ``X``, in input units.

    Parameters
    ----------
    module : Autoencoder
        The fitted module; float64 ``X`` runs its float64 copy.
    part : {"encoder", "decoder"}
        ``"encoder"``: ``X`` holds input rows, the result has shape
        ``(n_samples, n_components, n_features)``; ``"decoder"``: ``X`` holds
        codes, the result has shape ``(n_samples, n_features, n_components)``.
    X : ndarray of shape (n_samples, n_features or n_components)
        float32 or float64, finite.
    scaling : Scaling
    device : torch.device or str
    copies : Float64Copies
    batch_size : int or None
        Rows per batch; None: :func:`batch_rows`, about 2**19 numbers of
        Jacobian per batch (memory beyond the output stays a few batches).

    Returns
    -------
    J : ndarray with ``X``'s dtype
    """
    dtype = X.dtype
    compute = torch.float64 if dtype == np.float64 else torch.float32
    fn = inference_fn(module, part, dtype, copies)
    n = X.shape[0]
    n_features = len(scaling.mean_)
    n_components = X.shape[1] if part == "decoder" else fn.out.out_features
    scale = torch.as_tensor(scaling.scale_, dtype=compute, device=device)
    batch_size = batch_size or batch_rows(n_components, n_features)
    if part == "encoder":
        standardize = scaling.standardizer(compute, device)
        shape = (n, n_components, n_features)
    else:
        shape = (n, n_features, n_components)
    out = np.empty(shape, dtype=dtype)
    eye = torch.eye(n_components, dtype=compute, device=device)
    # torch.func's transforms run under no_grad (they ignore an outer one);
    # inference_mode would forbid them. no_grad keeps the weights out of it.
    with torch.no_grad():
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            batch = np.require(X[start : start + m], requirements=["C", "W"])
            x = torch.from_numpy(batch).to(device=device, dtype=compute)
            basis = eye.unsqueeze(1).expand(n_components, m, n_components)
            if part == "encoder":
                _, vjp = torch.func.vjp(fn, standardize(x))
                (rows,) = torch.func.vmap(vjp)(basis)  # (k, m, features)
                J = rows.permute(1, 0, 2) / scale
            else:
                columns = _jacobian_products(fn, x, basis)  # (k, m, features)
                J = columns.permute(1, 2, 0) * scale[:, None]
            out[start : start + m] = J.cpu().numpy()
    return out


def _jacobian_products(fn, x, tangents):
    """Return ``J @ t`` for each ``t`` of ``tangents``, ``J`` the Jacobian of ``fn``.

    Forward mode by two reverse passes: ``u -> J^T u`` is linear, so the
    product of its own transpose with ``t`` is ``J t``, exactly. (torch's
    forward mode, :func:`torch.func.jvp`, compiles decompositions with
    TorchScript on first use: seconds, and a DeprecationWarning.)
    """
    out, vjp = torch.func.vjp(fn, x)
    _, vjp_of_vjp = torch.func.vjp(vjp, torch.zeros_like(out))
    (products,) = torch.func.vmap(vjp_of_vjp)((tangents,))
    return products
