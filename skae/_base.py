"""How skae's autoencoders fit: ``fit``, ``fit_transform``, ``partial_fit``.

``fit`` is five calls, each going down: validate, load the rows
(:mod:`skae._data`), build the net and start it at PCA
(:mod:`skae._training`), train, and record the fitted attributes.
"""

import copy
import enum
import inspect
import os
import sys
import warnings

import numpy as np
import sklearn
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    _fit_context,
)
from sklearn.utils import check_random_state

from . import _devices, _inference, _runtime
from ._checks import check_input, check_params, hidden_sizes, resolve_init
from ._data.rows import load_rows
from ._data.scaling import Scaling
from ._fitted import FittedMixin
from ._nn.modules import Autoencoder
from ._training.advice import Advice
from ._training.loop import checkpoint, rollback, train
from ._training.net import build_net
from ._training.parallel import data_parallel
from ._training.start import anchor_to_pca

#: Warnings point at the first caller outside these folders.
_INTERNAL = tuple(
    os.path.dirname(path) + os.sep for path in (__file__, sklearn.__file__)
)


def _warn(message, category):
    """Warn at the first caller outside skae and scikit-learn (pipelines, searches)."""
    if sys.version_info >= (3, 12):
        warnings.warn(message, category, skip_file_prefixes=_INTERNAL)
        return
    level, frame = 1, inspect.currentframe()
    while frame is not None and frame.f_code.co_filename.startswith(_INTERNAL):
        level, frame = level + 1, frame.f_back
    warnings.warn(message, category, stacklevel=level)


class Mode(enum.Enum):
    """What a training call does with the model."""

    #: ``fit``: a new model, ``max_iter`` epochs, early stopping.
    FIT = "fit"
    #: ``partial_fit`` without a model yet: a new model, one epoch.
    START = "start"
    #: A later ``partial_fit``: the fitted model, one more epoch.
    RESUME = "resume"


