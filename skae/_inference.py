"""Batched inference: encode, decode, score and differentiate the fitted model.

The module runs in float32, its training dtype, whatever the input's: float64
input is standardized in float64, rounded to float32 for the module, and codes,
reconstructions and errors come back as float64. Batches are padded (see
:data:`MIN_ROWS`) so that, on the CPU with 1 or 2 threads, a row's result does
not depend on how rows are batched. Jacobians of float64 input and the VAE's
ELBO run a float64 copy of the module. Inference never changes the fitted
model, so several threads may use it at once.
"""

import copy
import math

import numpy as np
import torch
from sklearn import get_config
from sklearn.utils import assert_all_finite

from ._data.rows import MIN_BATCH_ROWS
from ._data.scaling import scan
from ._devices import copy_into, float64_device, move
from ._runtime import num_threads

#: Inference batches hold about this many elements (2 MB of float32 rows): a
#: standardized batch is still in cache when the first layer reads it.
BATCH_ELEMENTS = 2**19

#: Batches are padded with zero rows to at least this many rows, and to a
#: multiple of ``ROW_MULTIPLE``: torch's CPU matrix products pick their kernel
#: by the number of rows, and small batches round differently. The padding
#: makes a row's result the same bits in any batch with 1 or 2 threads.
MIN_ROWS = MIN_BATCH_ROWS
ROW_MULTIPLE = 8


