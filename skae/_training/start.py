"""The weights training starts from: PCA's solution, and how training must beat it.

With ``init="pca"`` the model encodes ``z = P (x - m) + f(x)`` and decodes
``x_hat = m + P^T z + g(z)``, ``f`` and ``g`` ending at zero;
:func:`anchor_to_pca` sets ``P`` and ``m`` to PCA of the standardized training
rows, from a covariance accumulated over the same chunks whatever the source.
:func:`row_losses` and :func:`better` judge the start against the trained
weights; :mod:`skae._training.loop` decides.
"""

import math

import numpy as np
import torch
from scipy import linalg
from scipy.linalg import blas
from scipy.special import stdtr
from sklearn.decomposition import PCA

from .._data.rows import Rows
from .._data.sources import chunks
from .._devices import float64_device, move

#: Level of the paired t-test a trained model must pass to replace the start.
ALPHA = 0.05

#: Widest input whose PCA is computed from its covariance matrix (at most
#: 32 MiB in float64); wider preloaded rows go to scikit-learn's PCA.
MAX_COVARIANCE_FEATURES = 2048


def pca_of_rows(rows, n_components, random_state):
    """Return ``(mean, components)`` of PCA on the rows of a ``Rows`` dataset.

    From the float64 covariance matrix (the solver scikit-learn's PCA picks
    itself for such shapes, ``"covariance_eigh"``); wider preloaded rows go to
    :class:`~sklearn.decomposition.PCA` whole.

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
    """PCA from the covariance matrix, accumulated chunk by chunk.

    Each chunk's Gram matrix is float32 (BLAS ``ssyrk``, twice as fast as
    float64: the rows are float32, and centred by the scaling); the sum over
    chunks is float64. Memory beyond a chunk is one and a half square
    matrices; only the leading eigenvectors are computed.
    """
    n, p = len(rows), rows.data.shape[1]
    total = np.zeros(p)
    gram = np.zeros((p, p), order="F")
    for piece in chunks(n, p):
        batch = rows.take(torch.arange(piece.start, min(piece.stop, n)))
        batch = move(batch.detach(), "cpu", torch.float32).numpy()
        total += batch.sum(axis=0, dtype=np.float64)
        # batch.T is Fortran-ordered: batch.T @ batch (upper triangle), no copy.
        gram += blas.ssyrk(1.0, batch.T)
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

    The encoder maps ``x`` to ``P (x - m)``, the decoder ``z`` to ``m + P^T z``:
    ``P`` in the PCA layers, the offsets in the output layers' biases (the
    skips have none); computed in float64, stored in the module's dtype.
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
        module.encoder.out.bias.copy_(like(-(P @ m)))
        if decoder.source is None:  # tied: the decoder's P is the encoder's
            decoder.weight.copy_(like(P))  # stored (n_components, n_features)
        module.decoder.out.bias.copy_(like(m))


def copy_state(module):
    """A copy of ``module``'s weights and buffers, on their device."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def row_losses(net, rows):
    """Each row's reconstruction loss (mean over features), float64, eval mode."""
    module, losses, done = net.module_, torch.empty(len(rows), dtype=torch.float64), 0
    reconstruction = net.criterion_.terms[0][0]
    module.eval()
    with torch.no_grad():
        for X, _ in net.get_iterator(rows, training=False):
            values = reconstruction.values(X, module.parts(X))
            host = float64_device(values.device)  # MPS has no float64
            batch = move(values, host, torch.float64).mean(dim=1)
            losses[done : done + len(batch)] = batch
            done += len(batch)
    return losses


def spaced_rows(data, max_rows=4096):
    """At most ``max_rows`` evenly spaced rows of ``data``: an estimate, cheap
    next to an epoch, of the training rows' error without penalties or dropout.
    """
    n = len(data)
    index = torch.arange(0, n, max(1, -(-n // max_rows)))
    if isinstance(data.data, torch.Tensor):
        index = index.to(data.data.device)
    return Rows(data.data, index)


def better(trained, start, alpha=ALPHA):
    """Whether losses ``trained`` beat ``start``'s in a one-sided paired t-test."""
    diff = (trained - start).numpy()
    n = len(diff)
    if n < 2 or not diff.mean() < 0:
        return False
    spread = diff.std(ddof=1)
    if spread == 0:
        return True
    t = diff.mean() / (spread / math.sqrt(n))
    return bool(stdtr(n - 1, t) < alpha)  # Student's t distribution function
