"""AutoencoderTransformer: its parameters, constraints and documentation."""

from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from ._base import BaseAutoencoder
from ._nn.layers import ACTIVATIONS, INITS
from ._nn.noise import NOISES
from ._training.schedules import SCHEDULES


class AutoencoderTransformer(BaseAutoencoder):
    """Nonlinear dimensionality reduction with a PyTorch autoencoder.

    A drop-in for :class:`sklearn.decomposition.PCA`: ``fit`` trains an encoder
    ``X -> Z`` (``n_components`` columns) and a mirrored decoder ``Z -> X`` on the
    squared reconstruction error; ``transform`` encodes, ``inverse_transform``
    decodes. Training runs through a :class:`skorch.NeuralNet`, kept as ``net_``.

    Read more in the :ref:`User Guide <user_guide>`.

    Parameters
    ----------
    n_components : int, default=2
        Width of the code, at most the number of features.
    hidden_layer_sizes : array-like of int or int, default=(256, 128)
        Widths of the encoder's hidden layers, input side first; the decoder
        mirrors them. See :ref:`architecture`.
    activation : {"relu", "leaky_relu", "elu", "gelu", "selu", "tanh", \
            "sigmoid", "logistic", "identity"}, default="relu"
        Activation of the hidden layers (``"logistic"`` is ``"sigmoid"``).
    output_activation : str, default="identity"
        Activation of the reconstruction, one of ``activation``'s values.
    loss : {"mse", "bce"}, default="mse"
        Reconstruction error: squared error, or binary cross-entropy for data in
        [0, 1] (with ``scaling=None``). See :ref:`training_loss`.
    residual : bool, default=False
        Add a skip connection around every hidden layer.
    normalization : {None, "batch", "layer"}, default=None
        Normalization of each hidden layer, before its activation.
    dropout : float in [0, 1), default=0.0
        Dropout probability after each hidden activation, in training only.
    init : {"auto", "pca", "random", "default", "kaiming_uniform", \
            "kaiming_normal", "xavier_uniform", "xavier_normal", "lecun_normal", \
            "orthogonal"}, default="auto"
        Weight initialization. ``"auto"`` is ``"pca"`` where the model can
        start at PCA's reconstruction (``loss="mse"``, a linear output) and
        ``"random"`` elsewhere; ``init_`` says which. ``"pca"`` starts at PCA's
        solution (a ValueError where it cannot), the others draw random
        weights (``"random"``: scaled to ``activation``). See :ref:`pca_start`.
    scaling : {"global", "standard", "center"} or None, default="global"
        How ``X`` is standardized for training: centred and divided by one scale
        (PCA's loss) or per feature, only centred, or not at all. See :ref:`scaling`.
    solver : {"adam", "adamw", "sgd", "rmsprop"}, default="adam"
        Optimizer; ``"sgd"`` uses Nesterov momentum when ``momentum > 0``.
    learning_rate_init : float, default=3e-3
        Initial learning rate.
    momentum : float in [0, 1], default=0.9
        Momentum of ``"sgd"`` and ``"rmsprop"``; ignored otherwise.
    alpha : float, default=1.0
        Strength of the L2 regularization (weight decay on the weight matrices),
        divided by the number of training rows. See :ref:`training_regularization`.
    l1 : float, default=0.0
        Strength of the L1 penalty on the weight matrices, divided as ``alpha``.
    activity_l1 : float, default=0.0
        Strength of the L1 penalty on the code: it shrinks the code, but a
        linear code gets no exact zeros. See :ref:`family_sparse`.
    n_nonzero_coefs : int, default=None
        Keep each row's ``n_nonzero_coefs`` code entries of largest magnitude
        and set the others to exactly 0 (a k-sparse autoencoder); None keeps
        a dense, linear code. See :ref:`family_sparse`.
    contractive : float, default=0.0
        Strength of the penalty on the encoder's Jacobian. See
        :ref:`family_contractive`.
    noise : {"gaussian", "mask"} or None, default=None
        Corrupt the encoder's training input, for a denoising autoencoder. See
        :ref:`family_denoising`.
    noise_level : float, default=0.1
        Standard deviation of ``"gaussian"`` noise in scaled units, or the
        probability of masking an entry with ``"mask"`` (below 1).
    tied_weights : bool, default=False
        Each decoder layer uses the transposed weight of its mirrored encoder
        layer. See :ref:`family_tied`.
    batch_size : int, default=96
        Rows per mini-batch (capped by the number of training rows).
    max_iter : int, default=200
        Maximum number of epochs.
    tol : float, default=1e-4
        Minimum improvement of the monitored loss, in standardized units.
    n_iter_no_change : int, default=10
        Epochs without an improvement of ``tol`` before training stops. See
        :ref:`training_stopping`.
    early_stopping : bool, default=True
        Monitor the loss on ``validation_fraction`` of the rows and restore the
        best epoch's weights at the end of ``fit``. See :ref:`never_worse`.
    validation_fraction : float in (0, 1), default=0.1
        Share of rows held out when ``early_stopping=True``.
    lr_schedule : {"constant", "exponential", "linear", "step", "cosine", \
            "warm_restarts", "plateau"}, default="plateau"
        Learning-rate schedule, stepped every epoch. See :ref:`training_schedules`.
    lr_schedule_params : dict, default=None
        Overrides of the PyTorch scheduler's defaults, e.g. ``{"gamma": 0.9}``.
    max_grad_norm : float, default=None
        Clip the gradient's global L2 norm to this value before each step.
    clip_value : float, default=None
        Clip every gradient element into ``[-clip_value, clip_value]``.
    max_restarts : int, default=3
        Restarts allowed when the loss diverges, each from the best weights at a
        tenth of the rate; then ``TrainingDivergedError``. See
        :ref:`training_restarts`.
    callbacks : list of skorch.callbacks.Callback or (str, Callback), default=None
        Extra skorch callbacks, run after skae's own. See :ref:`training_callbacks`.
    n_threads : int, default=None
        Torch threads in ``fit`` and the transforms; None keeps torch's setting.
        See :ref:`performance`.
    device : str or torch.device, default="cpu"
        Where the network runs, e.g. ``"cuda:1"`` or ``"auto"`` (CUDA if
        available). See :ref:`gpu`.
    accelerator : accelerate.Accelerator, default=None
        Train data-parallel over an ``accelerate launch``; ``device`` is then
        ignored. See :ref:`distributed`.
    random_state : int, RandomState instance or None, default=None
        Seeds training's random draws; pass an int for reproducible fits. See
        :ref:`reproducibility`.
    verbose : int, default=0
        0 is silent, 1 prints a row per epoch, 2 adds a progress bar.

    Attributes
    ----------
    n_components_, n_features_in_ : int
        Width of the code, and number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during ``fit``, when they are all strings.
    mean_, scale_ : ndarray of shape (n_features_in_,)
        Per-feature mean and divisor: the network sees ``(X - mean_) / scale_``.
    init_ : str
        The initialization used: ``"pca"`` or a random one (``init`` with
        ``"auto"`` resolved). See :ref:`pca_start`.
    net_ : skorch.NeuralNet
        The trained net; ``net_.module_`` is the PyTorch autoencoder.
    encoder_, decoder_ : torch.nn.Module
        The trained encoder and decoder, on standardized float32 rows. See
        :ref:`architecture`.
    history_ : skorch.History
        Per epoch: the losses, the objective's terms, the learning rate and
        gradient norms. See :ref:`diagnostics`.
    n_iter_, n_restarts_ : int
        Number of epochs run, and of restarts after divergence.
    loss_curve_ : list of float
        Reconstruction term of the training loss at each epoch.
    stop_reason_ : str
        Why the last training call stopped (``"max_iter"``, ``"tol"``, ...).

    See Also
    --------
    sklearn.decomposition.PCA : Linear dimensionality reduction.
    sklearn.decomposition.KernelPCA : Nonlinear reduction with kernels.
    sklearn.neural_network.MLPRegressor : The MLP whose parameter names skae uses.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoencoderTransformer
    >>> X, _ = load_digits(return_X_y=True)
    >>> ae = AutoencoderTransformer(n_components=8, max_iter=5, random_state=0)
    >>> Z = ae.fit_transform(X)
    >>> Z.shape
    (1797, 8)
    >>> ae.inverse_transform(Z).shape
    (1797, 64)
    >>> bool(ae.score(X) < 0)
    True
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": [
            Interval(Integral, 1, None, closed="left"),
            "array-like",
        ],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "output_activation": [StrOptions(set(ACTIVATIONS))],
        "loss": [StrOptions({"mse", "bce"})],
        "residual": ["boolean"],
        "normalization": [StrOptions({"batch", "layer"}), None],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "init": [StrOptions({"auto", "pca", *INITS})],
        "scaling": [StrOptions({"global", "standard", "center"}), None],
        "solver": [StrOptions({"adam", "adamw", "sgd", "rmsprop"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "l1": [Interval(Real, 0, None, closed="left")],
        "activity_l1": [Interval(Real, 0, None, closed="left")],
        "n_nonzero_coefs": [Interval(Integral, 1, None, closed="left"), None],
        "contractive": [Interval(Real, 0, None, closed="left")],
        "noise": [StrOptions(set(NOISES)), None],
        "noise_level": [Interval(Real, 0, None, closed="neither")],
        "tied_weights": ["boolean"],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "lr_schedule": [StrOptions({"constant", *SCHEDULES})],
        "lr_schedule_params": [dict, None],
        "max_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
        "clip_value": [Interval(Real, 0, None, closed="neither"), None],
        "max_restarts": [Interval(Integral, 0, None, closed="left")],
        "callbacks": [list, None],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
        "device": [str, torch.device],
        "accelerator": [HasMethods(["wait_for_everyone"]), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_components=2,
        *,
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
        n_nonzero_coefs=None,
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
        self.n_nonzero_coefs = n_nonzero_coefs
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
