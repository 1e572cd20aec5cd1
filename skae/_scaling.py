"""Standardization of the data around the network, in one place.

:class:`Scaling` computes float64 statistics in one pass over ``X`` and maps
rows to the network's units and back, on the numpy side (float64) and on the
torch side (:meth:`Scaling.standardizer`, :meth:`Scaling.destandardizer`, in
the compute dtype, on the device). Training data, memory-mapped batches and
inference all go through the torch side, so a float32 row is standardized
with the same arithmetic whichever path it takes.
"""

import numpy as np
import torch
from sklearn import get_config
from sklearn.utils import assert_all_finite

from ._sources import read_chunk

#: Rows per chunk are chosen so that a float64 chunk holds about 2 MB.
CHUNK_ELEMENTS = 2**18

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def chunks(n_rows, n_features):
    """Yield ``slice`` objects covering ``n_rows`` rows in ~2 MB float64 chunks."""
    step = max(1, CHUNK_ELEMENTS // max(n_features, 1))
    for start in range(0, n_rows, step):
        yield slice(start, start + step)


def _check_chunk(chunk, estimator_name):
    """Raise scikit-learn's error if ``chunk`` holds NaN or infinity."""
    if not np.isfinite(chunk.sum()):
        assert_all_finite(chunk, input_name="X", estimator_name=estimator_name)


def scan(X, *, estimator_name=None):
    """Read ``X`` once in chunks: check it is finite, return ``(min, max)``.

    What a later ``partial_fit`` call needs of its rows (the scaling
    statistics come from the first call). The finiteness check follows
    scikit-learn's ``assume_finite``.
    """
    check = not get_config()["assume_finite"]
    low, high = np.inf, -np.inf
    for rows in chunks(*X.shape):
        chunk = read_chunk(X, rows)
        if check:
            _check_chunk(chunk, estimator_name)
        low, high = min(low, chunk.min()), max(high, chunk.max())
    return float(low), float(high)


class _Moments:
    """Count, mean and centred sum of squares per feature, merged chunk by chunk.

    The sum of squares is held as ``peak ** 2 * q`` with ``peak`` the largest
    deviation seen, so values up to float64's limit give finite statistics;
    chunks merge by Chan et al.'s pairwise formula.
    """

    def __init__(self, n_features):
        self.n = 0
        self.mean = np.zeros(n_features)
        self.peak = np.ones(n_features)
        self.q = np.zeros(n_features)

    def add(self, chunk):
        m = chunk.shape[0]
        mean = chunk.mean(axis=0)
        deviation = chunk - mean
        peak = np.abs(deviation).max(axis=0)
        peak[~(peak > 0)] = 1.0
        deviation /= peak
        q = np.einsum("ij,ij->j", deviation, deviation)
        if self.n == 0:
            self.n, self.mean, self.peak, self.q = m, mean, peak, q
            return
        n = self.n + m
        delta = mean - self.mean
        top = np.maximum(np.maximum(self.peak, peak), np.abs(delta))
        top[~(top > 0)] = 1.0
        self.q = (
            (self.peak / top) ** 2 * self.q
            + (peak / top) ** 2 * q
            + (delta / top) ** 2 * (self.n * m / n)
        )
        self.mean = self.mean + delta * (m / n)
        self.n, self.peak = n, top

    def std(self):
        return self.peak * np.sqrt(self.q / self.n)


class Scaling:
    """Centre and scale features; map reconstructions back to input units.

    Parameters
    ----------
    method : {"global", "standard", "center"} or None
        See ``AutoencoderTransformer(scaling=...)``.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,), float64
    scale_ : ndarray of shape (n_features,), float64
    baseline_loss_ : float
        Mean squared error, in scaled units, of predicting each feature's
        mean.
    data_min_, data_max_ : float
        Smallest and largest value of ``X`` (only with ``bounds=True``).
    """

    def __init__(self, method="global"):
        self.method = method

    def __getstate__(self):
        # The torch factors are derived: rebuilt on the loading machine.
        return {k: v for k, v in self.__dict__.items() if k != "_torch"}

    def fit(self, X, *, estimator_name=None, bounds=False):
        """Compute the statistics of ``X`` in float64, in one pass.

        Each chunk is checked for NaN and infinity (unless scikit-learn's
        ``assume_finite`` is set), with scikit-learn's own error message.
        """
        self._torch = {}
        check = not get_config()["assume_finite"]
        n, p = X.shape
        moments = _Moments(p)
        low, high = np.inf, -np.inf
        # Overflow is checked for at the end, with a message of our own.
        with np.errstate(over="ignore", invalid="ignore"):
            for rows in chunks(n, p):
                chunk = read_chunk(X, rows, np.float64)
                if check:
                    _check_chunk(chunk, estimator_name)
                moments.add(chunk)
                if bounds:
                    low, high = min(low, chunk.min()), max(high, chunk.max())
            mean, std = moments.mean, moments.std()
        if bounds:
            self.data_min_, self.data_max_ = float(low), float(high)
        if self.method is None:
            mean, scale = np.zeros(p), np.ones(p)
        elif self.method == "center":
            scale = np.ones(p)
        elif self.method == "standard":
            scale = std.copy()
            scale[~(scale > 0)] = 1.0
        else:
            top = std.max(initial=0.0)
            overall = top * np.sqrt(np.mean((std / top) ** 2)) if top > 0 else 1.0
            scale = np.full(p, overall)
        if not (np.isfinite(mean).all() and np.isfinite(scale).all()):
            raise ValueError(
                "X has values too large to standardize in float64 (the feature "
                "means or scales overflow). Rescale X."
            )
        self.mean_, self.scale_ = mean, scale
        # Mean squared error of predicting every feature's mean, in the
        # scaled units the network sees: 1 for "global", at most 1 for
        # "standard". A model whose loss stays above it learned nothing.
        with np.errstate(over="ignore"):
            self.baseline_loss_ = float(np.mean((std / scale) ** 2))
        return self

    # ------------------------------------------------------------ numpy side

    def transform(self, X):
        """Return ``(X - mean_) / scale_`` in float64."""
        return (np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_

    def inverse_transform(self, Z):
        """Return ``Z * scale_ + mean_`` in float64."""
        return np.asarray(Z, dtype=np.float64) * self.scale_ + self.mean_

    # ------------------------------------------------------------ torch side

    def standardizer(self, dtype, device):
        """Return ``f(x, out=None)`` computing ``(x - mean_) / scale_`` in torch.

        ``x`` is a tensor of ``dtype`` on ``device``; ``out`` an optional
        buffer of its shape. float32: one fused pass, ``x * (1 / scale) +
        (-mean / scale)`` with both factors computed in float64, when they fit
        in float32. Its rounding error is of the order of ``x``'s own (one ulp
        of ``x / scale``). float64 (or factors out of float32's range):
        subtract, then divide, exactly as :meth:`transform`. The fused pass
        would cost float64 one ulp of ``mean / scale`` rather than of the
        result, about 1e-10 for data like timestamps.
        """
        return self._cached(("standardize", dtype, str(device)), self._standardizer)

    def _standardizer(self, dtype, device):
        if dtype == torch.float32:
            with np.errstate(over="ignore", divide="ignore"):
                inv, shift = 1.0 / self.scale_, self.mean_ / -self.scale_
            if np.abs(inv).max() < _FLOAT32_MAX and np.abs(shift).max() < _FLOAT32_MAX:
                inv = torch.tensor(inv, dtype=dtype, device=device)
                shift = torch.tensor(shift, dtype=dtype, device=device)

                return lambda x, out=None: torch.addcmul(shift, x, inv, out=out)
        mean = torch.tensor(self.mean_, dtype=dtype, device=device)
        scale = torch.tensor(self.scale_, dtype=dtype, device=device)
        return lambda x, out=None: torch.sub(x, mean, out=out).div_(scale)

    def destandardizer(self, dtype, device):
        """Return ``f(z)`` computing ``z * scale_ + mean_`` in torch."""
        return self._cached(("destandardize", dtype, str(device)), self._destandardizer)

    def _destandardizer(self, dtype, device):
        mean = torch.tensor(self.mean_, dtype=dtype, device=device)
        scale = torch.tensor(self.scale_, dtype=dtype, device=device)
        return lambda z: torch.addcmul(mean, z, scale)

    def _cached(self, key, build):
        """Return the torch function of ``key``, built once per dtype and device.

        Inference calls it at every ``transform``: building the factors costs
        about 3 % of a 4 000-row call.
        """
        cache = self.__dict__.setdefault("_torch", {})
        fn = cache.get(key)
        if fn is None:
            fn = cache.setdefault(key, build(key[1], torch.device(key[2])))
        return fn
