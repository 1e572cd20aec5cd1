"""VariationalAutoencoderTransformer: skae._base's model plus ``beta``, sample, elbo."""

import functools
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import assert_all_finite, check_is_fitted

from . import _devices, _inference, _runtime
from ._base import BaseAutoencoder
from ._estimator import AutoencoderTransformer
from ._nn import variational


class VariationalAutoencoderTransformer(BaseAutoencoder):
    """Variational autoencoder as a scikit-learn transformer.

    The encoder gives each row a Gaussian posterior over the code; training
    minimizes the reconstruction error of codes drawn from it plus ``beta`` times
    its divergence from the prior ``N(0, I)``. ``transform`` returns the posterior
    mean; :meth:`score_samples` is minus each row's reconstruction error, as for
    PCA, :meth:`elbo` its evidence lower bound, and :meth:`sample` decodes draws
    from the prior.

    Read more in the :ref:`User Guide <family_vae>`.

    Parameters
    ----------
    n_components : int, default=2
        Width of the code: the dimension of the posterior and of the prior.
    beta : float, default=1.0
        Weight of the KL divergence from each row's posterior to the prior: 1
        trains on the negative ELBO, larger values give a smoother code space
        (the beta-VAE), 0 drops the prior. See :ref:`family_vae`.
    hidden_layer_sizes, activation, output_activation : as in AutoencoderTransformer
        The network; the posterior's log-variance is a linear head on top of it.
    loss, residual, normalization, dropout : as in AutoencoderTransformer
        ``loss`` also sets the decoder's distribution in :meth:`elbo`.
    init : {"auto", "random", "default", "kaiming_uniform", "kaiming_normal", \
            "xavier_uniform", "xavier_normal", "lecun_normal", "orthogonal"}, \
            default="auto"
        As in :class:`AutoencoderTransformer`; ``"auto"`` is ``"random"`` here
        (a posterior cannot start at PCA: ``"pca"`` is a ValueError).
    scaling, solver, learning_rate_init, momentum : as in AutoencoderTransformer
        Data scaling and optimizer.
    alpha, l1, activity_l1, contractive : as in AutoencoderTransformer
        Penalties; ``activity_l1`` and ``contractive`` act on the posterior mean.
    noise, noise_level, tied_weights : as in AutoencoderTransformer
        Denoising; ``tied_weights`` ties the decoder's first layer to the mean's.
    batch_size, max_iter, tol, n_iter_no_change : as in AutoencoderTransformer
        Mini-batches and when training stops.
    early_stopping, validation_fraction : as in AutoencoderTransformer
        Early stopping; its validation loss includes the KL term.
    lr_schedule, lr_schedule_params : as in AutoencoderTransformer
        Learning-rate schedule.
    max_grad_norm, clip_value, max_restarts : as in AutoencoderTransformer
        Gradient clipping and restarts after divergence.
    callbacks, n_threads, device, accelerator : as in AutoencoderTransformer
        Extra callbacks, torch threads and where training runs.
    random_state, verbose : as in AutoencoderTransformer
        ``random_state`` also seeds the posterior draws of training.

    Attributes
    ----------
    n_components_, n_features_in_ : int
        Width of the code, and number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during ``fit``, when they are all strings.
    mean_, scale_ : ndarray of shape (n_features_in_,)
        Per-feature mean and divisor: the network sees ``(X - mean_) / scale_``.
    init_ : str
        The initialization used (``init`` with ``"auto"`` resolved).
    net_ : skorch.NeuralNet
        The trained net; ``net_.module_`` is the PyTorch module.
    encoder_, decoder_ : torch.nn.Module
        The trained encoder (standardized rows to posterior means) and decoder.
    history_ : skorch.History
        As in :class:`AutoencoderTransformer`, with the KL term ``train_kl``.
    n_iter_, n_restarts_, loss_curve_, stop_reason_
        As in :class:`AutoencoderTransformer`.

    See Also
    --------
    AutoencoderTransformer : The plain autoencoder.
    sklearn.decomposition.PCA : Linear dimensionality reduction.
    sklearn.decomposition.FactorAnalysis : A linear Gaussian latent-variable model.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import VariationalAutoencoderTransformer
    >>> X, _ = load_digits(return_X_y=True)
    >>> vae = VariationalAutoencoderTransformer(
    ...     n_components=4, hidden_layer_sizes=(16,), max_iter=5, random_state=0
    ... )
    >>> vae.fit_transform(X).shape
    (1797, 4)
    >>> vae.sample(3, random_state=0).shape
    (3, 64)
    >>> bool(vae.score(X) < 0)
    True
    """

    _parameter_constraints: dict = {
        **AutoencoderTransformer._parameter_constraints,
        "beta": [Interval(Real, 0, None, closed="left")],
    }
    del _parameter_constraints["n_nonzero_coefs"]  # a posterior's code is dense

    _module = variational.VariationalAutoencoder
    #: init="pca" starts a plain model at PCA; a posterior cannot start there.
    _pca_init = False
    #: Not a parameter: the posterior's mean is a dense code.
    n_nonzero_coefs = None

    def __init__(
        self,
        n_components=2,
        *,
        beta=1.0,
        hidden_layer_sizes=(256, 128),
        activation="relu",
        output_activation="identity",
        loss="mse",
        residual=False,
        normalization=None,
        dropout=0.0,
        init="auto",
        scaling="global",
        solver="adam",
        learning_rate_init=3e-3,
        momentum=0.9,
        alpha=1.0,
        l1=0.0,
        activity_l1=0.0,
        contractive=0.0,
        noise=None,
        noise_level=0.1,
        tied_weights=False,
        batch_size=96,
        max_iter=200,
        tol=1e-4,
        n_iter_no_change=10,
        early_stopping=True,
        validation_fraction=0.1,
        lr_schedule="plateau",
        lr_schedule_params=None,
        max_grad_norm=None,
        clip_value=None,
        max_restarts=3,
        callbacks=None,
        n_threads=None,
        device="cpu",
        accelerator=None,
        random_state=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.beta = beta
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.output_activation = output_activation
        self.loss = loss
        self.residual = residual
        self.normalization = normalization
        self.dropout = dropout
        self.init = init
        self.scaling = scaling
        self.solver = solver
        self.learning_rate_init = learning_rate_init
        self.momentum = momentum
        self.alpha = alpha
        self.l1 = l1
        self.activity_l1 = activity_l1
        self.contractive = contractive
        self.noise = noise
        self.noise_level = noise_level
        self.tied_weights = tied_weights
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.lr_schedule = lr_schedule
        self.lr_schedule_params = lr_schedule_params
        self.max_grad_norm = max_grad_norm
        self.clip_value = clip_value
        self.max_restarts = max_restarts
        self.callbacks = callbacks
        self.n_threads = n_threads
        self.device = device
        self.accelerator = accelerator
        self.random_state = random_state
        self.verbose = verbose

    def _objective_params(self):
        return {**super()._objective_params(), "beta": self.beta}

    def sample(self, n_samples=1, random_state=None):
        """Draw new rows: codes from the prior ``N(0, I)``, decoded.

        Parameters
        ----------
        n_samples : int, default=1
            Number of rows to draw.
        random_state : int, RandomState instance or None, default=None
            Seeds the codes' draws; None uses fresh OS entropy, never global state.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features_in_), float64
            ``inverse_transform`` of standard normal codes.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from skae import VariationalAutoencoderTransformer
        >>> X, _ = load_digits(return_X_y=True)
        >>> vae = VariationalAutoencoderTransformer(
        ...     4, hidden_layer_sizes=(16,), max_iter=5, random_state=0
        ... )
        >>> vae.fit(X).sample(3, random_state=0).shape
        (3, 64)
        """
        check_is_fitted(self)
        if (
            not isinstance(n_samples, Integral)
            or isinstance(n_samples, bool)
            or n_samples < 1
        ):
            raise ValueError(
                f"n_samples must be a positive integer; got n_samples={n_samples!r}."
            )
        Z = _generator(random_state).standard_normal(
            size=(n_samples, self.n_components_)
        )
        return self.inverse_transform(Z)

    def elbo(self, X, n_draws=10, random_state=None):
        """Return each row's evidence lower bound (ELBO), in input units.

        ``E_q[log p(x | z)] - KL(q(z | x) || N(0, I))``, a lower bound of each
        row's log-density under the model (of ``X`` in its own units), with a
        Gaussian decoder for ``loss="mse"`` and a Bernoulli one for ``"bce"``.
        Unlike :meth:`score_samples`, it also counts how unusual a row's code is
        under the prior. See :ref:`family_vae`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Rows to evaluate (any input ``transform`` takes).
        n_draws : int, default=10
            Draws from each row's posterior for the expectation.
        random_state : int, RandomState instance or None, default=None
            Seeds the draws; None uses fresh OS entropy, not the model's generator.

        Returns
        -------
        elbo : ndarray of shape (n_samples,), float64
            The bound of each row, in nats.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from skae import VariationalAutoencoderTransformer
        >>> X, _ = load_digits(return_X_y=True)
        >>> vae = VariationalAutoencoderTransformer(
        ...     4, hidden_layer_sizes=(16,), max_iter=5, random_state=0
        ... )
        >>> vae.fit(X).elbo(X[:5], random_state=0).shape
        (5,)
        """
        check_is_fitted(self)
        # Dense, sparse or out-of-core, read batch by batch as transform does.
        X = self._validate_rows(X)
        if (
            not isinstance(n_draws, Integral)
            or isinstance(n_draws, bool)
            or n_draws < 1
        ):
            raise ValueError(
                f"n_draws must be a positive integer; got n_draws={n_draws!r}."
            )
        # Where the float64 copy of the network lives (the CPU for MPS).
        device = _devices.float64_device(self.net_.device)
        seed = int(_generator(random_state).integers(2**31))
        generator = torch.Generator(device=device).manual_seed(seed)
        module = _inference.float64_module(self.net_.module_)
        name = type(self).__name__
        with _runtime.num_threads(self.n_threads):
            return variational.elbo(
                module,
                X,
                scaling=self._scaling,
                loss=self._fit_params["loss"],
                n_draws=int(n_draws),
                generator=generator,
                device=device,
                check=functools.partial(
                    assert_all_finite, input_name="X", estimator_name=name
                ),
            )


def _generator(random_state):
    """A numpy generator for ``random_state``; None: fresh OS entropy."""
    if random_state is None:
        return np.random.default_rng()
    return np.random.default_rng(check_random_state(random_state).randint(2**31))
