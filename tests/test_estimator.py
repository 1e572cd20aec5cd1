"""AutoencoderTransformer: the sklearn face (fit, transform, scores, output)."""

import re
import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from scipy.linalg import subspace_angles
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback

from skae import AutoencoderTransformer, ExplodingGradientWarning
from tests.conftest import FAST, PLAIN


class _Recorder(Callback):
    """Test callback that records what it sees."""

    def __init__(self):
        self.seen = []

    def on_epoch_begin(self, net, **kwargs):
        self.seen.append(torch.get_num_threads())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fit_transform_shapes_and_dtypes(digits, dtype):
    X = digits.astype(dtype)
    ae = AutoencoderTransformer(n_components=5, **FAST)
    Z = ae.fit_transform(X)
    assert Z.shape == (300, 5) and Z.dtype == dtype
    X_hat = ae.inverse_transform(Z)
    assert X_hat.shape == X.shape and X_hat.dtype == dtype
    assert ae.score_samples(X).dtype == np.float64
    assert ae.n_components_ == 5
    assert ae.n_features_in_ == 64
    assert ae.n_iter_ == 3 == len(ae.history_) == len(ae.loss_curve_)
    assert ae.net_.module_.training is False


def test_fit_returns_self_and_forgets_previous_fit(digits):
    ae = AutoencoderTransformer(n_components=3, **FAST)
    assert ae.fit(digits) is ae
    ae.fit(digits[:, :10])
    assert ae.n_features_in_ == 10 and ae.n_iter_ == 3
    assert ae.transform(digits[:, :10]).shape == (300, 3)


def test_score_samples_is_minus_row_mse_in_input_units(digits):
    ae = AutoencoderTransformer(n_components=4, **FAST).fit(digits)
    X_hat = ae.inverse_transform(ae.transform(digits))
    expected = -np.mean((digits - X_hat) ** 2, axis=1)
    assert_allclose(ae.score_samples(digits), expected, rtol=1e-10, atol=1e-12)
    assert ae.score(digits) == pytest.approx(expected.mean(), rel=1e-12)
    assert ae.score(digits) < 0


def test_linear_autoencoder_learns_pca_subspace(low_rank):
    """identity activation + no hidden layer = PCA's subspace (angle < 5 deg)."""
    ae = AutoencoderTransformer(
        3,
        hidden_layer_sizes=(),
        activation="identity",
        learning_rate_init=1e-2,
        batch_size=64,
        max_iter=150,
        tol=0.0,
        n_iter_no_change=150,
        random_state=0,
        **PLAIN,  # learned from random weights (init="pca" starts there)
    ).fit(low_rank)
    pca = PCA(3).fit(low_rank)
    decoder = ae.net_.module_.decoder.out.weight.detach().double().numpy()
    feature_angle = np.degrees(subspace_angles(decoder, pca.components_.T)).max()
    code_angle = np.degrees(
        subspace_angles(ae.transform(low_rank), pca.transform(low_rank))
    ).max()
    assert feature_angle < 5
    assert code_angle < 5
    pca_mse = np.mean((low_rank - pca.inverse_transform(pca.transform(low_rank))) ** 2)
    assert -ae.score(low_rank) < 1.05 * pca_mse


def test_beats_pca_on_nonlinear_data():
    rng = np.random.RandomState(0)
    t = rng.uniform(-3, 3, size=(600, 1))
    X = np.hstack([np.sin(t), np.cos(t), np.sin(2 * t), t**2 / 9]) + 0.01 * rng.randn(
        600, 4
    )
    ae = AutoencoderTransformer(
        1, hidden_layer_sizes=(32, 16), max_iter=150, random_state=0
    ).fit(X)
    pca = PCA(1).fit(X)
    pca_mse = np.mean((X - pca.inverse_transform(pca.transform(X))) ** 2)
    assert -ae.score(X) < 0.5 * pca_mse


