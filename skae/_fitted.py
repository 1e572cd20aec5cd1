"""What a fitted autoencoder does: encode, decode, score, and explain."""

import numpy as np
from sklearn.base import TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _inference
from ._checks import check_input, validate_codes


class FittedMixin(TransformerMixin):
    """Transform, inverse transform, scores, per-feature errors and Jacobians.

    A ``TransformerMixin``: scikit-learn wraps ``transform`` for ``set_output``
    only in the class that defines it.
    """

    @property
    def encoder_(self):
        """The trained encoder, ``net_.module_.encoder`` (see Attributes)."""
        check_is_fitted(self)
        return self.net_.module_.encoder

    @property
    def decoder_(self):
        """The trained decoder, ``net_.module_.decoder`` (see Attributes)."""
        check_is_fitted(self)
        return self.net_.module_.decoder

    def transform(self, X):
        """Encode ``X`` into the code space.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to encode.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components_)
            Codes, with ``X``'s dtype (float32 or float64).
        """
        X = self._validate_rows(X)
        return _inference.infer(self.net_.module_, "encoder", X, **self._at())

    def inverse_transform(self, X):
        """Decode codes back to the input space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components_)
            Codes, such as the output of :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features_in_)
            Reconstructions in the input's units, with ``X``'s dtype.
        """
        check_is_fitted(self)
        Z = validate_codes(self, X)
        return _inference.infer(self.net_.module_, "decoder", Z, **self._at())

    def score_samples(self, X):
        """Return minus each row's mean squared reconstruction error.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to reconstruct.

        Returns
        -------
        scores : ndarray of shape (n_samples,), float64
            Minus :meth:`reconstruction_error`, in input units; higher is better.
        """
        X = self._validate_rows(X)
        return _inference.infer(self.net_.module_, "score", X, **self._at())

    def score(self, X, y=None):
        """Return the mean of :meth:`score_samples`; higher is better.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to reconstruct.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        score : float
            Minus the mean squared reconstruction error.
        """
        return float(np.mean(self.score_samples(X)))

    def _validate_rows(self, X):
        """Validate rows for inference; NaN/inf are checked in the pass itself.

        Arrays ``validate_data`` would return as is skip it (~5 % of a transform).
        """
        check_is_fitted(self)
        if (
            type(X) is np.ndarray
            and X.dtype in (np.float32, np.float64)
            and X.ndim == 2
            and X.shape[0] > 0
            and X.shape[1] == self.n_features_in_
            and not hasattr(self, "feature_names_in_")
        ):
            return X
        return check_input(self, X, reset=False)

    def _at(self):
        """Where inference runs: the scaling, device, threads and name to use."""
        return dict(
            scaling=self._scaling,
            device=self.net_.device,
            n_threads=self.n_threads,
            estimator_name=type(self).__name__,
        )

    def reconstruction_error(self, X, per_feature=False):
        """Return the squared reconstruction error of each row, in input units.

        Read more in the :ref:`User Guide <family>`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to reconstruct.
        per_feature : bool, default=False
            Return every feature's squared error instead of each row's mean.

        Returns
        -------
        error : ndarray of shape (n_samples,) or (n_samples, n_features)
            Squared errors in float64; each row's mean without ``per_feature``.

        See Also
        --------
        score_samples : Minus each row's mean squared error.
        skae.metrics.neg_reconstruction_error : The same error as a scorer.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from skae import AutoencoderTransformer
        >>> X, _ = load_digits(return_X_y=True)
        >>> ae = AutoencoderTransformer(8, hidden_layer_sizes=(16,), max_iter=5,
        ...                             random_state=0).fit(X)
        >>> ae.reconstruction_error(X[:3], per_feature=True).shape
        (3, 64)
        """
        part = "feature_error" if per_feature else "error"
        X = self._validate_rows(X)
        return _inference.infer(self.net_.module_, part, X, **self._at())

    def encoder_jacobian(self, X):
        """Return the Jacobian of the code with respect to the input, per row.

        Read more in the :ref:`User Guide <family>`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows at which to differentiate.

        Returns
        -------
        J : ndarray of shape (n_samples, n_components_, n_features_in_)
            ``J[i, c, j] = d Z[i, c] / d X[i, j]`` in input units, ``X``'s dtype.

        See Also
        --------
        decoder_jacobian : Derivatives of the reconstruction by the code.
        skae.plotting.plot_jacobian : Heat maps of the mean Jacobian.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from skae import AutoencoderTransformer
        >>> X, _ = load_digits(return_X_y=True)
        >>> ae = AutoencoderTransformer(2, hidden_layer_sizes=(16,), max_iter=5,
        ...                             random_state=0).fit(X)
        >>> ae.encoder_jacobian(X[:10]).shape
        (10, 2, 64)
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return self._jacobian("encoder", X)

    def decoder_jacobian(self, Z):
        """Return the Jacobian of the reconstruction with respect to the code.

        Read more in the :ref:`User Guide <family>`.

        Parameters
        ----------
        Z : array-like of shape (n_samples, n_components_)
            Codes at which to differentiate, such as ``transform(X)``.

        Returns
        -------
        J : ndarray of shape (n_samples, n_features_in_, n_components_)
            ``J[i, j, c] = d X_hat[i, j] / d Z[i, c]`` in input units, ``Z``'s dtype.

        See Also
        --------
        encoder_jacobian : Derivatives of the code by the input.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from skae import AutoencoderTransformer
        >>> X, _ = load_digits(return_X_y=True)
        >>> ae = AutoencoderTransformer(2, hidden_layer_sizes=(16,), max_iter=5,
        ...                             random_state=0).fit(X)
        >>> ae.decoder_jacobian(ae.transform(X[:10])).shape
        (10, 64, 2)
        """
        check_is_fitted(self)
        Z = validate_codes(self, Z, method="decoder_jacobian")
        return self._jacobian("decoder", Z)

    def _jacobian(self, part, X):
        module, device = self.net_.module_, self.net_.device
        return _inference.jacobian(
            module,
            part,
            X,
            scaling=self._scaling,
            device=device,
            n_threads=self.n_threads,
        )
