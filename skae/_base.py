"""The scikit-learn face shared by skae's autoencoders: fit, transform, scores.

:class:`BaseAutoencoder` holds what every autoencoder estimator does the same
way: validating input, scaling, building and training the skorch net through
:mod:`skae._net` and :mod:`skae._training`, inference through
:mod:`skae._inference`, and the warnings after training. A concrete estimator
(:class:`~skae.AutoencoderTransformer`) adds its docstring, its parameters
and their constraints.
"""

import copy
import sys
import warnings

import numpy as np
from sklearn import get_config
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import assert_all_finite, check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from . import (
    _data,
    _devices,
    _distributed,
    _inference,
    _modules,
    _net,
    _runtime,
    _sources,
    _training,
)
from ._advice import (
    CONVERGENCE_MARGIN,
    learned_nothing,
    recent_gain,
    remedies_for,
)
from ._anchor import anchor_to_pca
from ._checks import check_bce_range, check_params, validate_codes
from ._explain import ExplainMixin
from ._scaling import Scaling, scan


def _warn(message, category):
    """Warn at the first caller outside skae and scikit-learn.

    ``fit`` is reached through ``fit_transform``, pipelines and searches, so a
    fixed ``stacklevel`` would point into scikit-learn for some of them.
    """
    level, frame = 2, sys._getframe(1)
    while frame is not None:
        package = frame.f_globals.get("__name__", "").partition(".")[0]
        if package not in ("skae", "sklearn"):
            break
        level, frame = level + 1, frame.f_back
    warnings.warn(message, category, stacklevel=level)