def test_feature_names_out_and_pandas_output(digits):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(digits[:, :6], columns=[f"px{i}" for i in range(6)])
    ae = AutoencoderTransformer(3, **FAST).set_output(transform="pandas")
    Z = ae.fit_transform(df)
    names = [
        "autoencodertransformer0",
        "autoencodertransformer1",
        "autoencodertransformer2",
    ]
    assert list(ae.get_feature_names_out()) == names
    assert list(Z.columns) == names
    assert list(ae.feature_names_in_) == list(df.columns)


def test_pipeline_and_unsupervised_grid_search(digits):
    y = np.arange(300) % 3
    pipe = make_pipeline(
        StandardScaler(), AutoencoderTransformer(4, **FAST), LogisticRegression()
    )
    assert pipe.fit(digits, y).predict(digits).shape == (300,)
    search = GridSearchCV(
        AutoencoderTransformer(**{**FAST, "max_iter": 30}),
        {"n_components": [1, 12]},
        cv=2,
    ).fit(digits)
    # A wider code reconstructs better, so score (minus the MSE) prefers it.
    assert search.best_params_ == {"n_components": 12}
    scores = search.cv_results_["mean_test_score"]
    assert scores[1] > scores[0]


def test_clone_gives_identical_refit(digits):
    ae = AutoencoderTransformer(3, **FAST).fit(digits)
    other = clone(ae).fit(digits)
    assert np.array_equal(ae.transform(digits), other.transform(digits))


def test_verbose_1_prints_an_epoch_table(digits, capsys):
    AutoencoderTransformer(3, **{**FAST, "max_iter": 2}, verbose=1).fit(digits)
    out = capsys.readouterr().out
    assert "train_loss" in out and "lr" in out and "dur" in out
    assert "grad_norms" not in out
    rows = [line for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 2


def test_verbose_0_is_silent(digits, capsys):
    AutoencoderTransformer(3, **FAST).fit(digits)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_verbose_2_shows_a_progress_bar(digits, capsys):
    AutoencoderTransformer(3, **{**FAST, "max_iter": 1}, verbose=2).fit(digits)
    captured = capsys.readouterr()
    assert "train_loss" in captured.out
    # skorch's ProgressBar (tqdm) counts ceil(rows / batch_size) batches per
    # phase: 5 of the 270 training rows by 64, 1 of the 30 validation rows.
    assert "/6 [" in captured.err


def test_convergence_warning_when_max_iter_ends_training(digits):
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\) reached"):
        AutoencoderTransformer(3, **FAST).fit(digits)


