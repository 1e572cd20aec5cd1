"""Same random_state, same data -> bit-identical output; global RNGs untouched."""

import random

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import AutoencoderTransformer

# Every source of randomness at once: weight init, dropout, batch order (several
# batches per epoch), the validation split and batch-norm statistics.
RANDOM_PARAMS = dict(
    dropout=0.2,
    normalization="batch",
    early_stopping=True,
    validation_fraction=0.2,
    batch_size=8,
    lr_schedule="exponential",
)


def _fast(**params):
    defaults = dict(n_components=2, hidden_layer_sizes=(6,), max_iter=3, random_state=0)
    return AutoencoderTransformer(**{**defaults, **params})


def _data(n=40, p=5, seed=0):
    return np.random.RandomState(seed).normal(size=(n, p))


def _outputs(estimator, X):
    Z = estimator.transform(X)
    return Z, estimator.inverse_transform(Z), estimator.score_samples(X)


def _assert_identical(a, b, X):
    for left, right in zip(_outputs(a, X), _outputs(b, X), strict=True):
        assert np.array_equal(left, right)


@pytest.fixture
def reference():
    # Function-scoped: fitted under the same torch thread setting as the test
    # (conftest's autouse fixture), see test_normalization_independent_of_thread_count.
    return _fast(**RANDOM_PARAMS).fit(_data())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_refit_is_identical(dtype):
    X = _data().astype(dtype)
    ae = _fast(**RANDOM_PARAMS).fit(X)
    first = _outputs(ae, X)
    history = ae.history_[:, "train_loss"]
    ae.fit(X)
    assert first[0].dtype == first[1].dtype == dtype
    for left, right in zip(first, _outputs(ae, X), strict=True):
        assert np.array_equal(left, right)
    assert ae.history_[:, "train_loss"] == history


def test_clone_is_identical(reference):
    X = _data()
    _assert_identical(reference, clone(reference).fit(X), X)


def test_fit_transform_equals_fit_then_transform(reference):
    X = _data()
    assert np.array_equal(clone(reference).fit_transform(X), reference.transform(X))


def test_random_state_instance_seeded_alike_is_identical():
    X = _data()
    a = _fast(random_state=np.random.RandomState(3)).fit(X)
    b = _fast(random_state=np.random.RandomState(3)).fit(X)
    _assert_identical(a, b, X)


def test_different_random_states_differ():
    X = _data()
    a, b = _fast(random_state=0).fit(X), _fast(random_state=1).fit(X)
    assert not np.array_equal(a.transform(X), b.transform(X))


def test_output_does_not_depend_on_global_seeds(reference):
    X = _data()
    np_state = np.random.get_state()  # noqa: NPY002
    try:
        with torch.random.fork_rng():
            torch.manual_seed(123)
            np.random.seed(123)  # noqa: NPY002
            random.seed(123)
            ae = clone(reference).fit(X)
    finally:
        np.random.set_state(np_state)  # noqa: NPY002
    _assert_identical(reference, ae, X)


def test_partial_fit_sequence_is_identical():
    X = _data()
    a, b = _fast(**RANDOM_PARAMS), _fast(**RANDOM_PARAMS)
    for _ in range(3):
        a.partial_fit(X)
        b.partial_fit(X)
    _assert_identical(a, b, X)


def test_inside_a_pipeline(reference):
    X = _data()
    pipe = make_pipeline(StandardScaler(), clone(reference)).fit(X)
    again = clone(pipe).fit(X)
    alone = clone(reference).fit(StandardScaler().fit_transform(X))
    assert np.array_equal(pipe.transform(X), again.transform(X))
    assert np.array_equal(
        pipe.transform(X), alone.transform(StandardScaler().fit_transform(X))
    )
    assert np.array_equal(
        pipe.inverse_transform(pipe.transform(X)),
        again.inverse_transform(again.transform(X)),
    )


def test_grid_search_sequential_equals_parallel():
    # n_jobs=2 runs the fits in joblib's loky worker processes.
    X = _data()
    grid = {"n_components": [1, 2], "learning_rate_init": [1e-3, 1e-2]}
    base = _fast(hidden_layer_sizes=(4,), batch_size=16)
    runs = [GridSearchCV(base, grid, cv=2, n_jobs=n).fit(X) for n in (1, 2)]
    sequential, parallel = runs
    assert sequential.best_params_ == parallel.best_params_
    assert np.array_equal(
        sequential.cv_results_["mean_test_score"],
        parallel.cv_results_["mean_test_score"],
    )
    assert np.array_equal(
        sequential.cv_results_["split0_test_score"],
        parallel.cv_results_["split0_test_score"],
    )
    _assert_identical(sequential.best_estimator_, parallel.best_estimator_, X)


def _global_states():
    np_state = np.random.get_state()  # noqa: NPY002
    return torch.get_rng_state(), np_state, random.getstate()


def _assert_states_equal(before, after):
    torch_before, np_before, py_before = before
    torch_after, np_after, py_after = after
    assert torch.equal(torch_before, torch_after)
    assert np_before[0] == np_after[0]
    assert np.array_equal(np_before[1], np_after[1])
    assert np_before[2:] == np_after[2:]
    assert py_before == py_after


@pytest.mark.parametrize(
    "method",
    ["fit", "partial_fit", "fit_transform", "transform", "inverse_transform", "score"],
)
def test_global_rng_states_untouched(reference, method):
    X = _data()
    ae = (
        clone(reference).fit(X)
        if method in ("transform", "inverse_transform", "score")
        else clone(reference)
    )
    if method == "inverse_transform":
        X = ae.transform(X)
    before = _global_states()
    getattr(ae, method)(X)
    _assert_states_equal(before, _global_states())


def test_global_torch_generator_keeps_its_sequence():
    # The next global draws are those that would have come without the fit.
    X = _data()
    with torch.random.fork_rng():
        torch.manual_seed(7)
        expected = torch.rand(3)
        torch.manual_seed(7)
        _fast(dropout=0.5).fit(X)
        assert torch.equal(torch.rand(3), expected)


def test_output_independent_of_thread_count():
    X = _data()
    params = dict(RANDOM_PARAMS, normalization=None)
    one = _fast(n_threads=1, **params).fit(X)
    two = _fast(n_threads=2, **params).fit(X)
    _assert_identical(one, two, X)


@pytest.mark.parametrize("normalization", ["batch", "layer"])
def test_normalization_is_reproducible_at_a_fixed_thread_count(normalization):
    # torch's CPU BatchNorm forward and LayerNorm weight gradient round
    # differently with 1 and 2 threads, so bit-identical output with
    # normalization needs the same n_threads (documented under random_state).
    X = _data()
    params = dict(RANDOM_PARAMS, normalization=normalization)
    for n_threads in (1, 2):
        first = _fast(n_threads=n_threads, **params).fit(X)
        second = _fast(n_threads=n_threads, **params).fit(X)
        _assert_identical(first, second, X)