class BaseAutoencoder(
    ExplainMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Base class of skae's autoencoder estimators (not for direct use)."""

    #: The module class the net trains (see :func:`skae._net.build_net`).
    _module = _modules.Autoencoder
    #: Whether ``init="pca"`` can start this model at PCA's solution.
    _pca_init = True

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the autoencoder on ``X``.

        Any previous fit is forgotten. If training fails (bad input, or a loss
        that stays NaN after every restart) the estimator keeps the state it
        had before the call.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. NumPy arrays and DataFrames are standardized into
            one float32 tensor on the device. Sparse matrices and arrays
            (CSR, CSC, or any format SciPy converts to CSR), ``np.memmap``
            files, zarr arrays, h5py datasets and dask arrays are never
            copied whole: their rows are read, densified and standardized a
            batch at a time, and the fitted model is the one the same data
            as a dense NumPy array would give (see the user guide's
            :ref:`scaling` page).

        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : AutoencoderTransformer
            The fitted estimator.
        """
        self._fit(X, first=True, epochs=self.max_iter)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None):
        """Fit the autoencoder on ``X`` and return the codes of ``X``.

        The same codes as ``fit(X).transform(X)``, without validating ``X``
        again; float32 rows are encoded from the standardized copy that
        training used (already on the device).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.

        y : None
            Ignored; present for API consistency.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            Codes, with ``X``'s dtype.
        """
        X, data = self._fit(X, first=True, epochs=self.max_iter)
        # float64 rows are standardized again, in float64: training kept them
        # standardized in float32, which may round differently.
        rows = data.preloaded() if X.dtype == np.float32 else None
        return self._infer("encoder", X, standardized=rows)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Train for one epoch on ``X``, initializing on the first call.

        The scaling statistics are computed on the first call's ``X`` and kept
        afterwards, as are the architecture and the device. Each call trains
        one epoch on all of ``X``: as in
        :class:`~sklearn.neural_network.MLPRegressor`, ``early_stopping``
        applies to :meth:`fit` only, so no row is held out (and none is
        validated in one call and trained on in the next), and a call never
        stops early. A divergence during the call rolls back to the weights
        of the call's lowest training loss (or those it began with), never
        to an earlier call's.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.

        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : AutoencoderTransformer
            The fitted estimator.
        """
        self._fit(X, first=not hasattr(self, "net_"), epochs=1, incremental=True)
        return self

    def _fit(self, X, *, first, epochs, incremental=False):
        """Train and return the validated ``X`` and the training rows."""
        before = dict(self.__dict__)
        # A later partial_fit call trains the fitted net in place: keep what
        # puts it back. (A first call builds a new net, dropped on failure.)
        net = None if first else self.net_
        saved = None if net is None else _training.snapshot(net)
        try:
            report, X, data = self._fit_unsafe(X, first, epochs, incremental)
        except BaseException:  # a Ctrl-C outside skorch's loop too
            if saved is not None:
                _training.restore(net, saved)
            self.__dict__.clear()
            self.__dict__.update(before)
            raise
        # Warnings come once the new state is in place, so that a warning
        # turned into an error cannot leave the estimator half-updated.
        self._warn_after_training(report, incremental)
        return X, data

    def _fit_unsafe(self, X, first, epochs, incremental):
        # The NaN/inf check runs in the one pass that computes the scaling
        # statistics (or, for a later partial_fit call, checks the rows).
        X = self._check_X(X, reset=first)
        hidden = check_params(self, X, incremental=incremental)
        name = type(self).__name__
        parallel = _distributed.data_parallel(self.accelerator)
        if first:
            if self.accelerator is None:
                device = _devices.resolve_device(self.device)
            else:
                device = _devices.parse_device(self.accelerator.device)
            scaling = Scaling(self.scaling).fit(
                X, estimator_name=name, bounds=self.loss == "bce"
            )
            if self.loss == "bce":
                check_bce_range(scaling.data_min_, scaling.data_max_)
            if self.random_state is None:
                # Fresh OS entropy: numpy's global random state stays untouched.
                seed = int(np.random.SeedSequence().generate_state(1)[0] >> 3)
            else:
                seed = int(check_random_state(self.random_state).randint(2**28))
            if parallel is not None:  # every rank the same model
                seed = parallel.same_seed(seed)
            raw = self.get_params(deep=False)
            params = {**raw, "hidden_layer_sizes": hidden}
            net = _net.build_net(
                params,
                n_features=X.shape[1],
                n_components=int(self.n_components),
                seed=seed,
                device=device,
                validate=self.early_stopping,
                parallel=parallel,
                module=self._module,
            )
            net.initialize()
        else:
            # Later partial_fit calls keep the first call's architecture,
            # scaling and device, whatever set_params changed since.
            scaling, net = self._scaling, self.net_
            # (A model pickled before _fit_params existed: its get_params.)
            params = getattr(self, "_fit_params", None) or self.get_params()
            device = _devices.resolve_device(net.device)
            low, high = scan(X, estimator_name=name)
            if params.get("loss") == "bce":
                check_bce_range(low, high)
        with _runtime.num_threads(self.n_threads):
            data = _data.prepare_rows(X, scaling, device)
            _data.check_finite_rows(data)
            if first and self.init == "pca":
                anchor_to_pca(net.module_, data, random_state=seed)
            report = _training.train(
                net,
                data,
                epochs,
                incremental=incremental,
                max_restarts=self.max_restarts,
                remedies=remedies_for(params),
            )

        if first:
            # What the net was built with: a later set_params does not change
            # the fitted model, and save() describes the fitted model.
            self._fit_params = {
                name: value
                if name in ("callbacks", "accelerator")
                else copy.deepcopy(value)
                for name, value in raw.items()
            }
            self._scaling = scaling
            self.mean_, self.scale_ = scaling.mean_, scaling.scale_
            self.net_ = net
            self.history_ = net.history
            self.n_components_ = int(self.n_components)
            self.n_restarts_ = 0
        # The float64 copy of the module is rebuilt after every training call:
        # the fused optimizers update the weights without moving the version
        # counters the copy watches.
        self._float64 = _inference.Float64Copies()
        self.n_iter_ = len(net.history)
        # (Rows loaded from a file of format < 1.2 hold only train_loss.)
        self.loss_curve_ = [
            float(row.get("train_reconstruction", row["train_loss"]))
            for row in net.history
        ]
        self.n_restarts_ += len(report.restarts)
        self.stop_reason_ = report.stop_reason
        return report, X, data

    def _warn_after_training(self, report, incremental):
        baseline = getattr(self._scaling, "baseline_loss_", None)
        # Constant data: nothing to learn, and no gradient to judge.
        for category, message in report.warnings if baseline != 0 else []:
            _warn(message, category)
        reason = report.stop_reason
        if reason == "interrupted":
            _warn(
                f"Training interrupted by user after {self.n_iter_} epochs; the "
                "weights of the best epoch so far were restored.",
                UserWarning,
            )
        elif not incremental and reason != "callback":
            stopped_early = reason != "max_iter"
            message = (
                f"Maximum iterations ({self.max_iter}) reached and the "
                "optimization hasn't converged yet."
            )
            if stopped_early:
                message = f"Training stopped after {self.n_iter_} epochs."
            nothing = learned_nothing(
                report.error,
                baseline or 0.0,
                self._fit_params,
                stopped_early,
                report.error_rows,
            )
            if nothing:
                message += " " + nothing
            elif stopped_early:
                return
            else:
                window = min(report.window, len(report.losses) - 1)
                gain = recent_gain(report.losses, report.window)
                if not gain > CONVERGENCE_MARGIN:
                    return
                loss = "validation" if report.error_rows == "validation" else "training"
                epochs = f"{window} epoch" + ("s" if window != 1 else "")
                message += (
                    f" The {loss} loss fell by {gain:.1%} over the last {epochs}, "
                    "so more epochs would lower it further: increase max_iter."
                )
            _warn(message, ConvergenceWarning)

    # ---------------------------------------------------------- torch modules

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

    # ------------------------------------------------------------ transform

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
        return self._infer("encoder", self._validate_rows(X))

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
        X = validate_codes(self, X)
        return self._infer("decoder", X)

    def score_samples(self, X):
        """Return minus each row's mean squared reconstruction error.

        The error is in the input's units (after undoing the scaling), so it is
        comparable with PCA's. Higher is better; 0 is a perfect reconstruction.
        Useful as an anomaly score: outliers get low values.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to reconstruct.

        Returns
        -------
        scores : ndarray of shape (n_samples,), float64
            ``-mean((X - inverse_transform(transform(X))) ** 2, axis=1)``,
            accumulated in float64 whatever ``X``'s dtype: exactly minus
            :meth:`reconstruction_error`.
        """
        return self._infer("score", self._validate_rows(X))

    def score(self, X, y=None):
        """Return the mean of :meth:`score_samples`: higher is better, 0 is perfect.

        This makes unsupervised :class:`~sklearn.model_selection.GridSearchCV`
        prefer the better reconstruction.

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

    def _check_X(self, X, reset):
        """``validate_data`` for dense, sparse and out-of-core ``X``.

        Sparse input comes back as :class:`~skae._sources.SparseRows`, a
        zarr / h5py / dask array as :class:`~skae._sources.BlockArray`,
        after validating its first rows only (``validate_data`` would load
        it whole); NaN and infinity are checked later, chunk by chunk.
        """
        dtype = [np.float64, np.float32]
        if _sources.is_out_of_core(X):
            sample = X[: min(2, X.shape[0])] if len(X.shape) else X
            sample = sample.compute() if hasattr(sample, "compute") else sample
            sample = validate_data(
                self,
                np.asarray(sample),
                reset=reset,
                dtype=dtype,
                ensure_all_finite=False,
            )
            return _sources.BlockArray(X, sample.dtype)
        X = validate_data(
            self,
            X,
            reset=reset,
            accept_sparse=["csr", "csc"],
            dtype=dtype,
            ensure_all_finite=False,
        )
        return _sources.as_sparse(X)

    def _validate_rows(self, X):
        """Validate rows for transform/score_samples; NaN/inf checked later.

        The NaN/inf check runs in :func:`_inference.infer`, on each
        standardized batch while it is in cache, and falls back to sklearn's
        own check (same error message, same ``assume_finite`` switch) when a
        batch is not finite. sklearn's check here would be a separate pass
        over ``X`` costing ~5 % of a transform. So a wrong width is
        reported before NaN (PCA reports NaN first), and NaN in the last
        batch only after the earlier batches ran.

        A float32 or float64 ndarray of the right width, for a model fitted
        without feature names, is what ``validate_data`` would return as is;
        it skips that function's Python work (another ~5 % of a 4000-row
        transform, since it runs with cold caches after the matmuls).
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
        return self._check_X(X, reset=False)

    def _infer(self, part, X, standardized=None):
        on_non_finite = None
        if part != "decoder" and not get_config()["assume_finite"]:

            def on_non_finite():
                name = type(self).__name__
                if isinstance(X, np.ndarray):
                    assert_all_finite(X, input_name="X", estimator_name=name)
                else:  # read in chunks, never whole
                    scan(X, estimator_name=name)

        with _runtime.num_threads(self.n_threads):
            return _inference.infer(
                self.net_.module_,
                part,
                X,
                scaling=self._scaling,
                device=self.net_.device,
                on_non_finite=on_non_finite,
                standardized=standardized,
            )

    def __sklearn_is_fitted__(self):
        """Fitted once a net is trained (faster than scanning ``vars``)."""
        return hasattr(self, "net_")

    @property
    def _n_features_out(self):
        """Number of transformed output features (for feature names)."""
        return self.n_components_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.sparse = True
        return tags
