"""Batched inference: encode, decode and score under ``torch.inference_mode``.

The fitted module runs in float32, its training dtype, whatever the input's:
float64 input is standardized in float64 (exact for data such as timestamps),
the standardized batch is rounded to float32 for the module, and codes,
reconstructions and errors come back as float64. Results do not depend on how
rows are batched on the CPU with 1 or 2 threads: rows do not interact in eval
mode, and batches are padded (see ``MIN_ROWS``) so that every row goes
through the same matrix kernel. With many threads, or on a GPU, whose
libraries also choose kernels by shape, a row may differ between batchings
in its last bits (~1e-7 relative). A float64 copy of the module
(:class:`Float64Copies`) serves what stays in float64: the Jacobians of
float64 input and the VAE's ELBO.

Inference never changes the fitted model, so several threads may transform
with one fitted model at once.
"""

import copy
import math
import threading

import numpy as np
import torch

from ._data import MIN_BATCH_ROWS
from ._devices import copy_into, float64_device, move

#: Inference batches hold about this many elements (2 MB of float32 rows), so
#: that a standardized batch is still in cache when the first layer reads it
#: (measured: 2048 rows of 256 features run ~3 % faster than 4096).
BATCH_ELEMENTS = 2**19

#: Batches are padded with zero rows to at least this many rows, and to a
#: multiple of ``ROW_MULTIPLE``, before the module runs. torch's CPU matrix
#: products pick their kernel by the number of rows: with 1 or 2 threads,
#: batches of 1 to 11 rows take other kernels than larger ones, which round
#: differently (~1e-7 relative). Rows do not interact in eval mode, so the
#: padding changes nothing but the kernel that runs, and a row's float32
#: result is then the same bits in any batch with 1 or 2 threads (tested: 1
#: to 300 rows, subsets, permutations, single rows). This is what lets
#: float64 input run the float32 module under sklearn's invariance checks.
#: With 16 or more threads some layer shapes also switch kernels at larger
#: sizes: multiples of 8 avoid some of those (sizes such as 17-19 and 25-27
#: rows), not all (with 4 or more threads, a 10-100-2 autoencoder rounds
#: batches of 16 and 300 rows differently, ~1e-7: a threading threshold).
MIN_ROWS = MIN_BATCH_ROWS
ROW_MULTIPLE = 8


