"""Standardization of the data around the network, with float64 statistics."""

import numpy as np

#: Rows per chunk are chosen so that a float64 chunk holds about 2 MB.
CHUNK_ELEMENTS = 2**18


def chunks(n_rows, n_features):
    """Yield ``slice`` objects covering ``n_rows`` rows in ~2 MB float64 chunks."""
    step = max(1, CHUNK_ELEMENTS // max(n_features, 1))
    for start in range(0, n_rows, step):
        yield slice(start, start + step)


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
    """

    def __init__(self, method="global"):
        self.method = method

    def fit(self, X):
        """Compute the statistics of ``X`` in float64, chunk by chunk."""
        # Overflow is checked for at the end, with a message of our own.
        with np.errstate(over="ignore", invalid="ignore"):
            return self._fit(X)

    def _fit(self, X):
        n, p = X.shape
        total = np.zeros(p)
        for rows in chunks(n, p):
            total += X[rows].sum(axis=0, dtype=np.float64)
        mean = total / n
        # Deviations are divided by each feature's largest one before squaring,
        # so values up to float64's limit (1e308) give finite statistics.
        peak = np.zeros(p)
        for rows in chunks(n, p):
            peak = np.maximum(peak, np.abs(X[rows] - mean).max(axis=0, initial=0))
        peak[~(peak > 0)] = 1.0
        squares = np.zeros(p)
        for rows in chunks(n, p):
            chunk = (X[rows].astype(np.float64) - mean) / peak
            squares += np.einsum("ij,ij->j", chunk, chunk)
        std = peak * np.sqrt(squares / n)
        if self.method is None:
            mean, scale = np.zeros(p), np.ones(p)
        elif self.method == "center":
            scale = np.ones(p)
        elif self.method == "standard":
            scale = std
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

    def transform(self, X):
        """Return ``(X - mean_) / scale_`` in float64."""
        return (np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_

    def inverse_transform(self, Z):
        """Return ``Z * scale_ + mean_`` in float64."""
        return np.asarray(Z, dtype=np.float64) * self.scale_ + self.mean_
