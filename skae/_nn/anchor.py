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

The rows are those ``fit`` trains on (the float32 tensor it already built,
or batches read from a memory-mapped, out-of-core or sparse source, never
held whole): the covariance matrix is accumulated chunk by chunk in float64
and diagonalized as PCA's ``svd_solver="covariance_eigh"`` does, the same
way for every kind of source (see :func:`pca_of_rows`).
"""

import numpy as np
import torch
from scipy import linalg
from scipy.linalg import blas
from sklearn.decomposition import PCA

from .._devices import move
from .._data.sources import CHUNK_ELEMENTS
from .tying import TiedLinear

#: Widest input whose PCA is computed from its covariance matrix (at most
#: 32 MiB in float64); wider preloaded rows go to scikit-learn's PCA.
MAX_COVARIANCE_FEATURES = 2048


def pca_of_rows(rows, n_components, random_state):
    """Return ``(mean, components)`` of PCA on the rows of a ``Rows`` dataset.

    From the covariance matrix, accumulated in float64 over the same chunks
    whether the rows are preloaded or read from a file or a sparse matrix:
    a model anchored on either is the same, bit for bit. This is the solver
    scikit-learn's PCA picks itself for such shapes (``"covariance_eigh"``,
    at least 10 rows per feature and at most 1000 features). Wider preloaded
    rows are passed to :class:`~sklearn.decomposition.PCA` whole.

    Returns
    -------
    mean : ndarray of shape (n_features,), float64
    components : ndarray of shape (n_components, n_features), float64
        Orthonormal rows, in decreasing order of explained variance.
    """
    data = rows.preloaded()
    if data is not None and data.shape[1] > MAX_COVARIANCE_FEATURES:
        X = move(data.detach(), "cpu", torch.float64).numpy()
        pca = PCA(n_components, random_state=random_state).fit(X)
        return pca.mean_, pca.components_
    return _covariance_pca(rows, n_components)


def _covariance_pca(rows, n_components):
    """PCA from the covariance matrix, accumulated batch by batch.

    Memory beyond a chunk of rows is one ``n_features`` square matrix: the
    Gram matrix is updated in place (BLAS ``dsyrk``, its upper triangle), the
    mean's outer product subtracted in place (``dsyr``), and only the
    ``n_components`` leading eigenvectors are computed (LAPACK ``syevr``).
    """
    n, p = len(rows), rows.data.shape[1]
    step = max(1, CHUNK_ELEMENTS // max(p, 1))
    total = np.zeros(p)
    gram = np.zeros((p, p), order="F")
    for start in range(0, n, step):
        batch = rows.take(torch.arange(start, min(n, start + step)))
        batch = move(batch.detach(), "cpu", torch.float64).numpy()
        total += batch.sum(axis=0)
        # batch.T is Fortran-ordered: gram += batch.T @ batch, no copy.
        gram = blas.dsyrk(1.0, batch.T, beta=1.0, c=gram, overwrite_c=True)
    mean = total / n
    gram = blas.dsyr(-float(n), mean, a=gram, overwrite_a=True)
    _, vectors = linalg.eigh(
        gram,
        lower=False,
        subset_by_index=[p - n_components, p - 1],
        overwrite_a=True,
        check_finite=False,
    )
    components = vectors[:, ::-1].T  # decreasing variance (the scale is moot)
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

        def like(t):
            return move(t, weight.device, weight.dtype)

        encoder.weight.copy_(like(P))
        encoder.bias.copy_(like(-(P @ m)))
        if not isinstance(decoder, TiedLinear):  # tied: P^T is the encoder's P
            decoder.weight.copy_(like(P.T))
        decoder.bias.copy_(like(m))
