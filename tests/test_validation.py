"""Bad input: AutoencoderTransformer fails like PCA, early and with clear messages."""

import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from skae import AutoencoderTransformer
from tests.conftest import PLAIN

pd = pytest.importorskip("pandas")

N_FEATURES = 5


def _fast(**params):
    defaults = dict(
        n_components=2,
        hidden_layer_sizes=(4,),
        max_iter=2,
        batch_size=8,
        random_state=0,
    )
    return AutoencoderTransformer(**{**defaults, **params})


def _data(n=20, p=N_FEATURES, dtype=np.float64, seed=0):
    return np.random.RandomState(seed).normal(size=(n, p)).astype(dtype)


@pytest.fixture(scope="module")
def fitted():
    return _fast().fit(_data())


@pytest.fixture(scope="module")
def fitted_df():
    X = pd.DataFrame(_data(), columns=list("abcde"))
    return _fast().fit(X), X


def _snapshot(estimator, X):
    return estimator.transform(X), len(estimator.history_), dict(estimator.__dict__)


def _assert_unchanged(estimator, X, snapshot):
    Z, n_epochs, state = snapshot
    assert np.array_equal(estimator.transform(X), Z)
    assert len(estimator.history_) == n_epochs
    assert estimator.__dict__.keys() == state.keys()
    assert all(estimator.__dict__[k] is v for k, v in state.items())


def _with(X, value):
    X = X.copy()
    X[3, 1] = value
    return X


# ------------------------------------------------------------------ 1. NaN / inf

NAN_MSG = "Input X contains NaN"
INF_MSG = r"Input X contains infinity or a value too large for dtype\('float(32|64)'\)"


