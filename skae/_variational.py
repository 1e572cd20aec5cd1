"""VariationalAutoencoderTransformer: a variational autoencoder, sklearn's way.

The estimator shares everything with :class:`~skae.AutoencoderTransformer`
(training, inference, scores, Jacobians, persistence) through
:class:`~skae._base.BaseAutoencoder`; it adds ``beta``, the module with a
Gaussian posterior (:mod:`skae._vae_module`), :meth:`sample` and :meth:`elbo`.
Its parameters are the plain estimator's, documented there once: the class
docstring copies their entries from it at import time.
"""

import functools
import re
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import assert_all_finite, check_is_fitted

from . import _devices, _inference, _runtime
from ._nn import variational as _vae_module
from ._base import BaseAutoencoder
from ._estimator import AutoencoderTransformer


class VariationalAutoencoderTransformer(BaseAutoencoder):
    # The docstring is assembled below the class from _INTRO, _BETA and the
    # sections of AutoencoderTransformer's.

    _parameter_constraints: dict = {
        **AutoencoderTransformer._parameter_constraints,
        "beta": [Interval(Real, 0, None, closed="left")],
    }

    _module = _vae_module.VariationalAutoencoder
    #: init="pca" starts a plain model at PCA; a posterior cannot start there.
    _pca_init = False

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
            Seeds the draws of the codes. None draws fresh entropy from the
            OS; numpy's and torch's global random states are never used.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features_in_), float64
            Rows in the input's units: ``inverse_transform`` of standard
            normal codes.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the estimator is not fitted.
        ValueError
            If ``n_samples`` is not a positive integer.

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

        ``E_q[log p(x | z)] - KL(q(z | x) || N(0, I))``: a lower bound of the
        log-density of each row under the model, in nats, higher is better.
        The decoder's distribution is a Gaussian of variance ``scale_ ** 2 /
        2`` per feature around the reconstruction with ``loss="mse"``
        (variance 1/2 in the network's scaled units), independent Bernoulli
        variables with ``loss="bce"``. The expectation is estimated from
        ``n_draws`` draws of ``z`` per row; the bound is of ``X`` in its own
        units (the scaling's change of variables is included). Training with
        ``beta=1`` maximizes the bound's mean, divided by ``n_features``, up
        to a constant.

        Unlike :meth:`score_samples` (minus the reconstruction error of the
        posterior mean, comparable with PCA's and the plain autoencoder's),
        the ELBO also counts how unusual a row's code is under the prior.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Rows to evaluate (any input ``transform`` takes).

        n_draws : int, default=10
            Draws from each row's posterior for the expectation.

        random_state : int, RandomState instance or None, default=None
            Seeds the draws. None draws fresh entropy from the OS; the
            model's own generator (that of training) is left untouched.

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
            return _vae_module.elbo(
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


# ------------------------------------------------------------------- docstring

_INTRO = """Variational autoencoder as a scikit-learn transformer.

    The encoder gives each row a Gaussian posterior ``q(z|x)`` over the
    code, of mean ``transform(x)`` and a learned diagonal variance; the
    decoder maps codes back to rows. Training minimizes the reconstruction
    error of codes drawn from the posterior (the reparameterization trick,
    drawing from the model's own generator, see ``random_state``) plus
    ``beta`` times the Kullback-Leibler divergence from the posterior to the
    prior ``N(0, I)``: with ``beta=1``, the negative evidence lower bound
    (:meth:`elbo`). The prior makes the code space one to sample from:
    :meth:`sample` decodes draws from it into new rows.

    ``transform`` returns the posterior mean and ``inverse_transform``
    decodes codes. :meth:`score_samples` is, as for
    :class:`~skae.AutoencoderTransformer`, minus each row's mean squared
    reconstruction error in the input's units, here of its posterior mean,
    so anomaly scores and searches compare with PCA and the plain model; the
    per-row bound itself is :meth:`elbo`.

    Every parameter but ``beta`` means what it means for
    :class:`~skae.AutoencoderTransformer` (the "code" is the posterior mean:
    ``activity_l1`` and ``contractive`` act on it, ``tied_weights`` ties the
    decoder's first layer to the mean's layer); their entries below are
    copied from its documentation.

    Read more in the :ref:`User Guide <family>`.
"""

_BETA = """    beta : float, default=1.0
        Weight of the Kullback-Leibler divergence from each row's posterior
        to the prior ``N(0, I)``, a term of the training objective
        (``train_kl`` in ``history_``), divided by ``n_features`` to match the
        reconstruction term, a mean per entry. With ``beta=1`` the objective
        is, up to a constant and the factor ``1 / n_features``, the negative
        ELBO of a Gaussian decoder of variance 1/2 in the network's scaled
        units (``loss="mse"``) or of a Bernoulli decoder (``loss="bce"``).
        Larger values give a smoother code space and blurrier
        reconstructions (the beta-VAE); 0 drops the prior altogether.

"""

_TAIL = """    See Also
    --------
    AutoencoderTransformer : The plain autoencoder.
    sklearn.decomposition.PCA : Linear dimensionality reduction.
    sklearn.decomposition.FactorAnalysis : A linear Gaussian latent variable
        model with a likelihood.

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

_INIT = """    init : {"auto", "default", "kaiming_uniform", "kaiming_normal", \
            "xavier_uniform", "xavier_normal", "lecun_normal", "orthogonal"}, \
            default="auto"
        Weight initialization of the linear layers: ``"auto"`` matches the
        activation, Kaiming (He) for the ReLU family and GELU, LeCun normal
        for SELU, Xavier (Glorot) otherwise; ``"default"`` keeps PyTorch's
        initialization, biases included; with every other choice biases
        start at zero. Residual projections (bias-free) always use Xavier.
        ``"pca"``, the plain model's default, is not available here (a
        ValueError): PCA gives no posterior variance to start from.

"""


def _section(doc, title):
    """The body of the numpydoc section ``title`` of ``doc``."""
    match = re.search(
        rf"^    {title}\n    -+\n(.*?)(?=^    [A-Z][a-zA-Z ]+\n    -+\n|\Z)",
        doc,
        flags=re.MULTILINE | re.DOTALL,
    )
    return match.group(1)


def _docstring():
    source = AutoencoderTransformer.__doc__
    parameters = _section(source, "Parameters")
    # beta follows n_components, as in the signature.
    second = re.search(r"^    hidden_layer_sizes : ", parameters, flags=re.MULTILINE)
    parameters = parameters[: second.start()] + _BETA + parameters[second.start() :]
    # init: the plain model's, without "pca" (a posterior is no PCA).
    init = re.search(r"^    init : .*?(?=^    scaling : )", parameters, re.M | re.S)
    parameters = parameters[: init.start()] + _INIT + parameters[init.end() :]
    return (
        _INTRO
        + "\n    Parameters\n    ----------\n"
        + parameters
        + "    Attributes\n    ----------\n"
        + _section(source, "Attributes")
        + _TAIL
    )


VariationalAutoencoderTransformer.__doc__ = _docstring()
