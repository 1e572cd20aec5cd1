"""Same random_state, same data -> bit-identical output; global RNGs untouched."""

import random
import threading

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback

from skae import AutoencoderTransformer
from tests.conftest import run_in_threads

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
    # The whole training run, not only the model kept: from init="pca" (the
    # default) early stopping may keep PCA's solution, which is the same
    # whatever the training did.
    assert a.history_[:, "train_loss"] == b.history_[:, "train_loss"]


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
    assert a.history_[:, "train_loss"] != b.history_[:, "train_loss"]
    # From random weights the models differ too (from init="pca" both may
    # keep PCA's solution, which no epoch beats on this Gaussian data).
    a, b = (_fast(random_state=s, init="random").fit(X) for s in (0, 1))
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


def _state(estimator):
    return estimator.net_.module_.state_dict()


def _assert_same_model(a, b, X):
    sa, sb = _state(a), _state(b)
    assert sa.keys() == sb.keys()
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name
    _assert_identical(a, b, X)


@pytest.mark.parametrize("tail", range(1, 17))
def test_model_independent_of_thread_count_for_every_trailing_batch(tail):
    # 2 batches of 32 rows and a trailing one of 1 to 16: torch's float32
    # products of 5-7 and 9-11 rows round differently with 1 and 2 threads.
    X = _data(n=64 + tail, p=16)
    params = dict(RANDOM_PARAMS, early_stopping=False, batch_size=32)
    one = _fast(n_threads=1, hidden_layer_sizes=(32,), **params).fit(X)
    two = _fast(n_threads=2, hidden_layer_sizes=(32,), **params).fit(X)
    _assert_same_model(one, two, X)
    assert one.history_[:, "train_loss"] == two.history_[:, "train_loss"]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"normalization": "layer", "residual": True, "early_stopping": True},
        {"max_grad_norm": 1.0, "l1": 0.1, "lr_schedule": "plateau"},
    ],
)
def test_default_network_independent_of_thread_count(params):
    X = load_digits().data[:600]  # 600 = 2 x 256 + 88
    one = AutoencoderTransformer(8, max_iter=2, random_state=0, n_threads=1, **params)
    two = AutoencoderTransformer(8, max_iter=2, random_state=0, n_threads=2, **params)
    _assert_same_model(one.fit(X), two.fit(X), X)


def test_transform_independent_of_thread_count():
    # Inference pads batches of fewer than 16 rows, whatever their number.
    X = _data(n=4096 + 7, p=16).astype(np.float32)
    ae = _fast(hidden_layer_sizes=(32,)).fit(X[:200])
    outputs = []
    for n_threads in (1, 2):
        ae.set_params(n_threads=n_threads)
        outputs.append([ae.transform(X), ae.transform(X[:7]), ae.score_samples(X)])
    for a, b in zip(*outputs):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_memory_layout_does_not_change_the_model(dtype):
    X = load_digits().data[:300].astype(dtype)
    c = _fast(**RANDOM_PARAMS).fit(np.ascontiguousarray(X))
    f = _fast(**RANDOM_PARAMS).fit(np.asfortranarray(X))
    assert np.array_equal(c.mean_, f.mean_) and np.array_equal(c.scale_, f.scale_)
    _assert_same_model(c, f, X)


class _Meet(Callback):
    """Both fits wait for each other at every epoch: they surely overlap."""

    def __init__(self, barrier):
        self.barrier = barrier

    def on_epoch_begin(self, net, **kwargs):
        self.barrier.wait(timeout=60)


def test_concurrent_fits_equal_serial_fits_and_leave_threads_alone():
    X = load_digits().data[:300]
    params = [dict(RANDOM_PARAMS, random_state=s, n_threads=1) for s in (0, 1)]
    serial = [_fast(**p).fit(X) for p in params]
    torch.set_num_threads(2)
    before = torch.get_num_threads()
    barrier = threading.Barrier(2)
    fitted = [_fast(**p, callbacks=[("meet", _Meet(barrier))]) for p in params]
    threads = [threading.Thread(target=e.fit, args=(X,)) for e in fitted]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(serial, fitted, strict=True):
        _assert_same_model(a, b, X)
    assert torch.get_num_threads() == before
    seen = []
    thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    assert seen == [before]


class _Pause(Callback):
    """Calls ``wait`` at every epoch's start."""

    def __init__(self, wait):
        self.wait = wait

    def on_epoch_begin(self, net, **kwargs):
        self.wait()


@pytest.mark.parametrize("method", ["fit", "transform"])
def test_overlapping_calls_in_threads_leave_the_thread_count(method):
    # With n_threads=1, a second thread's call starts inside the first's and
    # ends after it, then that thread calls once more, alone: the calling
    # thread and threads started afterwards still have 2 threads.
    X = _data(200, 30)
    models = [_fast(hidden_layer_sizes=(8,), n_threads=1) for _ in range(2)]
    first_in, second_in, first_done = (threading.Event() for _ in range(3))

    def first_waits():
        first_in.set()
        second_in.wait(10)

    def second_waits():
        second_in.set()
        first_done.wait(10)

    for model, wait in zip(models, (first_waits, second_waits), strict=True):
        if method == "fit":
            model.set_params(callbacks=[("pause", _Pause(wait))])
        else:
            model.fit(X).net_.module_.encoder.register_forward_pre_hook(
                lambda module, args, wait=wait: wait()
            )

    def call(model):
        if method == "fit":
            model.fit(X).transform(X)
        else:
            model.transform(X)
            model.transform(X)

    def first():
        try:
            call(models[0])
        finally:
            first_done.set()

    def second():
        first_in.wait(10)  # this thread first uses torch inside the first call
        call(models[1])

    def caller():
        # Like a script's main thread: it set the count but has not read it
        # since, so torch gives it the count new threads start with.
        torch.set_num_threads(2)
        run_in_threads([(0, first), (1, second)], repeat=1, timeout=60)
        [(_, later)] = run_in_threads([(0, torch.get_num_threads)], repeat=1)
        return torch.get_num_threads(), later

    [(_, counts)] = run_in_threads([(0, caller)], repeat=1, timeout=90)
    assert counts == (2, 2)  # the caller's, a later thread's


def test_concurrent_transforms_of_one_model():
    X = load_digits().data
    ae = _fast().fit(X[:300])
    expected = {d: ae.transform(X.astype(d)) for d in (np.float32, np.float64)}
    versions = [p._version for p in ae.net_.module_.parameters()]
    calls = [(d, lambda d=d: ae.transform(X.astype(d))) for d in expected] * 2
    for dtype, Z in run_in_threads(calls, repeat=25):
        assert np.array_equal(Z, expected[dtype])
    # Inference never wrote to the fitted module.
    assert [p._version for p in ae.net_.module_.parameters()] == versions
    assert {p.dtype for p in ae.net_.module_.parameters()} == {torch.float32}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_dropout_draws_from_the_models_own_device_generator():
    device = f"cuda:{torch.cuda.device_count() - 1}"  # cuda:1 on two GPUs
    X = _data()
    states = [torch.cuda.get_rng_state(i) for i in range(torch.cuda.device_count())]
    a = _fast(device=device, dropout=0.5).fit(X)
    b = _fast(device=device, dropout=0.5).fit(X)
    _assert_identical(a, b, X)
    generator = a.net_.module_.random.generator
    assert str(generator.device) == device
    for i, state in enumerate(states):
        assert torch.equal(torch.cuda.get_rng_state(i), state)