class BaseAutoencoder(FittedMixin, ClassNamePrefixFeaturesOutMixin, BaseEstimator):
    """Base class of skae's autoencoder estimators (not for direct use)."""

    _module = Autoencoder
    #: Whether this model can start at PCA's solution (``init="pca"``).
    _pca_init = True

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the autoencoder on ``X``; forget any previous fit.

        If training fails, the estimator keeps the state it had before.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data: an array, a DataFrame, a sparse matrix, an
            ``np.memmap``, a zarr, h5py or dask array (see :ref:`scaling`).
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._fit(X, Mode.FIT)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None):
        """Fit the autoencoder on ``X`` and return the codes of ``X``.

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
        X, rows = self._fit(X, Mode.FIT)
        # float64 rows are standardized again in float64, as transform does.
        standardized = rows.preloaded() if X.dtype == np.float32 else None
        return _inference.infer(
            self.net_.module_, "encoder", X, standardized=standardized, **self._at()
        )

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Train for one epoch on ``X``, initializing on the first call.

        The first call sets the scaling, architecture and device. As in
        :class:`~sklearn.neural_network.MLPRegressor`, ``early_stopping``
        applies to :meth:`fit` only: every row is trained on.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._fit(X, Mode.RESUME if hasattr(self, "net_") else Mode.START)
        return self

    def _fit(self, X, mode):
        """Train in ``mode``; return the validated ``X`` and the training rows."""
        before, resume = dict(self.__dict__), mode is Mode.RESUME
        # Resuming trains the fitted net in place: keep what puts it back.
        saved = checkpoint(self.net_) if resume else None
        params = self._fit_params if resume else self.get_params(deep=False)
        try:
            X = check_input(self, X, reset=not resume)  # 1. validate
            check_params(self)
            device = self._device(mode)
            holdout = mode is Mode.FIT and self.early_stopping
            scaling = self._scaling if resume else Scaling(self.scaling)
            with _runtime.num_threads(self.n_threads):
                rows = load_rows(  # 2. load
                    X,
                    scaling,
                    device,
                    validation_fraction=self.validation_fraction if holdout else None,
                    unit_interval=params["loss"] == "bce",
                    estimator_name=type(self).__name__,
                )
                init = self.init_ if resume else resolve_init(self)
                if resume:  # 3. build, or reuse, and start at PCA
                    net = self.net_
                else:
                    parallel = data_parallel(self.accelerator)
                    seed = self._seed(parallel)
                    net = self._new_net(
                        self.n_features_in_,
                        seed,
                        device,
                        self.early_stopping,
                        parallel,
                        init=init,
                    ).initialize()
                    if init == "pca":
                        anchor_to_pca(net.module_, rows, random_state=seed)
                report = train(  # 4. train
                    net,
                    rows,
                    self.max_iter if mode is Mode.FIT else 1,
                    incremental=mode is not Mode.FIT,
                    max_restarts=self.max_restarts,
                    baseline=scaling.baseline_loss_,
                    advice=self._advice(params, init),
                )
            self._record(net, scaling, report, mode, params, init)  # 5. record
        except BaseException:  # a Ctrl-C outside skorch's loop too
            if saved is not None:
                rollback(self.net_, saved)
            self.__dict__.clear()
            self.__dict__.update(before)
            raise
        # Once the new state is in place: a warning turned into an error
        # cannot leave the estimator half-updated.
        for category, message in report.warnings:
            _warn(message, category)
        return X, rows

    def _device(self, mode):
        """The fitted net's device, the accelerator's, or ``device``."""
        if mode is Mode.RESUME:
            return _devices.resolve_device(self.net_.device)
        if self.accelerator is not None:
            return _devices.parse_device(self.accelerator.device)
        return _devices.resolve_device(self.device)

    def _seed(self, parallel):
        """The seed of a new model's generators, from ``random_state``."""
        if self.random_state is None:
            # Fresh OS entropy: numpy's global random state stays untouched.
            seed = int(np.random.SeedSequence().generate_state(1)[0] >> 3)
        else:
            seed = int(check_random_state(self.random_state).randint(2**28))
        if parallel is not None:  # every rank the same model
            seed = parallel.same_seed(seed)
        return seed

    def _new_net(self, n_features, seed, device, holdout, parallel=None, *, init):
        """Build the net of the parameters and the resolved ``init``.

        ``holdout``: with a validation split.
        """
        return build_net(
            module=self._module,
            module_params=dict(
                n_features=n_features,
                n_components=int(self.n_components),
                hidden_layer_sizes=hidden_sizes(self.hidden_layer_sizes),
                activation=self.activation,
                output_activation="sigmoid"
                if self.loss == "bce"
                else self.output_activation,
                normalization=self.normalization,
                dropout=self.dropout,
                residual=self.residual,
                init=init,
                noise=self.noise,
                noise_level=self.noise_level,
                tied_weights=self.tied_weights,
                n_nonzero_coefs=self.n_nonzero_coefs,
            ),
            objective_params=self._objective_params(),
            solver=self.solver,
            momentum=self.momentum,
            learning_rate_init=self.learning_rate_init,
            alpha=self.alpha,
            batch_size=self.batch_size,
            max_iter=self.max_iter,
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change,
            validation_fraction=self.validation_fraction if holdout else None,
            lr_schedule=self.lr_schedule,
            lr_schedule_params=self.lr_schedule_params,
            max_grad_norm=self.max_grad_norm,
            clip_value=self.clip_value,
            callbacks=self.callbacks,
            verbose=self.verbose,
            seed=seed,
            device=device,
            parallel=parallel,
        )

    def _objective_params(self):
        """The training objective's loss and term weights."""
        return dict(
            loss=self.loss,
            l1=self.l1,
            activity_l1=self.activity_l1,
            contractive=self.contractive,
        )

    @staticmethod
    def _advice(p, init):
        """What the messages of a model of parameters ``p`` depend on."""
        return Advice(
            learning_rate_init=p["learning_rate_init"],
            solver=p["solver"],
            scaling=p["scaling"],
            max_grad_norm=p["max_grad_norm"],
            clip_value=p["clip_value"],
            normalization=p["normalization"],
            residual=p["residual"],
            activation=p["activation"],
            init=init,
            n_layers=len(hidden_sizes(p["hidden_layer_sizes"])),
            tol=p["tol"],
            max_iter=p["max_iter"],
        )

    def _record(self, net, scaling, report, mode, params, init):
        """Set the fitted attributes after a training call."""
        if mode is not Mode.RESUME:
            # What the net was built with: a later set_params does not
            # change the fitted model, and save() describes it.
            self._fit_params = {
                name: value
                if name in ("callbacks", "accelerator")
                else copy.deepcopy(value)
                for name, value in params.items()
            }
            self._scaling = scaling
            self.mean_, self.scale_ = scaling.mean_, scaling.scale_
            self.net_ = net
            self.history_ = net.history
            self.n_components_ = int(self.n_components)
            self.init_ = init
            self.n_restarts_ = 0
        self.n_iter_ = len(net.history)
        self.loss_curve_ = [float(row["train_reconstruction"]) for row in net.history]
        self.n_restarts_ += report.n_restarts
        self.stop_reason_ = report.stop_reason

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
