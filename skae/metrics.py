"""Scorers that compare any dimensionality reduction on one scale."""

import numpy as np
import scipy.sparse as sp

__all__ = ["neg_reconstruction_error"]


def neg_reconstruction_error(estimator, X, y=None):
    """Return minus the mean squared reconstruction error of ``X``.

    A scorer for ``scoring=``; for skae's estimators it equals
    ``estimator.score(X)``. Read more in the :ref:`User Guide <family>`.

    Parameters
    ----------
    estimator : object
        A fitted transformer with ``transform`` and ``inverse_transform``.
    X : array-like or sparse matrix of shape (n_samples, n_features)
        Data to reconstruct.
    y : None
        Ignored; present for the scorer signature.

    Returns
    -------
    score : float
        Minus the mean squared reconstruction error, in ``X``'s units.

    Raises
    ------
    TypeError
        If ``estimator`` has no ``transform`` or no ``inverse_transform``.
    ValueError
        If the reconstruction does not have ``X``'s shape.

    See Also
    --------
    skae.AutoencoderTransformer.reconstruction_error : Each row's error.
    sklearn.decomposition.PCA : Whose ``score`` is a log-likelihood, not this.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.decomposition import PCA
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn.pipeline import Pipeline
    >>> from skae import AutoencoderTransformer
    >>> from skae.metrics import neg_reconstruction_error
    >>> X, _ = load_digits(return_X_y=True)
    >>> ae = AutoencoderTransformer(4, hidden_layer_sizes=(16,), max_iter=5)
    >>> search = GridSearchCV(Pipeline([("reduce", PCA())]),
    ...                       {"reduce": [PCA(n_components=4), ae]},
    ...                       scoring=neg_reconstruction_error, cv=3).fit(X[:300])
    >>> bool(search.best_score_ < 0)
    True
    """
    missing = [
        name
        for name in ("transform", "inverse_transform")
        if not hasattr(estimator, name)
    ]
    if missing:
        raise TypeError(
            f"neg_reconstruction_error needs a transformer with transform and "
            f"inverse_transform; {type(estimator).__name__} has no "
            f"{' or '.join(missing)}. Use PCA, KernelPCA(fit_inverse_transform="
            "True), a skae estimator, or a Pipeline of steps that all have it."
        )
    X_hat = estimator.inverse_transform(estimator.transform(X))
    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    X_hat = X_hat.toarray() if sp.issparse(X_hat) else np.asarray(X_hat)
    if X_hat.shape != X.shape:
        raise ValueError(
            f"The reconstruction of {type(estimator).__name__} has shape "
            f"{X_hat.shape}; X has shape {X.shape}. neg_reconstruction_error "
            "needs an inverse_transform back to X's features."
        )
    error = X.astype(np.float64) - X_hat.astype(np.float64)
    return -float(np.mean(np.square(error)))