def padded_rows(m):
    """Rows a batch of ``m`` rows is padded to (see ``MIN_ROWS``)."""
    return max(MIN_ROWS, -(-m // ROW_MULTIPLE) * ROW_MULTIPLE)


def _versions(module):
    """Version counters of every tensor of ``module``: they move on each write.

    Every in-place operation on a parameter or buffer moves its counter (an
    optimizer's step, ``load_state_dict``, ``weight.mul_(2)`` under
    ``torch.no_grad()``); a write through ``.data`` bypasses it.
    """
    return tuple(t._version for t in module.state_dict(keep_vars=True).values())


class Float64Copies:
    """A float64 copy of a module, made on first use and when its weights change.

    For what stays in float64: the Jacobians of float64 input and the VAE's
    ELBO. Holding the copy here, rather than converting the parameters at
    every call (or swapping them into the module, which another thread may be
    using), makes repeated float64 calls cheap and thread-safe. The copy is
    current with the module's weights as long as they change in place (see
    :func:`_versions`); after writes through ``.data``, which torch does not
    count, float64 results are those of the old weights. Pickles as empty:
    the copy is rebuilt after loading.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._entry = None

    def get(self, module):
        """Return the float64 eval-mode copy of ``module``, current with it.

        The copy lives on :func:`~skae._devices.float64_device` of the
        module's device (CPU for MPS, which has no float64).
        """
        versions = _versions(module)
        entry = self._entry
        if entry is None or entry[0] is not module or entry[1] != versions:
            with self._lock:
                device = float64_device(next(module.parameters()).device)
                module64 = copy.deepcopy(module).to(device).double().eval()
                entry = self._entry = (module, versions, module64)
        return entry[2]

    def __getstate__(self):
        return {}

    def __setstate__(self, state):
        self.__init__()

    def __deepcopy__(self, memo):
        return Float64Copies()


def inference_fn(module, part, dtype, copies):
    """Return the module part (``"encoder"``, ``"decoder"``, ``"autoencoder"``).

    float32: the fitted module itself, in eval mode (``fit`` leaves it so; a
    part a user put in training mode, e.g. ``encoder_.train()``, goes back to
    eval mode: inference never runs dropout or updates batch statistics);
    float64: its float64 copy from ``copies``.
    """
    if dtype == np.float64:
        module = copies.get(module)
    elif any(m.training for m in module.modules()):
        module.eval()
    return module if part == "autoencoder" else getattr(module, part)


def batch_rows(width):
    """Rows per inference batch for rows of ``width`` numbers (in or out)."""
    # A multiple of ROW_MULTIPLE: full batches need no padding.
    return max(256, BATCH_ELEMENTS // max(width, 1)) // ROW_MULTIPLE * ROW_MULTIPLE


def infer(
    module,
    part,
    X,
    *,
    scaling,
    device,
    on_non_finite=None,
    standardized=None,
    batch_size=None,
):
    """Run ``part`` of ``module`` on ``X`` in input units, batch by batch.

    Standardization is ``scaling``'s torch side, applied to each batch on the
    device in ``X``'s dtype into one reused buffer; its inverse likewise. The
    module runs in float32 (see the module's docstring). The output is
    preallocated with ``X``'s dtype (float64 for ``"score"``) and filled under
    ``torch.inference_mode``, in batches of :func:`batch_rows` rows: memory
    beyond input and output is a few batches of about 2 MB.

    Parameters
    ----------
    module : Autoencoder
        In eval mode.
    part : {"encoder", "decoder", "score", "error", "feature_error"}
        ``"encoder"``: codes of ``X``; ``"decoder"``: reconstructions (input
        units) of codes ``X``; ``"error"``: each row's mean squared
        reconstruction error in input units, ``"score"`` minus it (the same
        float64 numbers, negated), ``"feature_error"`` the squared errors of
        each entry.
    scaling : Scaling
    device : torch.device or str
    on_non_finite : callable or None
        Except with ``"decoder"``: called with no argument when a
        standardized float32 batch holds NaN or inf (seen from its sum, taken
        while the batch is in cache: cheaper than a separate pass over
        ``X``). It should raise the user-facing error; if it returns (finite
        ``X`` whose standardized values overflow float32), a ValueError says
        so. None: no check.
    standardized : Tensor or None
        With ``"encoder"`` and float32 ``X``: ``X`` already standardized by
        ``scaling`` on the device (what ``fit`` trained on); its batches are
        encoded instead of reading ``X`` again, with the same result.
    batch_size : int or None
        Rows per batch; None: :func:`batch_rows` of the widest rows.

    Returns
    -------
    out : ndarray of shape (n_samples, n_out) or (n_samples,)
        With ``X``'s dtype; float64 for the errors and scores.
    """
    dtype = X.dtype
    # The module's own dtype; float64 input is standardized (and its errors
    # taken) in float64 around it, on ``host``: the device itself, or the
    # CPU for MPS, which has no float64.
    compute = torch.float32
    exact = torch.float64 if dtype == np.float64 else torch.float32
    host = float64_device(device)
    errors = part in ("score", "error", "feature_error")
    fn = inference_fn(module, "autoencoder" if errors else part, np.float32, None)
    n, width = X.shape
    batch_size = batch_size or batch_rows(max(width, len(scaling.mean_)))
    check = on_non_finite if part != "decoder" else None
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
    with torch.inference_mode():
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


def scaled_error(module, data, max_rows=4096):
    """Mean squared reconstruction error of ``data`` in scaled units (eval mode).

    ``data`` is the training :class:`~skae._data.Rows` (standardized, on the
    device); at most ``max_rows`` evenly spaced rows are used: an estimate,
    cheap next to an epoch and with no new pass over ``X``, of the error
    without the penalties and dropout that the training loss includes.
    """
    n = len(data.data)
    positions = torch.arange(0, n, max(1, -(-n // max_rows)))
    module.eval()
    total = 0.0
    # In pieces of 512 rows: a lazy source (sparse, out-of-core) holds a
    # few mini-batches at a time, never thousands of densified rows.
    for piece in positions.split(512):
        if isinstance(data.data, torch.Tensor):
            x = data.data[piece.to(data.data.device)]
        else:
            x = data.data.take(piece)
        with torch.inference_mode():
            error = move(module(x) - x, float64_device(x.device), torch.float64)
            total += float(error.square().sum())
    return total / (len(positions) * data.data.shape[1])