def test_no_convergence_warning_when_training_stops_on_tol(digits):
    ae = AutoencoderTransformer(
        3, **{**FAST, "max_iter": 100, "batch_size": 16}, tol=0.1, n_iter_no_change=2
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ae.fit(digits)
    # Stopped on tol, long before max_iter, having learned something.
    assert ae.n_iter_ < 20
    assert min(ae.loss_curve_) < 1.0  # better than predicting the mean


@pytest.mark.parametrize(
    "params",
    [
        {"l1": 0.3},  # the L1 term dominates the loss on 150 rows
        {"alpha": 0.0, "dropout": 0.5},  # dropout inflates the training loss
    ],
)
def test_learned_nothing_reads_the_reconstruction_not_the_loss(digits, params):
    ae = AutoencoderTransformer(
        8, hidden_layer_sizes=(64,), max_iter=40, random_state=0, **PLAIN, **params
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ae.fit(digits[:150])
    # The training loss alone would warn.
    assert min(ae.history_[:, "train_loss"]) > 1.0
    assert not [w for w in caught if "learned nothing" in str(w.message)]


@pytest.mark.parametrize(
    "params, match",
    [
        # Stopped on a huge tol before learning anything.
        (
            {"max_iter": 50, "tol": 10.0, "n_iter_no_change": 2},
            r"(?s)stopped after 3 epochs.*learned nothing.*higher "
            r"learning_rate_init.*tol \(now 10\)",
        ),
        # A learning rate far too high for SGD, to the end of max_iter.
        (
            {"solver": "sgd", "learning_rate_init": 30.0, "max_grad_norm": 1.0},
            r"(?s)Maximum iterations \(3\).*learned nothing.*lower "
            r"learning_rate_init \(e\.g\. 3\).*solver='adam'.*max_iter",
        ),
    ],
)
def test_convergence_warning_when_nothing_was_learned(digits, params, match):
    # From random weights: from init="pca" the model beats the mean from the
    # start (and early stopping would keep it).
    ae = AutoencoderTransformer(3, **{**FAST, **PLAIN, **params})
    with pytest.warns(ConvergenceWarning, match=match) as record:
        ae.fit(digits)
    assert sum(w.category is ConvergenceWarning for w in record) == 1


def test_early_stopping_validates_and_restores_best_weights(digits):
    ae = AutoencoderTransformer(
        3,
        **{**FAST, "max_iter": 40},
        early_stopping=True,
        validation_fraction=0.2,
        learning_rate_init=0.05,
        n_iter_no_change=3,
        init="random",  # not PCA's start: no epoch at this rate beats it
    ).fit(digits)
    valid = ae.history_[:, "valid_loss"]
    assert len(valid) == ae.n_iter_
    keeper = dict(ae.net_.callbacks_)["early_stopping"]
    best = int(np.argmin(valid)) + 1
    assert keeper.best_epoch_ == best < ae.n_iter_
    for name, tensor in ae.net_.module_.state_dict().items():
        assert torch.equal(tensor, keeper.best_weights_[name]), name
    # Validation rows are 20 % of 300, training rows the rest.
    assert ae.history_[-1, "valid_batch_count"] == 1
    batches = ae.history_[-1, "batches"]
    assert sum(b.get("train_batch_size", 0) for b in batches) == 240
    assert sum(b.get("valid_batch_size", 0) for b in batches) == 60


def test_early_stopping_is_not_reported_as_an_interruption(digits):
    ae = AutoencoderTransformer(
        2, **{**FAST, "max_iter": 100, "batch_size": 16}, tol=0.1, n_iter_no_change=2
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ae.fit(digits)
    assert ae.n_iter_ < 20


def test_partial_fit_initializes_then_adds_one_epoch(digits):
    ae = AutoencoderTransformer(3, **FAST)
    ae.partial_fit(digits)
    assert ae.n_iter_ == 1
    mean = ae.mean_.copy()
    ae.partial_fit(digits[:100] + 5.0)
    assert ae.n_iter_ == 2
    assert_allclose(ae.mean_, mean)  # statistics of the first call are kept
    with pytest.raises(ValueError, match="X has 10 features"):
        ae.partial_fit(digits[:, :10])
    assert ae.n_iter_ == 2


def test_memmap_is_read_in_batches_not_copied(tmp_path, monkeypatch):
    import tracemalloc

    from skae import _base
    from skae._data.rows import LazyRows

    rng = np.random.RandomState(0)
    path = tmp_path / "X.npy"
    X = np.lib.format.open_memmap(
        path, mode="w+", dtype=np.float32, shape=(100_000, 64)
    )
    X[:] = rng.rand(100_000, 64)
    X.flush()
    X = np.load(path, mmap_mode="r")
    prepared = []
    real = _base.load_rows
    monkeypatch.setattr(
        _base,
        "load_rows",
        lambda *a, **k: prepared.append(real(*a, **k)) or prepared[-1],
    )
    ae = AutoencoderTransformer(3, hidden_layer_sizes=(8,), max_iter=1, random_state=0)
    ae.fit(X[:1000])  # warm-up: first-fit allocations are not the data's
    tracemalloc.start()
    ae.fit(X)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # The rows are read batch by batch from the file, never held as one tensor
    # (torch's allocations escape tracemalloc, so check the path taken) ...
    assert isinstance(prepared[-1].data, LazyRows)
    # ... and the float64 statistics are computed in chunks, not on a copy.
    assert peak < 0.25 * X.nbytes
    assert np.isfinite(ae.transform(X[:100])).all()


def test_n_threads_applies_inside_fit_only(digits):
    recorder = _Recorder()
    before = torch.get_num_threads()
    AutoencoderTransformer(3, **FAST, n_threads=2, callbacks=[("rec", recorder)]).fit(
        digits
    )
    assert recorder.seen == [2, 2, 2]
    assert torch.get_num_threads() == before


def test_device_auto_resolves_to_cpu_without_cuda(digits, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    ae = AutoencoderTransformer(3, **FAST, device="auto").fit(digits)
    assert str(ae.net_.device) == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_training_matches_output_contract(digits):
    ae = AutoencoderTransformer(3, **FAST, device="cuda").fit(digits)
    assert next(ae.net_.module_.parameters()).is_cuda
    Z = ae.transform(digits.astype(np.float32))
    assert isinstance(Z, np.ndarray) and Z.dtype == np.float32
    assert np.isfinite(ae.score_samples(digits)).all()


def _threads_seen_in_fit(X):
    recorder = _Recorder()
    AutoencoderTransformer(3, **FAST, callbacks=[("rec", recorder)]).fit(X)
    return recorder.seen


def test_joblib_workers_do_not_oversubscribe(digits):
    from joblib import Parallel, cpu_count, delayed

    # joblib gives each of 2 workers half the cores (OMP_NUM_THREADS), and
    # n_threads=None leaves torch's setting, which follows it, alone.
    seen = Parallel(n_jobs=2)(delayed(_threads_seen_in_fit)(digits) for _ in range(2))
    share = max(1, cpu_count() // 2)
    assert seen == [[share] * 3] * 2


def test_early_stopping_restores_best_weights_when_max_iter_ends_training(digits):
    ae = AutoencoderTransformer(
        3,
        **{**FAST, "max_iter": 8, "batch_size": 16},
        early_stopping=True,
        learning_rate_init=0.1,
        n_iter_no_change=50,
        init="random",  # not PCA's start: no epoch at this rate beats it
    ).fit(digits)
    assert ae.n_iter_ == 8
    keeper = dict(ae.net_.callbacks_)["early_stopping"]
    assert keeper.best_epoch_ == int(np.argmin(ae.history_[:, "valid_loss"])) + 1
    assert keeper.best_epoch_ < 8
    for name, tensor in ae.net_.module_.state_dict().items():
        assert torch.equal(tensor, keeper.best_weights_[name]), name


@pytest.mark.parametrize(
    "schedule", ["exponential", "linear", "step", "cosine", "warm_restarts"]
)
def test_partial_fit_follows_the_same_schedule_as_fit(digits, schedule):
    params = dict(FAST, max_iter=14, lr_schedule=schedule, tol=0.0, n_iter_no_change=99)
    fitted = AutoencoderTransformer(2, **params).fit(digits)
    stepped = AutoencoderTransformer(2, **params)
    for _ in range(14):
        stepped.partial_fit(digits)
    assert_allclose(stepped.history_[:, "lr"], fitted.history_[:, "lr"], rtol=1e-12)


def test_partial_fit_keeps_the_first_architecture(digits):
    ae = AutoencoderTransformer(2, **FAST).partial_fit(digits)
    ae.set_params(n_components=3).partial_fit(digits)
    assert ae.n_components_ == 2
    assert ae.transform(digits).shape == (300, 2)
    assert ae.inverse_transform(ae.transform(digits)).shape == (300, 64)
    assert len(ae.get_feature_names_out()) == 2


def test_a_warning_raised_as_error_leaves_a_consistent_model(digits):
    ae = AutoencoderTransformer(2, **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        with pytest.raises(ConvergenceWarning):
            ae.fit(digits)
    # The warning came after the new state was in place: all of it.
    assert ae.n_iter_ == len(ae.history_) == len(ae.loss_curve_) == 3
    assert ae.transform(digits).shape == (300, 2)


def test_partial_fit_diagnoses_only_its_own_epochs(digits):
    ae = AutoencoderTransformer(2, **FAST).partial_fit(digits / 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # A harder batch of data gives a higher loss than epoch 1 had; that
        # is not a loss that rose during this call.
        ae.partial_fit(digits)
    assert ae.loss_curve_[1] > ae.loss_curve_[0]


def test_random_state_none_leaves_numpy_global_state_alone(digits):
    before = np.random.get_state()  # noqa: NPY002
    AutoencoderTransformer(2, **{**FAST, "random_state": None}).fit(digits)
    after = np.random.get_state()  # noqa: NPY002
    assert before[2] == after[2] and np.array_equal(before[1], after[1])


def test_finite_check_follows_sklearn_config_and_messages(digits):
    from sklearn import config_context

    ae = AutoencoderTransformer(2, **FAST).fit(digits)
    X = digits[:5].copy()
    X[2, 3] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        ae.transform(X)
    X[2, 3] = np.inf
    with pytest.raises(ValueError, match="Input X contains infinity"):
        ae.score_samples(X)
    with config_context(assume_finite=True):
        assert np.isnan(ae.transform(np.where(np.isinf(X), np.nan, X))[2]).all()


def test_verbose_log_shows_the_last_epoch_and_why_training_stopped(digits, capsys):
    ae = AutoencoderTransformer(
        3,
        **{**FAST, "max_iter": 100, "batch_size": 16},
        tol=0.1,
        n_iter_no_change=2,
        verbose=1,
    ).fit(digits)
    out = capsys.readouterr().out
    rows = [line.split()[0] for line in out.splitlines() if line[:7].strip().isdigit()]
    assert rows == [str(epoch) for epoch in range(1, ae.n_iter_ + 1)]
    stopping, restoring = out.rstrip().splitlines()[-2:]
    assert re.search(r"^Stopping: valid_loss\b.*tol=0\.1\b.*\b2 epochs", stopping)
    best = dict(ae.net_.callbacks_)["early_stopping"].best_epoch_
    assert re.search(
        rf"^Restoring the weights of epoch {best}\b" if best else r"^Keeping .*started",
        restoring,
    )


def test_verbose_log_reports_restarts(digits, capsys):
    ae = AutoencoderTransformer(
        3, **{**FAST, "max_iter": 4}, solver="sgd", learning_rate_init=100.0
    )
    with pytest.warns(ExplodingGradientWarning):
        ae.set_params(verbose=1).fit(digits)
    out = capsys.readouterr().out
    assert ae.n_restarts_ >= 1
    assert out.count("Restart ") == ae.n_restarts_
    assert re.search(r"^Restart 1/3\b.*\bnan at epoch \d+", out, re.MULTILINE)


@pytest.mark.parametrize("how", ["fit", "fit_transform", "pipeline"])
def test_training_warnings_point_at_the_callers_line(digits, how):
    from sklearn.pipeline import make_pipeline

    ae = AutoencoderTransformer(2, **FAST)
    call = {
        "fit": ae.fit,
        "fit_transform": ae.fit_transform,
        "pipeline": make_pipeline(ae).fit,
    }[how]
    with pytest.warns(ConvergenceWarning) as record:
        call(digits)
    assert record[0].filename == __file__


def test_constant_data_fit_without_gradient_warnings():
    from skae import VanishingGradientWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ae = AutoencoderTransformer(2, **FAST).fit(np.ones((30, 4)))
    assert not [
        w
        for w in caught
        if issubclass(w.category, (VanishingGradientWarning, ExplodingGradientWarning))
    ]
    assert not [w for w in caught if "learned nothing" in str(w.message)]
    assert np.allclose(ae.inverse_transform(ae.transform(np.ones((3, 4)))), 1.0)


def test_bce_reconstructs_data_in_unit_range_through_a_sigmoid(digits):
    X = digits / 16.0  # pixels in [0, 1]
    ae = AutoencoderTransformer(4, **FAST, loss="bce", scaling=None, init="random")
    ae.fit(X)
    assert isinstance(ae.decoder_.out_activation, torch.nn.Sigmoid)
    X_hat = ae.inverse_transform(ae.transform(X))
    assert X_hat.min() >= 0 and X_hat.max() <= 1
    # Scores stay minus the squared error in input units, as for PCA.
    assert_allclose(ae.score_samples(X), -np.mean((X - X_hat) ** 2, axis=1), rtol=1e-10)
    assert ae.history_[-1, "train_loss"] > 0


def test_fit_reads_x_twice_before_training(digits, monkeypatch):
    from skae import _base
    from skae._data import rows as _rows
    from skae._data import scaling as _scaling

    rows = {"read": 0, "at_training": None}
    real_read, real_train = _scaling.read_chunk, _base.train

    def read(X, index, dtype=None):
        chunk = real_read(X, index, dtype)
        rows["read"] += chunk.shape[0]
        return chunk

    def train(*args, **kwargs):
        rows["at_training"] = rows["read"]
        return real_train(*args, **kwargs)

    monkeypatch.setattr(_scaling, "read_chunk", read)
    monkeypatch.setattr(_rows, "read_chunk", read)
    monkeypatch.setattr(_base, "train", train)
    AutoencoderTransformer(2, **FAST).fit(digits)
    # One pass for the statistics and the NaN check, one to standardize.
    assert rows["at_training"] == 2 * len(digits)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fit_transform_validates_once_and_equals_fit_then_transform(
    digits, dtype, monkeypatch
):
    from skae import _checks

    calls = []
    real = _checks.validate_data
    monkeypatch.setattr(
        _checks, "validate_data", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    X = digits.astype(dtype)
    ae = AutoencoderTransformer(2, **FAST)
    Z = ae.fit_transform(X)
    assert len(calls) == 1
    assert Z.dtype == dtype
    assert np.array_equal(Z, ae.transform(X))


def test_encoder_and_decoder_are_the_trained_torch_modules(digits):
    ae = AutoencoderTransformer(3, **FAST).fit(digits)
    assert isinstance(ae.encoder_, torch.nn.Module) and not ae.encoder_.training
    X = digits.astype(np.float32)
    standardized = torch.from_numpy(((X - ae.mean_) / ae.scale_).astype(np.float32))
    with torch.no_grad():
        Z = ae.encoder_(standardized)
        X_hat = ae.decoder_(Z).numpy() * ae.scale_ + ae.mean_
    assert_allclose(Z.numpy(), ae.transform(X), rtol=1e-4, atol=1e-5)
    assert_allclose(X_hat, ae.inverse_transform(ae.transform(X)), rtol=1e-4, atol=1e-4)
    # Working on them in PyTorch changes what transform gives, in float64 too.
    before = ae.transform(digits)
    with torch.no_grad():
        # The code is the sum of the PCA layer's and the stack's outputs
        # (the output layer's bias holds the PCA layer's offset).
        for tensor in (ae.encoder_.out.weight, ae.encoder_.out.bias):
            tensor.mul_(2.0)
        ae.encoder_.pca.weight.mul_(2.0)
    assert_allclose(ae.transform(digits), 2 * before, rtol=1e-5, atol=1e-5)
    with pytest.raises(NotFittedError):
        _ = AutoencoderTransformer().encoder_


def test_float64_results_follow_each_partial_fit(digits):
    # The fused optimizers update the weights in place without moving the
    # tensors' version counters: the float64 copy is rebuilt after each call.
    ae = AutoencoderTransformer(2, **FAST).partial_fit(digits)
    before = ae.score(digits)
    ae.partial_fit(digits)
    assert ae.score(digits) != before
    assert ae.score(digits) == pytest.approx(
        ae.score(digits.astype(np.float32)), rel=1e-4
    )