@pytest.mark.parametrize("value, match", [(np.nan, NAN_MSG), (np.inf, INF_MSG)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_finite_fit_raises_before_training(value, match, dtype):
    X = _with(_data(dtype=dtype), value)
    with pytest.raises(ValueError, match=match):
        PCA(2).fit(X)
    ae = _fast()
    with pytest.raises(ValueError, match=match):
        ae.fit(X)
    assert not hasattr(ae, "net_")  # nothing trained, nothing kept


@pytest.mark.parametrize("value, match", [(np.nan, NAN_MSG), (-np.inf, INF_MSG)])
@pytest.mark.parametrize("method", ["fit", "partial_fit", "fit_transform"])
def test_non_finite_refit_leaves_model_unchanged(value, match, method):
    X = _data()
    ae = _fast().fit(X)
    before = _snapshot(ae, X)
    with pytest.raises(ValueError, match=match):
        getattr(ae, method)(_with(X, value))
    _assert_unchanged(ae, X, before)


@pytest.mark.parametrize("value, match", [(np.nan, NAN_MSG), (np.inf, INF_MSG)])
@pytest.mark.parametrize("method", ["transform", "score", "score_samples"])
def test_non_finite_at_inference(fitted, value, match, method):
    X = _data()
    before = _snapshot(fitted, X)
    with pytest.raises(ValueError, match=match):
        getattr(fitted, method)(_with(X, value))
    _assert_unchanged(fitted, X, before)


@pytest.mark.parametrize("method", ["transform", "score", "score_samples"])
def test_values_beyond_float32_at_inference_are_a_clear_error(fitted, method):
    # Finite float64 rows that overflow the float32 network once
    # standardized: an error naming the cause, not codes of NaN.
    X = _data().astype(np.float64)
    X[3, 1] = 1e300
    with pytest.raises(ValueError, match="too large for the network"):
        getattr(fitted, method)(X)


@pytest.mark.parametrize(
    "value, match", [(np.nan, "contains NaN"), (np.inf, "contains infinity")]
)
def test_non_finite_at_inverse_transform(fitted, value, match):
    Z = _with(fitted.transform(_data()), value)
    with pytest.raises(ValueError, match=match):
        fitted.inverse_transform(Z)


def test_refit_that_diverges_leaves_model_unchanged():
    X = _data()
    ae = _fast().fit(X)
    before = _snapshot(ae, X)
    ae.set_params(solver="sgd", learning_rate_init=1e30, max_restarts=1)
    with pytest.raises(ValueError, match="Training diverged"):
        ae.fit(X)
    Z, n_epochs, _ = before
    assert np.array_equal(ae.transform(X), Z)
    assert len(ae.history_) == n_epochs


# ------------------------------------------------------------------ 2. shapes

EMPTY_CASES = [
    (np.empty((0, N_FEATURES)), r"Found array with 0 sample\(s\) \(shape=\(0, 5\)\)"),
    (np.empty((6, 0)), r"Found array with 0 feature\(s\) \(shape=\(6, 0\)\)"),
    (np.ones(N_FEATURES), "Expected 2D array, got 1D array instead"),
    ([], "Expected 2D array, got 1D array instead"),
    (np.ones((4, 3, 2)), "Found array with dim 3"),
    (3.0, "Expected 2D array, got scalar array instead"),
]


@pytest.mark.parametrize("X, match", EMPTY_CASES)
def test_bad_shapes_at_fit_match_pca(X, match):
    with pytest.raises(ValueError, match=match):
        PCA(1).fit(X)
    with pytest.raises(ValueError, match=match):
        _fast(n_components=1).fit(X)


@pytest.mark.parametrize("X, match", EMPTY_CASES)
@pytest.mark.parametrize("method", ["transform", "inverse_transform", "score_samples"])
def test_bad_shapes_after_fit(fitted, X, match, method):
    with pytest.raises(ValueError, match=match):
        getattr(fitted, method)(X)


@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize("normalization", [None, "batch"])
@pytest.mark.parametrize("n_samples", [1, 2, 3, 4])
def test_few_samples_train_or_name_the_count(n_samples, early_stopping, normalization):
    X = _data(n=n_samples)
    ae = _fast(early_stopping=early_stopping, normalization=normalization)
    too_few = n_samples < 2 or (early_stopping and n_samples < 3)
    if too_few:
        with pytest.raises(ValueError, match=rf"n_samples={n_samples} is too few"):
            ae.fit(X)
        return
    Z = ae.fit_transform(X)
    assert Z.shape == (n_samples, 2) and np.isfinite(Z).all()
    assert np.isfinite(ae.score_samples(X)).all()


def test_one_sample_at_inference_is_fine(fitted):
    assert fitted.transform(_data(n=1)).shape == (1, 2)
    assert fitted.inverse_transform(np.zeros((1, 2))).shape == (1, N_FEATURES)


def test_partial_fit_with_one_sample_names_the_count(fitted):
    X = _data()
    ae = _fast().fit(X)
    before = _snapshot(ae, X)
    with pytest.raises(ValueError, match="n_samples=1 is too few"):
        ae.partial_fit(X[:1])
    _assert_unchanged(ae, X, before)


# ------------------------------------------------------------------ 3. n_components


@pytest.mark.parametrize("n_components", [0, -1, 1.5, 2.0, "2", None, [2]])
def test_invalid_n_components_type_or_range(n_components):
    ae = AutoencoderTransformer(n_components)  # __init__ never raises
    ae.set_params(n_components=n_components)  # nor set_params
    with pytest.raises(InvalidParameterError, match="'n_components' parameter"):
        ae.fit(_data())


def test_n_components_larger_than_n_features():
    with pytest.raises(ValueError, match=r"n_components=6 must be <= n_features=5"):
        _fast(n_components=6).fit(_data())


def test_n_components_equal_to_n_features_and_numpy_int():
    assert _fast(n_components=5).fit_transform(_data()).shape == (20, 5)
    assert _fast(n_components=np.int64(3)).fit_transform(_data()).shape == (20, 3)


def test_n_components_bool_is_treated_as_int():
    # bool is an Integral, as for PCA: True means 1.
    ae = _fast(n_components=True)
    assert ae.fit_transform(_data()).shape == (20, 1)
    assert ae.n_components_ == 1 and type(ae.n_components_) is int


# ------------------------------------------------------------------ 4. widths


@pytest.mark.parametrize(
    "method", ["transform", "score", "score_samples", "partial_fit"]
)
def test_wrong_number_of_features(fitted, method):
    X = _data()
    ae = _fast().fit(X)
    before = _snapshot(ae, X)
    with pytest.raises(
        ValueError,
        match="X has 3 features, but AutoencoderTransformer is expecting 5 features "
        "as input",
    ):
        getattr(ae, method)(X[:, :3])
    _assert_unchanged(ae, X, before)


@pytest.mark.parametrize("width", [1, 3, 5])
def test_inverse_transform_wrong_width(fitted, width):
    with pytest.raises(
        ValueError,
        match=f"X has {width} features, but AutoencoderTransformer is expecting 2 "
        "features as input to inverse_transform",
    ):
        fitted.inverse_transform(np.zeros((4, width)))


# ------------------------------------------------------------------ 5. feature names


@pytest.mark.parametrize("method", ["transform", "score_samples"])
def test_renamed_columns(fitted_df, method):
    ae, X = fitted_df
    with pytest.raises(
        ValueError,
        match=r"(?s)The feature names should match those that were passed during "
        r"fit.*Feature names unseen at fit time:\n- z",
    ):
        getattr(ae, method)(X.rename(columns={"a": "z"}))


def test_reordered_columns(fitted_df):
    ae, X = fitted_df
    with pytest.raises(ValueError, match="Feature names must be in the same order"):
        ae.transform(X[list("edcba")])


def test_fitted_on_dataframe_transform_ndarray_warns(fitted_df):
    ae, X = fitted_df
    with pytest.warns(
        UserWarning,
        match="X does not have valid feature names, but AutoencoderTransformer was "
        "fitted with feature names",
    ):
        Z = ae.transform(X.to_numpy())
    assert np.array_equal(Z, ae.transform(X))


def test_fitted_on_ndarray_transform_dataframe_warns(fitted):
    X = pd.DataFrame(_data(), columns=list("abcde"))
    with pytest.warns(
        UserWarning,
        match="X has feature names, but AutoencoderTransformer was fitted without "
        "feature names",
    ):
        Z = fitted.transform(X)
    assert np.array_equal(Z, fitted.transform(X.to_numpy()))


def test_inverse_transform_accepts_dataframe_codes(fitted_df):
    ae, X = fitted_df
    codes = pd.DataFrame(ae.transform(X), columns=ae.get_feature_names_out())
    assert np.array_equal(
        ae.inverse_transform(codes), ae.inverse_transform(codes.to_numpy())
    )


@pytest.mark.parametrize("as_frame", [False, True])
def test_inverse_transform_of_read_only_codes_does_not_warn(as_frame):
    X = pd.DataFrame(_data(), columns=list("abcde"))
    ae = _fast().fit(X)
    if as_frame:  # pandas output, as in a pipeline with set_output
        codes = ae.set_output(transform="pandas").transform(X)
    else:
        codes = ae.transform(X)
        codes.flags.writeable = False
    warn_always = torch.is_warn_always_enabled()
    torch.set_warn_always(True)  # torch warns once per process otherwise
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ae.inverse_transform(codes)
    finally:
        torch.set_warn_always(warn_always)


# ------------------------------------------------------------------ 6. dtypes


def test_object_dtype_with_numbers_is_converted():
    X = _data()
    Z = _fast().fit_transform(X.astype(object))
    assert Z.dtype == np.float64
    assert np.array_equal(Z, _fast().fit_transform(X))


@pytest.mark.parametrize(
    "X, error, match",
    [
        (
            np.array([["a", "b"], ["c", "d"]] * 3, dtype=object),
            ValueError,
            "could not convert string to float: 'a'",
        ),
        (np.array([["1.5", "x"]] * 6), ValueError, "could not convert string to float"),
        (
            np.array([[{"a": 1}, {"b": 2}]] * 6, dtype=object),
            TypeError,
            "float.. argument must be a string or a real number, not 'dict'",
        ),
    ],
)
def test_non_numeric_data_raises(X, error, match):
    with pytest.raises(error, match=match):
        PCA(1).fit(X)
    with pytest.raises(error, match=match):
        _fast(n_components=1).fit(X)


@pytest.mark.parametrize("method", ["fit", "transform", "inverse_transform"])
def test_complex_data_not_supported(fitted, method):
    X = _data() + 1j
    if method == "inverse_transform":
        X = X[:, :2]
    estimator = _fast() if method == "fit" else fitted
    with pytest.raises(ValueError, match="Complex data not supported"):
        getattr(estimator, method)(X)


@pytest.mark.parametrize(
    "X",
    [
        _data() > 0,
        (_data() * 10).astype(np.int64),
        (_data() * 10).astype(np.int8),
        (_data() * 10).astype(np.uint16),
        _data().astype(np.float16),
    ],
    ids=["bool", "int64", "int8", "uint16", "float16"],
)
def test_bool_int_and_float16_give_float64(X):
    ae = _fast()
    Z = ae.fit_transform(X)
    assert Z.dtype == np.float64 and np.isfinite(Z).all()
    assert ae.inverse_transform(Z).dtype == np.float64
    assert ae.score_samples(X).dtype == np.float64


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_dtype_preserved(dtype):
    X = _data(dtype=dtype)
    ae = _fast().fit(X)
    Z = ae.transform(X)
    assert Z.dtype == dtype
    assert ae.inverse_transform(Z).dtype == dtype
    assert ae.score_samples(X).dtype == np.float64  # accumulated in float64


# ------------------------------------------------------------------ 7. sparse

SPARSE_MSG = "Sparse data was passed.*but dense data is required"


@pytest.mark.parametrize("kind", [sp.csr_matrix, sp.csc_matrix, sp.coo_array])
def test_sparse_accepted_like_its_dense_twin(kind):
    X = sp.random(20, N_FEATURES, density=0.5, random_state=0)
    sparse, dense = kind(X), X.toarray()
    ae = _fast()
    assert ae.__sklearn_tags__().input_tags.sparse
    assert np.array_equal(ae.fit_transform(sparse), _fast().fit_transform(dense))
    assert np.array_equal(ae.score_samples(sparse), ae.score_samples(dense))


def test_sparse_codes_rejected_by_inverse_transform(fitted):
    with pytest.raises(TypeError, match=SPARSE_MSG):
        fitted.inverse_transform(sp.csr_matrix(np.ones((3, 2))))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_sparse_non_finite_raises_before_training(bad):
    X = sp.random(20, N_FEATURES, density=0.5, format="csr", random_state=0)
    X.data[3] = bad
    ae = _fast()
    with pytest.raises(ValueError, match="Input X contains (NaN|infinity)"):
        ae.fit(X)
    assert not hasattr(ae, "net_")


# ------------------------------------------------------------------ 8. large values


@pytest.mark.parametrize("scale", [1e30, 1e39])
@pytest.mark.parametrize("scaling", ["global", "standard"])
def test_huge_float64_values_finite_through_float64_scaling(scale, scaling):
    X = _data() * scale
    ae = _fast(scaling=scaling).fit(X)
    Z = ae.transform(X)
    X_back = ae.inverse_transform(Z)
    scores = ae.score_samples(X)
    assert np.isfinite(Z).all() and np.isfinite(X_back).all()
    assert np.isfinite(scores).all() and (scores <= 0).all()
    # The reconstruction is in the input's units.
    assert np.abs(X_back).max() > scale / 100


@pytest.mark.parametrize("scaling", [None, "center"])
def test_values_beyond_float32_without_scaling_raise(scaling):
    ae = _fast(scaling=scaling)
    with pytest.raises(ValueError, match=r"X has values up to .* after scaling"):
        ae.fit(_data() * 1e39)
    assert not hasattr(ae, "net_")


@pytest.mark.parametrize("scaling", [None, "center"])
def test_values_near_float32_limit_without_scaling_raise(scaling):
    # 1e30 fits in float32 but its square does not: refused before training.
    ae = _fast(scaling=scaling, max_restarts=0)
    with pytest.raises(ValueError, match=r"X has values up to 2.*e\+30 after scaling"):
        ae.fit(_data() * 1e30)
    assert not hasattr(ae, "history_")


def test_huge_float32_values_finite():
    X = (_data() * 1e30).astype(np.float32)
    ae = _fast().fit(X)
    Z = ae.transform(X)
    assert Z.dtype == np.float32 and np.isfinite(Z).all()
    assert np.isfinite(ae.inverse_transform(Z)).all()
    # Squared errors of ~1e60 overflow float32: scores are float64.
    scores = ae.score_samples(X)
    assert scores.dtype == np.float64 and np.isfinite(scores).all()


def test_exploded_training_never_gives_non_finite_outputs():
    # Near-constant data, heavy dropout and SGD: the loss explodes to ~1e7
    # while staying finite. The model's outputs must stay finite.
    X = np.array(
        [
            [1.0009229, 0.99779737, 0.99952036],
            [0.9989107, 0.9990873, 0.9989821],
            [0.9995332, 0.9991622, 1.000477],
            [0.9988539, 1.0025522, 1.000494],
        ],
        dtype=np.float32,
    )
    ae = AutoencoderTransformer(
        1,
        hidden_layer_sizes=(5,),
        activation="elu",
        dropout=0.9,
        solver="sgd",
        learning_rate_init=1e-2,
        alpha=0.0,
        batch_size=2,
        max_iter=2,
        max_restarts=0,
        random_state=0,
        **PLAIN,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ae.fit(X)
    assert max(ae.history_[:, "train_loss"]) > 1e6  # it did explode
    assert np.isfinite(ae.transform(X)).all()
    assert np.isfinite(ae.inverse_transform(ae.transform(X))).all()
    assert np.isfinite(ae.score_samples(X)).all()


def test_values_too_large_for_float64_variance():
    # Deviations are divided by their peak before squaring: finite statistics.
    X = _data() * 1e200
    ae = _fast().fit(X)
    assert np.isfinite(ae.scale_).all() and ae.scale_[0] > 1e199
    assert np.isfinite(ae.inverse_transform(ae.transform(X))).all()


# ------------------------------------------------------------------ 9. layouts


def _layouts(tmp_path):
    X = _data()
    read_only = X.copy()
    read_only.flags.writeable = False
    memmap = np.memmap(tmp_path / "X.dat", dtype=np.float64, mode="w+", shape=X.shape)
    memmap[:] = X
    memmap.flush()
    memmap = np.memmap(tmp_path / "X.dat", dtype=np.float64, mode="r", shape=X.shape)
    return X, {
        "read_only": read_only,
        "memmap": memmap,
        "fortran": np.asfortranarray(X),
        "fortran32": np.asfortranarray(X.astype(np.float32)),
        "strided": np.repeat(X, 2, axis=1)[:, ::2],
    }


@pytest.mark.parametrize(
    "layout", ["read_only", "memmap", "fortran", "fortran32", "strided"]
)
def test_layouts_work_and_input_unchanged(tmp_path, layout):
    X, layouts = _layouts(tmp_path)
    data = layouts[layout]
    copy = np.array(data, copy=True)
    ae = _fast().fit(data)
    Z = ae.transform(data)
    X_back = ae.inverse_transform(Z)
    scores = ae.score_samples(data)
    ae.partial_fit(data)
    assert np.array_equal(data, copy)
    assert Z.dtype == data.dtype and np.isfinite(Z).all()
    assert X_back.shape == data.shape and np.isfinite(scores).all()
    # Same numbers, other memory layout: same model up to rounding.
    reference = _fast().fit(X.astype(data.dtype)).transform(X.astype(data.dtype))
    np.testing.assert_allclose(Z, reference, rtol=1e-4, atol=1e-5)


def test_read_only_and_c_contiguous_give_identical_output():
    X = _data()
    read_only = X.copy()
    read_only.flags.writeable = False
    assert np.array_equal(
        _fast().fit(read_only).transform(read_only), _fast().fit(X).transform(X)
    )


def test_inverse_transform_leaves_codes_unchanged(fitted):
    Z = np.asfortranarray(fitted.transform(_data()))
    Z.flags.writeable = False
    copy = Z.copy()
    fitted.inverse_transform(Z)
    assert np.array_equal(Z, copy)


# ------------------------------------------------------------------ 10. not fitted


@pytest.mark.parametrize(
    "method", ["transform", "inverse_transform", "score", "score_samples"]
)
def test_not_fitted(method):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        getattr(_fast(), method)(_data())


def test_not_fitted_feature_names_out():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        _fast().get_feature_names_out()


# ------------------------------------------------------------------ other parameters


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_without_cuda_raises_before_training(device):
    ae = _fast(device=device)
    with pytest.raises(
        ValueError,
        match=re.escape(f"device='{device}' but CUDA is not available"),
    ):
        ae.fit(_data())
    assert not hasattr(ae, "net_")


def test_unknown_device():
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda', 'cuda:N'"):
        _fast(device="tpu").fit(_data())


def test_unknown_lr_schedule_params_keys():
    ae = _fast(lr_schedule="exponential", lr_schedule_params={"gama": 0.9, "zzz": 1})
    with pytest.raises(
        ValueError,
        match=r"lr_schedule_params has keys \['gama', 'zzz'\] that ExponentialLR",
    ):
        ae.fit(_data())


def test_lr_schedule_params_with_constant_schedule():
    with pytest.raises(ValueError, match="lr_schedule_params must be empty"):
        _fast(lr_schedule="constant", lr_schedule_params={"gamma": 0.5}).fit(_data())


@pytest.mark.parametrize(
    "schedule, params",
    [("step", {"step_size": 0}), ("exponential", {"gamma": "x"})],
)
def test_bad_lr_schedule_params_values(schedule, params):
    ae = _fast(lr_schedule=schedule, lr_schedule_params=params)
    with pytest.raises(ValueError, match="lr_schedule_params"):
        ae.fit(_data())


@pytest.mark.parametrize("sizes", [(8, 0), (8, -2), [4.0], (4, "8"), (4, 2.5)], ids=str)
def test_bad_hidden_layer_sizes(sizes):
    with pytest.raises(ValueError, match="hidden_layer_sizes must contain positive"):
        _fast(hidden_layer_sizes=sizes).fit(_data())


@pytest.mark.parametrize("sizes", [0, -3, "abc", None])
def test_bad_hidden_layer_sizes_type(sizes):
    with pytest.raises(InvalidParameterError, match="'hidden_layer_sizes' parameter"):
        _fast(hidden_layer_sizes=sizes).fit(_data())


@pytest.mark.parametrize("sizes", [(), 3, [3, 2], np.array([3, 2])], ids=str)
def test_good_hidden_layer_sizes(sizes):
    assert _fast(hidden_layer_sizes=sizes).fit_transform(_data()).shape == (20, 2)


def test_batch_size_one_with_batch_norm_names_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        _fast(batch_size=1, normalization="batch").fit(_data())


@pytest.mark.parametrize(
    "params",
    [
        {"activation": "swish"},
        {"dropout": 1.0},
        {"learning_rate_init": 0},
        {"learning_rate_init": float("nan")},
        {"scaling": "minmax"},
        {"max_iter": 0},
        {"batch_size": 0},
        {"lr_schedule": "onecycle"},
    ],
    ids=str,
)
def test_invalid_params_raise_at_fit_only(params):
    ae = AutoencoderTransformer(**params)  # __init__ never raises
    ae.set_params(**params)  # nor set_params
    name = next(iter(params))
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter"):
        ae.fit(_data())


# ------------------------------------------ fast path of transform's validation


def _ndarray_layouts(X):
    yield X
    yield np.asfortranarray(X)
    yield np.hstack([X, X])[:, ::2]  # strided
    frozen = X.copy()
    frozen.flags.writeable = False
    yield frozen
    yield np.broadcast_to(X[:1], X.shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_path_returns_what_validate_data_returns(fitted, dtype):
    # transform skips validate_data for plain float ndarrays of the right
    # width (model fitted without feature names): it must hand on exactly
    # what validate_data would, and give the same codes.
    from sklearn.utils.validation import validate_data

    for X in _ndarray_layouts(_data(dtype=dtype)):
        expected = validate_data(
            fitted,
            X,
            reset=False,
            dtype=[np.float64, np.float32],
            ensure_all_finite=False,
        )
        got = fitted._validate_rows(X)
        assert got is expected or (
            got.dtype == expected.dtype
            and got.flags.c_contiguous == expected.flags.c_contiguous
            and np.array_equal(got, expected)
        )
        assert np.array_equal(fitted.transform(X), fitted.transform(X.copy()))


def test_fast_path_keeps_feature_name_checks(fitted_df):
    ae, X = fitted_df
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        ae.transform(X.to_numpy())


@pytest.mark.parametrize(
    "callbacks, match",
    [
        ([1], "callbacks must hold skorch callbacks"),
        ([("x", 3)], "callbacks must hold skorch callbacks"),
        ([("lr", None)], "callbacks must hold skorch callbacks"),
        ([("lr_scheduler", "Callback")], "callbacks must hold"),
        ([("a", "b", "c")], "callbacks must hold"),
    ],
)
def test_bad_callbacks_fail_before_training(callbacks, match):
    from unittest.mock import patch

    ae = _fast(callbacks=callbacks)
    with (
        patch("skae._base.train") as train,
        pytest.raises(ValueError, match=match),
    ):
        ae.fit(_data())
    train.assert_not_called()


@pytest.mark.parametrize(
    "name", ["lr", "penalties", "early_stopping", "lr_scheduler", "print_log"]
)
def test_callback_names_of_skae_and_skorch_are_reserved(name):
    from skorch.callbacks import Callback

    ae = _fast(callbacks=[(name, Callback())])
    with pytest.raises(ValueError, match=f"the name '{name}' is taken"):
        ae.fit(_data())
    _fast(callbacks=[("mine", Callback()), Callback]).fit(_data())


def test_bce_with_centring_scaling_is_refused_before_training(monkeypatch):
    from skae import _base

    monkeypatch.setattr(_base, "train", None)  # training must not start
    X = np.random.RandomState(0).rand(30, 4)
    with pytest.raises(ValueError, match=r"loss='bce'.*scaling='global'.*scaling=None"):
        _fast(loss="bce").fit(X)
    with pytest.raises(ValueError, match="output_activation='tanh'"):
        _fast(loss="bce", scaling=None, output_activation="tanh").fit(X)


@pytest.mark.parametrize("low, high", [(-0.5, 1.0), (0.0, 2.0)])
def test_bce_needs_data_in_unit_range(low, high):
    X = np.random.RandomState(0).uniform(low, high, size=(30, 4))
    X[0, 0], X[1, 1] = low, high
    with pytest.raises(
        ValueError, match=rf"X in \[0, 1\]; X has values from {low:g} to {high:g}"
    ):
        _fast(loss="bce", scaling=None, init="auto").fit(X)
    ae = _fast(loss="bce", scaling=None, init="auto").partial_fit(np.clip(X, 0, 1))
    before = ae.transform(np.clip(X, 0, 1))
    with pytest.raises(ValueError, match=r"X in \[0, 1\]"):
        ae.partial_fit(X)
    assert ae.n_iter_ == 1
    assert np.array_equal(ae.transform(np.clip(X, 0, 1)), before)