def padded_rows(m):
    """Rows a batch of ``m`` rows is padded to (see ``MIN_ROWS``)."""
    return max(MIN_ROWS, -(-m // ROW_MULTIPLE) * ROW_MULTIPLE)


def float64_module(module):
    """A float64 eval-mode copy of ``module`` (on the CPU for MPS)."""
    device = float64_device(next(module.parameters()).device)
    return copy.deepcopy(module).to(device).double().eval()


def inference_fn(module, part, dtype):
    """The module's ``part`` in eval mode (float64 ``dtype``: a float64 copy)."""
    if dtype == np.float64:
        module = float64_module(module)
    elif any(m.training for m in module.modules()):
        module.eval()
    return module if part == "autoencoder" else getattr(module, part)


def batch_rows(width, *, at_least=256, multiple=ROW_MULTIPLE):
    """Rows per batch of ``width``-wide rows: about ``BATCH_ELEMENTS`` numbers."""
    return max(at_least, BATCH_ELEMENTS // max(width, 1)) // multiple * multiple


def infer(
    module,
    part,
    X,
    *,
    scaling,
    device,
    n_threads=None,
    estimator_name=None,
    standardized=None,
    batch_size=None,
):
    """Run ``part`` of ``module`` on ``X`` in input units, batch by batch.

    Memory beyond input and output is a few batches of about 2 MB. NaN and
    infinity are seen from each standardized batch's sum (no separate pass)
    and reported with scikit-learn's message, unless ``assume_finite``.

    Parameters
    ----------
    module : Autoencoder
        In eval mode.
    part : {"encoder", "decoder", "score", "error", "feature_error"}
        Codes of ``X``; reconstructions of codes ``X``; minus or plus each
        row's mean squared error in input units; each entry's squared error.
    standardized : Tensor or None
        ``X`` already standardized on the device (float32, ``"encoder"``).
    batch_size : int or None
        Rows per batch; None: :func:`batch_rows` of the widest rows.

    Returns
    -------
    out : ndarray of shape (n_samples, n_out) or (n_samples,)
        With ``X``'s dtype; float64 for the errors and scores.
    """
    dtype = X.dtype
    # float64 input is standardized (and its errors taken) in float64 around
    # the float32 module, on ``host``: the device, or the CPU for MPS.
    compute = torch.float32
    exact = torch.float64 if dtype == np.float64 else torch.float32
    host = float64_device(device)
    errors = part in ("score", "error", "feature_error")
    fn = inference_fn(module, "autoencoder" if errors else part, np.float32)
    n, width = X.shape
    batch_size = batch_size or batch_rows(max(width, len(scaling.mean_)))
    check = None
    if part != "decoder" and not get_config()["assume_finite"]:

        def check():  # raises if X holds NaN or infinity
            if isinstance(X, np.ndarray):
                assert_all_finite(X, input_name="X", estimator_name=estimator_name)
            else:  # read in chunks, never whole
                scan(X, estimator_name=estimator_name)

    rows = padded_rows(min(n, batch_size))
    buffer = torch.empty((rows, width), dtype=compute, device=device)
    # float64 input: its standardized rows, before rounding to float32.
    staged = buffer
    if exact != compute:
        staged = torch.empty((rows, width), dtype=exact, device=host)
    if part == "decoder":
        destandardize = scaling.destandardizer(exact, host)
        n_out = len(scaling.mean_)

        def step(x, _):
            return destandardize(move(fn(x), host, exact))

    else:
        standardize = scaling.standardizer(exact, staged.device)

    if part == "encoder":
        n_out = fn.out.out_features

        def step(x, _):
            return fn(x)

    elif errors:
        n_out = width if part == "feature_error" else None
        scale64 = torch.tensor(scaling.scale_, dtype=torch.float64, device=host)

        def step(x, target):
            # float64 from here: squared errors of large-valued data overflow
            # float32 (values of 1e20 already do).
            if exact == compute:
                error = move(fn(x) - target, host, torch.float64)
            else:
                error = move(fn(x), host, torch.float64) - target
            error = error.mul_(scale64).square_()
            if part == "feature_error":
                return error
            error = error.mean(dim=1)
            return error.neg_() if part == "score" else error

    out = np.empty((n, n_out) if n_out else n, dtype=np.float64 if errors else dtype)
    out_t = torch.from_numpy(out)
    x_finite = False  # whether check() found X itself finite
    with num_threads(n_threads), torch.inference_mode():
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            x = buffer[: padded_rows(m)]
            x[m:].zero_()
            if standardized is not None:
                x[:m].copy_(standardized[start : start + m])
            else:
                # Contiguous and writable: torch.from_numpy warns on read-only
                # arrays.
                batch = np.require(X[start : start + m], requirements=["C", "W"])
                source = torch.from_numpy(batch)
                if part == "decoder":
                    copy_into(x[:m], source)
                else:
                    standardize(source.to(staged.device), out=staged[:m])
                    if staged is not buffer:
                        copy_into(x[:m], staged[:m])
            # The float32 batch: float64 values beyond float32's range are
            # infinite here.
            total = x[:m].sum() if check is not None else None
            # Converts what autocast may have computed in a lower precision
            # to the output's dtype.
            copy_into(out_t[start : start + m], step(x, staged[: len(x)])[:m])
            # Read after the copy, which waits for the device anyway: no
            # extra synchronization per batch on a GPU.
            if total is not None and not math.isfinite(total.item()):
                if not x_finite:
                    check()  # raises if X holds NaN or infinity
                    x_finite = True
                # The sum can overflow where no value does.
                if not bool(torch.isfinite(x[:m]).all()):
                    raise ValueError(
                        "X has values too large for the network once "
                        "standardized (beyond float32's range, about 3.4e38, in "
                        "units of scale_). Rescale X, e.g. divide it by a large "
                        "constant, and fit again."
                    )
    return out


def jacobian(module, part, X, *, scaling, device, n_threads=None, batch_size=None):
    """Return the Jacobian of ``part`` at each row of ``X``, in input units.

    ``"encoder"``: of the codes by the rows ``X``, shape ``(n_samples,
    n_components, n_features)``, by reverse mode; ``"decoder"``: of the
    reconstructions by the codes ``X``, shape ``(n_samples, n_features,
    n_components)``, by Jacobian-vector products. float64 ``X`` runs a float64
    copy of the module; batches hold about 2**19 numbers of Jacobian.
    """
    dtype = X.dtype
    compute = torch.float64 if dtype == np.float64 else torch.float32
    if dtype == np.float64:  # where the float64 copy lives (CPU for MPS)
        device = float64_device(device)
    fn = inference_fn(module, part, dtype)
    n = X.shape[0]
    n_features = len(scaling.mean_)
    n_components = X.shape[1] if part == "decoder" else fn.out.out_features
    scale = torch.as_tensor(scaling.scale_, dtype=compute, device=device)
    batch_size = batch_size or batch_rows(
        n_components * n_features, at_least=1, multiple=1
    )
    if part == "encoder":
        standardize = scaling.standardizer(compute, device)
        shape = (n, n_components, n_features)
    else:
        shape = (n, n_features, n_components)
    out = np.empty(shape, dtype=dtype)
    eye = torch.eye(n_components, dtype=compute, device=device)
    # torch.func's transforms run under no_grad (they ignore an outer one);
    # inference_mode would forbid them. no_grad keeps the weights out of it.
    with num_threads(n_threads), torch.no_grad():
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
