"""Methods that explain a fitted autoencoder: per-feature errors and Jacobians.

:class:`ExplainMixin` is part of :class:`~skae._base.BaseAutoencoder`: which
features a row is badly reconstructed on (:meth:`reconstruction_error`), how
the code moves when an input feature moves (:meth:`encoder_jacobian`), and
how the reconstruction moves with the code (:meth:`decoder_jacobian`).
"""

import numpy as np
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _devices, _inference, _runtime
from ._checks import validate_codes


class ExplainMixin:
    """Per-feature reconstruction errors and Jacobians of a fitted autoencoder."""

    def reconstruction_error(self, X, per_feature=False):
        """Return the squared reconstruction error of each row, in input units.

        The error of ``inverse_transform(transform(X))``, after undoing the
        scaling, so it compares with PCA's. Per feature, it tells which
        features make a row an outlier.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to reconstruct.

        per_feature : bool, default=False
            Return every feature's squared error instead of each row's mean.

        Returns
        -------
        error : ndarray of shape (n_samples,) or (n_samples, n_features)
            Squared errors in float64, whatever ``X``'s dtype. Without
            ``per_feature``, each row's mean squared error:
            :meth:`score_samples` is exactly its negative.

        See Also
        --------
        score_samples : Minus each row's mean squared error.
        skae.metrics.neg_reconstruction_error : The same error as a scorer,
            for any transformer with ``inverse_transform`` (PCA too).

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import load_digits
        >>> from skae import AutoencoderTransformer
        >>> X, _ = load_digits(return_X_y=True)
        >>> ae = AutoencoderTransformer(
        ...     8, hidden_layer_sizes=(16,), max_iter=5, random_state=0
        ... ).fit(X)
        >>> ae.reconstruction_error(X[:3], per_feature=True).shape
        (3, 64)
        >>> bool(np.all(ae.score_samples(X) == -ae.reconstruction_error(X)))
        True
        """
        part = "feature_error" if per_feature else "error"
        X = self._validate_rows(X)
        return _inference.infer(self.net_.module_, part, X, **self._at())

    def encoder_jacobian(self, X):
        """Return the Jacobian of the code with respect to the input, per row.

        ``J[i, c, j]`` is ``d transform(X)[i, c] / d X[i, j]``, in the input's
        units (the scaling is part of the map): how much code unit ``c`` moves
        when feature ``j`` of row ``i`` moves by one unit. Computed exactly by
        automatic differentiation (:func:`torch.func.vjp`) with the network in
        eval mode (dropout and input noise off, batch normalization with its
        running statistics), batch by batch: memory beyond the result stays a
        few batches of about 2**19 numbers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows at which to differentiate.

        Returns
        -------
        J : ndarray of shape (n_samples, n_components_, n_features_in_)
            With ``X``'s dtype (float32 or float64).

        See Also
        --------
        decoder_jacobian : Derivatives of the reconstruction by the code.
        skae.plotting.plot_jacobian : Heat maps of the mean Jacobian.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from skae import AutoencoderTransformer
        >>> X, _ = load_digits(return_X_y=True)
        >>> ae = AutoencoderTransformer(
        ...     2, hidden_layer_sizes=(16,), max_iter=5, random_state=0
        ... ).fit(X)
        >>> ae.encoder_jacobian(X[:10]).shape
        (10, 2, 64)
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return self._jacobian("encoder", X)

    def decoder_jacobian(self, Z):
        """Return the Jacobian of the reconstruction with respect to the code.

        ``J[i, j, c]`` is ``d inverse_transform(Z)[i, j] / d Z[i, c]``, in the
        input's units: how feature ``j`` of the reconstruction moves when code
        unit ``c`` moves. Computed exactly by automatic differentiation
        (Jacobian-vector products with :mod:`torch.func`), in eval mode,
        batch by batch.

        Parameters
        ----------
        Z : array-like of shape (n_samples, n_components_)
            Codes at which to differentiate, such as ``transform(X)``.

        Returns
        -------
        J : ndarray of shape (n_samples, n_features_in_, n_components_)
            With ``Z``'s dtype (float32 or float64).

        See Also
        --------
        encoder_jacobian : Derivatives of the code by the input.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from skae import AutoencoderTransformer
        >>> X, _ = load_digits(return_X_y=True)
        >>> ae = AutoencoderTransformer(
        ...     2, hidden_layer_sizes=(16,), max_iter=5, random_state=0
        ... ).fit(X)
        >>> ae.decoder_jacobian(ae.transform(X[:10])).shape
        (10, 64, 2)
        """
        check_is_fitted(self)
        Z = validate_codes(self, Z, method="decoder_jacobian")
        return self._jacobian("decoder", Z)

    def _jacobian(self, part, X):
        device = self.net_.device
        if X.dtype == np.float64:  # where the float64 copy lives (CPU for MPS)
            device = _devices.float64_device(device)
        with _runtime.num_threads(self.n_threads):
            return _inference.jacobian(
                self.net_.module_, part, X, scaling=self._scaling, device=device
            )
