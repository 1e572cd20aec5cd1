"""AutoencoderTransformer: the scikit-learn face of a PyTorch autoencoder."""

from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from ._base import BaseAutoencoder
from ._nn.layers import ACTIVATIONS, INITS
from ._nn.noise import NOISES
from ._training.schedules import SCHEDULES


class AutoencoderTransformer(BaseAutoencoder):
    """Nonlinear dimensionality reduction with a PyTorch autoencoder.

    A drop-in for :class:`sklearn.decomposition.PCA`: ``fit`` trains an
    encoder ``X -> Z`` (``Z`` has ``n_components`` columns) and a mirrored
    decoder ``Z -> X`` to minimize the squared reconstruction error;
    ``transform`` encodes and ``inverse_transform`` decodes. Training runs
    through a private :class:`skorch.NeuralNet`, kept as ``net_``.

    Read more in the :ref:`User Guide <user_guide>`.

    Parameters
    ----------
    n_components : int, default=2
        Width of the code (number of output features of ``transform``). Must be
        at most the number of features of ``X``.

    hidden_layer_sizes : array-like of int or int, default=(256, 128)
        Widths of the encoder's hidden layers, input side first. The decoder
        mirrors them. ``()`` gives a single linear layer ``X -> Z`` (with
        ``activation="identity"`` it learns PCA's subspace).

    activation : {"relu", "leaky_relu", "elu", "gelu", "selu", "tanh", \
            "sigmoid", "logistic", "identity"}, default="relu"
        Activation of the hidden layers (``"logistic"`` is an alias of
        ``"sigmoid"``, as in :class:`~sklearn.neural_network.MLPRegressor`).

    output_activation : str, default="identity"
        Activation applied to the reconstruction, one of the names accepted by
        ``activation``. The code layer is always linear. With ``loss="bce"``
        the output is a sigmoid whatever this says (``"identity"`` or
        ``"sigmoid"``; other values raise a ValueError).

    loss : {"mse", "bce"}, default="mse"
        Reconstruction term of the training objective. ``"mse"``: mean
        squared error in the network's (scaled) units, PCA's criterion.
        ``"bce"``: binary cross-entropy of a sigmoid output, computed stably
        from its logits, as in the classic Keras autoencoder for data in
        [0, 1] such as images. It needs ``scaling=None`` and ``X`` in [0, 1]
        (e.g. after :class:`~sklearn.preprocessing.MinMaxScaler`); otherwise
        ``fit`` raises a ValueError before training. Whatever the loss,
        :meth:`score_samples` is minus the squared error in input units, so
        scores compare with PCA's reconstructions.

    residual : bool, default=False
        Add a skip connection around every hidden layer (through a bias-free
        linear projection where the widths differ). Lets gradients reach the
        first layers of deep networks.

    normalization : {None, "batch", "layer"}, default=None
        Normalization in each hidden layer, before the activation: after the
        linear map in a plain layer, on the block's input in a residual one.

    dropout : float in [0, 1), default=0.0
        Dropout probability after each hidden activation (training only).

    init : {"pca", "auto", "default", "kaiming_uniform", "kaiming_normal", \
            "xavier_uniform", "xavier_normal", "lecun_normal", "orthogonal"}, \
            default="pca"
        Weight initialization. ``"pca"`` starts the model at PCA's solution:
        the encoder computes ``z = P (x - m) + f(x)`` and the decoder
        ``x_hat = m + P^T z + g(z)``, where ``P`` and ``m`` are the components
        and mean of :class:`~sklearn.decomposition.PCA` fitted on the scaled
        rows passed to ``fit`` (validation rows included; the first call's
        rows for :meth:`partial_fit`) and ``f``, ``g`` are the hidden stacks,
        whose output layers start at zero (their hidden layers as with
        ``"auto"``). Before its first step the model reconstructs exactly as
        that PCA does; training goes on from there, and ``fit`` keeps PCA's
        solution if no epoch beats it (see ``early_stopping``). It needs
        ``output_activation="identity"`` and ``loss="mse"`` (other outputs
        cannot reproduce PCA: a ValueError). The other values start from
        random weights: ``"auto"`` matches the activation, Kaiming (He) for
        the ReLU family and GELU, LeCun normal for SELU, Xavier (Glorot)
        otherwise; ``"default"`` keeps PyTorch's initialization, biases
        included; with every other choice biases start at zero. Residual
        projections (bias-free) always use Xavier. The default was chosen by
        measurement: see "skae versus PCA" in the user guide.

    scaling : {"global", "standard", "center"} or None, default="global"
        How ``X`` is standardized before training (statistics in float64);
        the reconstruction is mapped back to the input's units.
        ``"global"`` centres each feature and divides all of them by one
        scale (the root mean feature variance), so the loss is PCA's squared
        error up to a constant. ``"standard"`` divides each feature by its own
        standard deviation (every feature weighs the same). ``"center"`` only
        centres; None uses ``X`` as it is.

    solver : {"adam", "adamw", "sgd", "rmsprop"}, default="adam"
        Optimizer. ``"sgd"`` uses Nesterov momentum when ``momentum > 0``.
        Adam, AdamW and SGD use PyTorch's fused implementation (on CPU from
        torch 2.4; the ``foreach`` one before), RMSprop the ``foreach`` one.

    learning_rate_init : float, default=3e-3
        Initial learning rate.

    momentum : float in [0, 1], default=0.9
        Momentum of ``"sgd"`` and ``"rmsprop"``; ignored otherwise.

    alpha : float, default=1.0
        L2 penalty, applied by the optimizer as weight decay: the solver's
        ``weight_decay`` is ``alpha / n_train`` (``n_train`` the number of
        training rows; as in :class:`~sklearn.neural_network.MLPRegressor`
        the penalty is divided by the sample size, so the same ``alpha`` suits
        small and large data sets), on a parameter group holding the weight
        matrices only: biases and normalization parameters are never
        decayed. The coefficient is the same for every solver, so a search
        over ``solver`` compares like with like: ``"adam"``, ``"sgd"`` and
        ``"rmsprop"`` add ``alpha / n_train * W`` to the gradient (the
        gradient of ``0.5 * alpha * sum(W ** 2) / n_train``), ``"adamw"``
        shrinks the weights by ``lr * alpha / n_train`` each step, decoupled
        from its adaptive step. It is not part of ``train_loss`` and does not
        enter the gradient norms of ``history_``. With ``init="pca"`` the
        encoder's hidden layers are not decayed: they get no gradient until
        the encoder's output layer has moved from zero, and the decay alone
        would shrink them to nothing meanwhile. The default was chosen by
        measurement: see the benchmarks page.

    l1 : float, default=0.0
        L1 penalty: ``l1 * sum(abs(W)) / n_train`` over all weight matrices is
        a term of the training objective (``train_l1`` in ``history_``).
        Drives weights towards zero.

    activity_l1 : float, default=0.0
        Sparsity of the code: ``activity_l1 * mean over rows of sum(abs(z))``,
        ``z`` a training row's code, is a term of the training objective
        (``train_activity_l1`` in ``history_``). Drives code entries to zero
        (the user guide measures how many); ``l1`` penalizes the weights.

    contractive : float, default=0.0
        Contractive penalty: ``contractive`` times the mean over training rows
        of the squared Frobenius norm of the encoder's Jacobian ``dz/dx`` at
        the row (in the network's scaled units), computed exactly with
        :mod:`torch.func`, is a term of the training objective
        (``train_contractive``). Makes the code insensitive to small changes
        of the input. Each batch costs about ``n_components`` more backward
        passes through the encoder (the benchmarks page measures it). It
        cannot be combined with ``normalization="batch"``: in training, batch
        normalization makes each row's code depend on its whole batch.

    noise : {"gaussian", "mask"} or None, default=None
        Denoising: each training batch is corrupted at the encoder's input
        and the network learns to reconstruct the clean batch.
        ``"gaussian"`` adds noise of standard deviation ``noise_level``,
        in the network's scaled units (with ``scaling="global"``, relative to
        the root mean feature variance); ``"mask"`` sets each entry to 0 (the
        feature's mean after centring) with probability ``noise_level``. The
        draws come from the model's own generator (see ``random_state``).
        Validation, :meth:`transform` and the scores see clean data.

    noise_level : float, default=0.1
        Standard deviation of ``"gaussian"`` noise (> 0) or drop probability
        of ``"mask"`` noise (in (0, 1)). Ignored when ``noise=None``.

    tied_weights : bool, default=False
        Every linear layer of the decoder uses the transpose of its mirrored
        encoder layer's weight, with a bias of its own: about half the
        weights. Works with ``residual`` and ``normalization``, whose
        parameters are never tied; a residual skip projection is tied to its
        mirror's, except in the first decoder block, whose mirror (the code
        layer) has none. A tied weight is a parameter of the encoder: its
        gradient (from both uses) counts in the encoder layer's
        ``grad_norms`` in ``history_``, and once in the penalties. With
        ``init="pca"`` the decoder's PCA layer ``P^T`` is tied to the
        encoder's ``P`` as well, and the first decoder block's untied skip
        projection starts at zero; starting exactly at PCA then needs an
        activation that is 0 at 0 (not ``"sigmoid"``) and, with
        ``residual=True``, a last hidden layer of another width than the
        code: other layouts raise a ValueError (use ``init="auto"``).

    batch_size : int, default=96
        Rows per mini-batch (capped by the number of training rows). The
        default was chosen by measurement (see "skae versus PCA"): more,
        smaller steps per epoch beat PCA within the first epoch and end
        with a lower error than batches of 256. A
        trailing batch of fewer than 16 rows joins the batch before it, so
        that no tiny batch makes the fitted model depend on the thread count
        (see ``random_state``).

    max_iter : int, default=200
        Maximum number of epochs.

    tol : float, default=1e-4
        Minimum decrease of the monitored loss (validation loss with
        ``early_stopping``, training loss otherwise), in standardized units,
        that counts as an improvement.

    n_iter_no_change : int, default=10
        Training stops after this many epochs without an improvement of
        ``tol``. When ``max_iter`` ends training first, a
        :class:`~sklearn.exceptions.ConvergenceWarning` is raised if the
        monitored loss fell by more than 1 % over the last
        ``n_iter_no_change`` epochs (more epochs would then lower it by a
        margin that matters); a smaller gain counts as converged.

    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the rows (inside a
        cross-validation fold too: the network trains on the rest), monitor
        the validation loss (the reconstruction term, plus the
        ``activity_l1`` and ``contractive`` terms when they are on: the
        objective trained on, without the penalties on the weights) and
        restore the weights
        of its best epoch at the end of ``fit``, whether training stopped
        early or ran ``max_iter`` epochs (skorch's
        ``EarlyStopping(load_best=True)``). The weights training starts from
        count as a candidate: a trained epoch replaces them only if its
        validation loss is lower by 0.5 % (and ``tol``) and lower in a
        one-sided paired t-test over the validation rows at level 0.05.
        From ``init="pca"`` the model is therefore never worse than PCA on
        the validation rows, and in practice on new rows (see "skae versus
        PCA"). Without it, training stops on the training loss (like
        ``MLPRegressor``), and the starting weights come back only if the
        final error on the training rows is higher than theirs. As in
        ``MLPRegressor``, it applies to ``fit`` only: :meth:`partial_fit`
        trains on every row it is given. The default was chosen by
        measurement (see "skae versus PCA").

    validation_fraction : float in (0, 1), default=0.1
        Share of rows held out when ``early_stopping=True``.

    lr_schedule : {"constant", "exponential", "linear", "step", "cosine", \
            "warm_restarts", "plateau"}, default="plateau"
        Learning-rate schedule, stepped after every epoch (skorch's
        ``LRScheduler`` driving PyTorch's scheduler). Defaults per schedule:
        exponential ``gamma=0.97``; linear ``end_factor=0.01`` over
        ``max_iter``; step ``step_size=max_iter // 3, gamma=0.1``; cosine
        ``T_max=max_iter``; warm_restarts ``T_0=ceil(max_iter / 7), T_mult=2``;
        plateau ``factor=0.5, patience=5`` on the monitored loss. The default
        ``"plateau"`` halves the rate whenever the validation loss stalls,
        which lets early stopping end on a converged model (measured, see
        "skae versus PCA": a lower error than a constant rate, in fewer
        epochs).

    lr_schedule_params : dict, default=None
        Settings passed to the PyTorch scheduler, overriding the defaults
        above (e.g. ``{"gamma": 0.9}``). Unknown keys, and values under which
        the learning rate would turn negative or grow above
        ``learning_rate_init`` (``gamma=2``), raise a ValueError at ``fit``.

    max_grad_norm : float, default=None
        Clip the global L2 norm of the gradient to this value before each step.

    clip_value : float, default=None
        Clip every gradient element into ``[-clip_value, clip_value]``.

    max_restarts : int, default=3
        When the loss or a gradient norm becomes NaN or infinite, the epoch
        is dropped, the weights roll back to those of the lowest training
        loss so far, the optimizer's state is cleared, every learning rate
        (the schedule's too, which keeps its position) is multiplied by 0.1
        and training goes on, at most this many times; then
        :class:`~skae.exceptions.TrainingDivergedError` is raised and the
        estimator keeps the state it had before the call.

    callbacks : list of skorch.callbacks.Callback or (str, Callback), default=None
        Extra skorch callbacks for the net, after skae's own. Their names
        must differ from skae's (``"lr"``, ``"gradient_monitor"``,
        ``"grad_norm_clipping"``, ``"grad_value_clipping"``,
        ``"train_<term>"`` for each term of the objective, ``"guard"``,
        ``"lr_scheduler"``, ``"early_stopping"``, ``"progress_bar"``) and
        skorch's (``"epoch_timer"``, ``"train_loss"``, ``"valid_loss"``,
        ``"print_log"``). A callback that stops training by raising
        ``KeyboardInterrupt`` (skorch's ``EarlyStopping`` does) sets
        ``stop_reason_`` to ``"callback"``.

    n_threads : int, default=None
        Torch intra-op threads used inside ``fit`` and the transform methods;
        the previous setting is restored afterwards, also when several calls
        overlap in threads. None leaves torch's setting alone: it follows
        ``OMP_NUM_THREADS``, which joblib's workers set to their share of the
        cores, so grid searches do not oversubscribe. Results do not depend
        on it (see ``random_state``).

    device : str or torch.device, default="cpu"
        Where the network trains and runs: ``"cpu"``, ``"cuda"``,
        ``"cuda:N"``, ``"mps"``, ``"xpu"`` (``"xpu:N"``), a
        :class:`torch.device` of those types, or ``"auto"`` (CUDA when
        available, else CPU). A device this machine does not have raises a
        ValueError naming it before training starts. Rows move to the device
        batch by batch (or once, for in-memory arrays). On MPS, which has no
        float64, float64 input is transformed on CPU. A model saved or
        pickled on a device this machine lacks loads on CPU, with a warning.

    accelerator : accelerate.Accelerator, default=None
        Data-parallel training over the processes of a Hugging Face
        Accelerate launch (``accelerate launch`` on several GPUs, or CPU
        processes): every process calls ``fit`` with the same data; each
        mini-batch of ``batch_size`` rows is split between the processes
        and their gradients are averaged, so the model is the one-process
        model up to float rounding, on every process. The accelerator's
        device is used and ``device`` is ignored; ``random_state=None``
        takes the main process's seed everywhere. ``transform`` and the
        other methods run on each process's own rows. :func:`skae.save`
        writes from the main process only. Not saved by :func:`skae.save`
        (loaded as None). See the user guide's :ref:`distributed` page.

    random_state : int, RandomState instance or None, default=None
        Seeds weight initialization, dropout, batch order and the validation
        split, each through a generator of the model's own (on the training
        device for dropout): torch's and numpy's global random states are
        never used or changed (None draws fresh entropy from the OS), so fits
        running at once in threads do not disturb each other. Pass an int for
        reproducible output: the same data and ``random_state`` give
        bit-identical models on the same machine, whatever ``X``'s memory
        layout and, on CPU, whatever the number of torch threads (1 or 2 in
        a worker of ``FeatureUnion(n_jobs=2)``), provided ``batch_size >=
        16`` and at least 16 training rows (see the reproducibility guide).

    verbose : int, default=0
        0 is silent, 1 prints a table row per epoch (losses, learning rate,
        duration), 2 adds a progress bar within each epoch.

    Attributes
    ----------
    n_components_ : int
        Width of the code.

    n_features_in_ : int
        Number of features seen during ``fit``.

    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during ``fit``, when ``X`` has string column
        names.

    mean_ : ndarray of shape (n_features_in_,)
        Per-feature mean subtracted before training (zeros with
        ``scaling=None``).

    scale_ : ndarray of shape (n_features_in_,)
        Per-feature divisor applied after centring (all equal with
        ``scaling="global"``).

    net_ : skorch.NeuralNet
        The trained net; ``net_.module_`` is the PyTorch autoencoder.

    encoder_ : torch.nn.Module
        The trained encoder (``net_.module_.encoder``), in eval mode: maps
        standardized rows, ``(X - mean_) / scale_`` as a float32 tensor, to
        codes. For users who want to keep working in PyTorch (fine-tune it,
        put it in front of another network); :meth:`transform` follows
        changes made to its weights.

    decoder_ : torch.nn.Module
        The trained decoder (``net_.module_.decoder``): codes to standardized
        reconstructions (multiply by ``scale_`` and add ``mean_`` for input
        units).

    history_ : skorch.History
        One row per epoch: ``train_loss`` (the objective), one
        ``train_<term>`` per term of the objective (``train_reconstruction``
        always, ``train_l1`` with ``l1``, ...; their sum is ``train_loss``),
        ``valid_loss`` (the validated terms on the validation rows, with
        ``early_stopping``: the reconstruction, and ``activity_l1``,
        ``contractive`` or the KL term when they are on, each then also
        recorded as ``valid_<term>``), ``lr``, ``grad_norms`` (layer name -> mean
        gradient L2 norm, before clipping) and ``dur``. An epoch that
        diverged is not kept; the epoch run after a restart has ``restart``
        (the number of restarts just before it).

    n_iter_ : int
        Number of epochs run (kept in ``history_``).

    loss_curve_ : list of float
        Reconstruction term of the training loss (standardized units) at
        each epoch: the training error on the same footing as
        ``valid_loss``, without the penalties.

    n_restarts_ : int
        Number of restarts after divergence.

    stop_reason_ : str
        Why the last training call stopped: ``"max_iter"`` (all its epochs
        ran; a :meth:`partial_fit` call is one), ``"tol"`` (the training loss
        did not improve by ``tol`` for ``n_iter_no_change`` epochs),
        ``"early_stopping"`` (likewise, the validation loss), ``"callback"``
        (a user callback stopped training) or ``"interrupted"`` (Ctrl-C).
        A run that diverges beyond ``max_restarts`` raises
        :class:`~skae.exceptions.TrainingDivergedError`, whose
        ``stop_reason`` is ``"diverged"``.

    See Also
    --------
    sklearn.decomposition.PCA : Linear dimensionality reduction.
    sklearn.decomposition.KernelPCA : Nonlinear reduction with kernels.
    sklearn.neural_network.MLPRegressor : The multi-layer perceptron whose
        parameter names skae follows.

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
        "init": [StrOptions(set(INITS))],
        "scaling": [StrOptions({"global", "standard", "center"}), None],
        "solver": [StrOptions({"adam", "adamw", "sgd", "rmsprop"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "l1": [Interval(Real, 0, None, closed="left")],
        "activity_l1": [Interval(Real, 0, None, closed="left")],
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
        init="pca",
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

    # ------------------------------------------------------------------ fit
