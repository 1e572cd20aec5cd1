"""Input validation (``check_input``, ``validate_codes``) and the parameter
checks that constraints cannot express (``check_params``)."""

from numbers import Integral

import numpy as np
from sklearn.utils import check_array
from sklearn.utils.validation import validate_data

from ._data import sources
from ._devices import parse_device
from ._training.schedules import check_schedule_params


def hidden_sizes(value):
    """Return ``hidden_layer_sizes`` as a tuple of ints (an int means one layer)."""
    sizes = (value,) if isinstance(value, Integral) else tuple(value)
    if not all(
        isinstance(h, Integral) and not isinstance(h, bool) and h > 0 for h in sizes
    ):
        raise ValueError(
            "hidden_layer_sizes must contain positive integers; "
            f"got hidden_layer_sizes={value!r}."
        )
    return tuple(int(h) for h in sizes)


def pca_start_blocker(est):
    """Why ``est`` cannot start at PCA's reconstruction, or None if it can.

    The start needs a model whose output is linear in a linear code, with the
    decoder's output layer free to start at zero. Call after ``check_params``'s
    parameter checks (``hidden_layer_sizes`` valid).
    """
    if not est._pca_init:
        return "a posterior over the code cannot take (PCA gives it no variance)"
    if est.loss == "bce":
        return "loss='bce' (a sigmoid output) cannot produce"
    if est.output_activation != "identity":
        return f"output_activation={est.output_activation!r} cannot produce"
    sizes = hidden_sizes(est.hidden_layer_sizes)
    if est.tied_weights:
        # The decoder's output layer is tied to the encoder's first layer and
        # must start at zero: its input must be zero at the start.
        if est.residual and sizes and sizes[-1] == est.n_components:
            return (
                "tied_weights=True, residual=True and a last hidden layer as wide "
                f"as the code ({est.n_components}) cannot produce"
            )
        if est.activation in ("sigmoid", "logistic"):
            return (
                f"tied_weights=True and activation={est.activation!r} (not 0 at 0) "
                "cannot produce"
            )
    return None


def resolve_init(est):
    """The initialization ``fit`` uses: ``init``, with ``"auto"`` resolved.

    ``"auto"`` is ``"pca"`` where :func:`pca_start_blocker` finds nothing in
    the way, else ``"random"`` (scaled to the activation).
    """
    if est.init != "auto":
        return est.init
    return "pca" if pca_start_blocker(est) is None else "random"


def check_input(estimator, X, reset):
    """``validate_data`` for dense, sparse and out-of-core ``X``, as a source.

    An out-of-core array is validated on its first rows only (not loaded
    whole); NaN and infinity are checked in the pass that reads ``X``.
    """
    dtype = [np.float64, np.float32]
    if sources.is_out_of_core(X):
        sample = X[: min(2, X.shape[0])] if len(X.shape) else X
        sample = sample.compute() if hasattr(sample, "compute") else sample
        sample = validate_data(
            estimator,
            np.asarray(sample),
            reset=reset,
            dtype=dtype,
            ensure_all_finite=False,
        )
        return sources.BlockArray(X, sample.dtype)
    X = validate_data(
        estimator,
        X,
        reset=reset,
        accept_sparse=["csr", "csc"],
        dtype=dtype,
        ensure_all_finite=False,
    )
    return sources.as_sparse(X)


def check_params(est):
    """Check what the constraints cannot: combinations of parameters.

    Call after ``validate_data`` has set ``n_features_in_``.
    """
    if not (isinstance(est.device, str) and est.device == "auto"):
        parse_device(est.device)
    hidden_sizes(est.hidden_layer_sizes)  # its ValueError names bad sizes
    if est.n_components > est.n_features_in_:
        raise ValueError(
            f"n_components={est.n_components} must be <= n_features="
            f"{est.n_features_in_}: the code cannot be wider than the input. "
            "Choose a smaller n_components."
        )
    k = est.n_nonzero_coefs
    if k is not None and k > est.n_components:
        raise ValueError(
            f"n_nonzero_coefs={k} must be <= n_components={est.n_components}: "
            "a row's code has n_components entries. Choose a smaller "
            "n_nonzero_coefs, or None for a dense code."
        )
    if est.loss == "bce":
        if est.scaling is not None:
            raise ValueError(
                f"loss='bce' needs the data in [0, 1] as the network sees them, "
                f"but scaling={est.scaling!r} centres them. Scale X to [0, 1] "
                "(e.g. with sklearn.preprocessing.MinMaxScaler) and set "
                "scaling=None."
            )
        if est.output_activation not in ("identity", "sigmoid", "logistic"):
            raise ValueError(
                f"loss='bce' reconstructs through a sigmoid; "
                f"output_activation={est.output_activation!r} cannot be used "
                "with it. Leave output_activation at its default."
            )
    blocker = pca_start_blocker(est)
    if est.init == "pca" and blocker is not None:
        raise ValueError(
            f"init='pca' starts the model at PCA's linear reconstruction, which "
            f"{type(est).__name__} with {blocker}. Use init='auto' (the default: "
            "PCA's start where the model can take it, a random start elsewhere) "
            "or a random init."
        )
    if est.normalization == "batch" and est.batch_size < 2:
        raise ValueError(
            f"batch_size={est.batch_size} is too small for "
            "normalization='batch', which needs at least 2 rows per batch. "
            "Use a larger batch_size or normalization='layer'."
        )
    if est.noise == "mask" and est.noise_level >= 1:
        raise ValueError(
            f"noise_level={est.noise_level} is out of range for noise='mask': "
            "it is the probability of dropping an entry and must be below 1. "
            "Pass a noise_level in (0, 1)."
        )
    if est.contractive and est.normalization == "batch":
        raise ValueError(
            f"contractive={est.contractive} cannot be combined with "
            "normalization='batch': in training, batch normalization makes each "
            "row's code depend on the other rows of its batch, so the encoder "
            "has no per-row Jacobian to penalize. Use normalization='layer' or "
            "None, or contractive=0."
        )
    check_schedule_params(
        est.lr_schedule,
        est.lr_schedule_params or {},
        est.max_iter,
        est.learning_rate_init,
    )


def validate_codes(estimator, Z, method="inverse_transform"):
    """Validate the codes given to ``method`` (width ``n_components_``)."""
    Z = check_array(
        Z, dtype=[np.float64, np.float32], input_name="X", estimator=estimator
    )
    if Z.shape[1] != estimator.n_components_:
        raise ValueError(
            f"X has {Z.shape[1]} features, but {type(estimator).__name__} is "
            f"expecting {estimator.n_components_} features as input to "
            f"{method} (n_components_)."
        )
    return Z
