"""``init="pca"``: start the autoencoder at PCA's solution.

An anchored :class:`~skae._modules.Autoencoder` (built with ``init="pca"``)
encodes ``z = P (x - m) + f(x)`` and decodes ``x_hat = m + P^T z + g(z)``;
``f`` and ``g`` are the hidden stacks, whose output layers start at zero.
:func:`anchor_to_pca` sets ``P`` (``n_components`` x ``n_features``) and
``m`` to the components and mean of scikit-learn's
:class:`~sklearn.decomposition.PCA` fitted on the standardized training rows,
so that before its first step the model reconstructs exactly as that PCA
does. With ``scaling="global"``, ``"center"`` or None, that PCA reconstructs
the rows, in input units, exactly as ``PCA(n_components).fit(X)`` does (the
scaling is one factor for every feature).

The rows are the float32 tensor ``fit`` already built: no new pass over
``X``. Rows read batch by batch from a memory-mapped file are never held
whole: for them the covariance matrix is accumulated batch by batch, in
float64, and diagonalized as PCA's ``svd_solver="covariance_eigh"`` does.
"""

import numpy as np
import torch
from sklearn.decomposition import PCA

from ._scaling import CHUNK_ELEMENTS


def pca_of_rows(rows, n_components, random_state):
    """Return ``(mean, components)`` of PCA on the rows of a ``Rows`` dataset.

    Returns
    -------
    mean : ndarray of shape (n_features,), float64
    components : ndarray of shape (n_components, n_features), float64
        Orthonormal rows, in decreasing order of explained variance.
    """
    data = rows.preloaded()
    if data is not None:
        # float64 arithmetic: with "global" scaling, PCA may leave a residual
        # of 1e-4 of the variance (raw data whose units differ by orders of
        # magnitude), which float32 eigenvectors would not resolve.
        X = data.detach().to("cpu", torch.float64).numpy()
        pca = PCA(n_components, random_state=random_state).fit(X)
        return pca.mean_, pca.components_
    return _covariance_pca(rows, n_components)


def _covariance_pca(rows, n_components):
    """PCA from the covariance matrix, accumulated batch by batch."""
    n = len(rows)
    step = max(1, CHUNK_ELEMENTS // max(rows.data.X.shape[1], 1))
    total, gram = None, None
    for start in range(0, n, step):
        batch = rows.take(torch.arange(start, min(n, start + step)))
        batch = batch.detach().to("cpu", torch.float64).numpy()
        if total is None:
            total = batch.sum(axis=0)
            gram = batch.T @ batch
        else:
            total += batch.sum(axis=0)
            gram += batch.T @ batch
    mean = total / n
    covariance = (gram - n * np.outer(mean, mean)) / max(n - 1, 1)
    values, vectors = np.linalg.eigh(covariance)
    components = vectors[:, ::-1][:, :n_components].T
    # scikit-learn's sign convention: the largest entry of each row positive.
    signs = np.sign(components[np.arange(n_components), np.abs(components).argmax(1)])
    signs[signs == 0] = 1.0
    return mean, components * signs[:, None]


def anchor_to_pca(module, rows, random_state=None):
    """Set the PCA layers of an anchored ``module`` to PCA of ``rows``.

    The encoder's layer maps ``x`` to ``P (x - m)``, the decoder's ``z`` to
    ``m + P^T z``; computed in float64, stored in the module's dtype.
    """
    encoder, decoder = module.encoder.pca, module.decoder.pca
    mean, components = pca_of_rows(rows, encoder.out_features, random_state)
    weight = encoder.weight
    with torch.no_grad():
        P = torch.as_tensor(components, dtype=torch.float64)
        m = torch.as_tensor(mean, dtype=torch.float64)
        like = {"dtype": weight.dtype, "device": weight.device}
        encoder.weight.copy_(P.to(**like))
        encoder.bias.copy_((-(P @ m)).to(**like))
        decoder.weight.copy_(P.T.to(**like))
        decoder.bias.copy_(m.to(**like))
