"""Standardization around the network: float64 statistics, numpy and torch sides.

All paths standardize in torch: the same float32 arithmetic in training and inference.
"""

import numpy as np
import torch
from sklearn import get_config
from sklearn.utils import assert_all_finite

from .sources import chunks, read_chunk

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _check_chunk(chunk, estimator_name):
    """Raise scikit-learn's error if ``chunk`` holds NaN or infinity."""
    if not np.isfinite(chunk.sum()):
        assert_all_finite(chunk, input_name="X", estimator_name=estimator_name)


def scan(X, *, estimator_name=None):
    """Check ``X`` is finite (unless ``assume_finite``); return ``(low, high)``."""
    check = not get_config()["assume_finite"]
    low = high = None
    for rows in chunks(*X.shape):
        chunk = read_chunk(X, rows)
        if check:
            _check_chunk(chunk, estimator_name)
        lo, hi = chunk.min(axis=0), chunk.max(axis=0)
        low = lo if low is None else np.minimum(low, lo)
        high = hi if high is None else np.maximum(high, hi)
    return low.astype(np.float64), high.astype(np.float64)


class _Moments:
    """Count, mean, centred sum of squares and range per feature, chunk by chunk."""

    def __init__(self, n_features):
        self.n = 0
        self.mean = np.zeros(n_features)
        # Squares as peak**2 * q stay finite up to float64's limit; Chan et al. merge.
        self.peak = np.ones(n_features)
        self.q = np.zeros(n_features)
        self.low = np.full(n_features, np.inf)
        self.high = np.full(n_features, -np.inf)

    def add(self, chunk):
        m = chunk.shape[0]
        self.low = np.minimum(self.low, chunk.min(axis=0))
        self.high = np.maximum(self.high, chunk.max(axis=0))
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
    """Centre and scale features as ``AutoencoderTransformer(scaling=method)``."""

    def __init__(self, method="global"):
        self.method = method

    def __getstate__(self):
        # The torch factors are derived: rebuilt on the loading machine.
        return {k: v for k, v in self.__dict__.items() if k != "_torch"}

    def fit(self, X, *, estimator_name=None):
        """Compute the statistics of ``X`` in float64, in one checked pass."""
        self._torch = {}
        check = not get_config()["assume_finite"]
        n, p = X.shape
        moments = _Moments(p)
        # Overflow is checked for at the end, with a message of our own.
        with np.errstate(over="ignore", invalid="ignore"):
            for rows in chunks(n, p):
                chunk = read_chunk(X, rows, np.float64)
                if check:
                    _check_chunk(chunk, estimator_name)
                moments.add(chunk)
            mean, std = moments.mean, moments.std()
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
        self.data_min_, self.data_max_ = moments.low, moments.high
        with np.errstate(over="ignore"):
            # 1 for "global", <= 1 for "standard": a loss above it learned nothing.
            self.baseline_loss_ = float(np.mean((std / scale) ** 2))
        return self

    def peak(self, low, high):
        """Largest absolute standardized value of features ranging ``low``-``high``."""
        with np.errstate(over="ignore", invalid="ignore"):
            reach = np.maximum(high - self.mean_, self.mean_ - low) / self.scale_
        return float(reach.max(initial=0.0))

    def transform(self, X):
        """Return ``(X - mean_) / scale_`` in float64."""
        return (np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_

    def inverse_transform(self, Z):
        """Return ``Z * scale_ + mean_`` in float64."""
        return np.asarray(Z, dtype=np.float64) * self.scale_ + self.mean_

    def standardizer(self, dtype, device):
        """Return ``f(x, out=None)`` computing ``(x - mean_) / scale_`` in torch."""
        return self._cached(("standardize", dtype, str(device)), self._standardizer)

    def _standardizer(self, dtype, device):
        if dtype == torch.float32:
            with np.errstate(over="ignore", divide="ignore"):
                inv, shift = 1.0 / self.scale_, self.mean_ / -self.scale_
            if np.abs(inv).max() < _FLOAT32_MAX and np.abs(shift).max() < _FLOAT32_MAX:
                inv = torch.tensor(inv, dtype=dtype, device=device)
                shift = torch.tensor(shift, dtype=dtype, device=device)

                return lambda x, out=None: torch.addcmul(shift, x, inv, out=out)
        # Unfused, as transform: fusing would cost float64 an ulp of mean / scale.
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
        # Built once per dtype and device: they cost ~3 % of a small transform.
        cache = self.__dict__.setdefault("_torch", {})
        fn = cache.get(key)
        if fn is None:
            fn = cache.setdefault(key, build(key[1], torch.device(key[2])))
        return fn
