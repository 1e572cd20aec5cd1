"""Standardization of the data around the network, with float64 statistics."""

import numpy as np

_CHUNK = 65536


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
    """

    def __init__(self, method="global"):
        self.method = method

    def fit(self, X):
        """Compute the statistics of ``X`` in float64, chunk by chunk."""
        n, p = X.shape
        total = np.zeros(p)
        for start in range(0, n, _CHUNK):
            total += X[start : start + _CHUNK].sum(axis=0, dtype=np.float64)
        mean = total / n
        squares = np.zeros(p)
        for start in range(0, n, _CHUNK):
            chunk = X[start : start + _CHUNK].astype(np.float64) - mean
            squares += np.einsum("ij,ij->j", chunk, chunk)
        var = squares / n
        if self.method is None:
            mean, scale = np.zeros(p), np.ones(p)
        elif self.method == "center":
            scale = np.ones(p)
        elif self.method == "standard":
            scale = np.sqrt(var)
            scale[~(scale > 0)] = 1.0
        else:
            overall = float(np.sqrt(np.mean(var)))
            scale = np.full(p, overall if overall > 0 else 1.0)
        self.mean_, self.scale_ = mean, scale
        return self

    def transform(self, X):
        """Return ``(X - mean_) / scale_`` in float64."""
        return (np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_

    def inverse_transform(self, Z):
        """Return ``Z * scale_ + mean_`` in float64."""
        return np.asarray(Z, dtype=np.float64) * self.scale_ + self.mean_
