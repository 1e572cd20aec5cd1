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
    sizes = hidden_sizes(est.hidden_layer_sizes)
    if est.n_components > est.n_features_in_:
        raise ValueError(
            f"n_components={est.n_components} must be <= n_features="
            f"{est.n_features_in_}: the code cannot be wider than the input. "
            "Choose a smaller n_components."
        )
    k = getattr(est, "n_nonzero_coefs", None)  # the VAE's code is dense
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
    if est.init == "pca" and (est.loss == "bce" or est.output_activation != "identity"):
        what = (
            "loss='bce' (a sigmoid output)"
            if est.loss == "bce"
            else f"output_activation={est.output_activation!r}"
        )
        raise ValueError(
            f"init='pca' starts the model at PCA's linear reconstruction, which "
            f"{what} cannot produce. Use output_activation='identity' and "
            "loss='mse' with init='pca', or another init."
        )
    if est.init == "pca" and not est._pca_init:
        raise ValueError(
            f"init='pca' is not available for {type(est).__name__}: PCA gives "
            "no posterior variance to start from. Use init='auto'."
        )
    identity_skip = est.residual and sizes and sizes[-1] == est.n_components
    if (
        est.init == "pca"
        and est.tied_weights
        and (identity_skip or est.activation in ("sigmoid", "logistic"))
    ):
        what = (
            "residual=True and a last hidden layer as wide as the code "
            f"({est.n_components})"
            if identity_skip
            else f"activation={est.activation!r}"
        )
        raise ValueError(
            f"tied_weights=True with init='pca' and {what} cannot start at "
            "PCA's solution: the decoder's output layer is tied to the "
            "encoder's first layer, and its input is not zero at the start. "
            "Use init='auto' with this layout, or an activation that is 0 at "
            "0 (e.g. 'relu', 'tanh') and a last hidden layer of another width."
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
