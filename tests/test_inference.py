"""Batched inference in input units: the float32 module for every input dtype."""

import copy

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
import torch
from numpy.testing import assert_allclose

from skae._data.scaling import Scaling
from skae._data.sources import as_sparse
from skae._inference import infer as _infer
from skae._inference import inference_fn
from skae._nn.modules import Autoencoder
from tests.conftest import run_in_threads


def infer(module, part, X, *, mean, scale, batch_size):
    scaling = Scaling()
    scaling.mean_, scaling.scale_ = np.asarray(mean), np.asarray(scale)
    return _infer(
        module,
        part,
        X,
        scaling=scaling,
        device="cpu",
        estimator_name="AutoencoderTransformer",
        batch_size=batch_size,
    )


def _float32_module(module, part, x):
    """``part`` of ``module`` on float64 rows, rounded to float32, all at once."""
    fn = module if part == "autoencoder" else getattr(module, part)
    with torch.inference_mode():
        return fn(torch.from_numpy(x).float()).double().numpy()


def test_infer_runs_in_batches_into_input_units():
    module = Autoencoder(3, 2, (4,)).eval()
    X = np.random.RandomState(0).rand(40, 3)
    mean, scale = np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 2.0])
    kw = dict(mean=mean, scale=scale, batch_size=17)
    Z = infer(module, "encoder", X, **kw)
    X_hat = infer(module, "decoder", Z, **kw)
    scores = infer(module, "score", X, **kw)
    # float64 input: standardized in float64, the float32 module, float64
    # out; the same bits as the module on all rows at once.
    expected_Z = _float32_module(module, "encoder", (X - mean) / scale)
    expected_X = _float32_module(module, "decoder", expected_Z) * scale + mean
    assert Z.dtype == X_hat.dtype == scores.dtype == np.float64
    np.testing.assert_array_equal(Z, expected_Z)
    np.testing.assert_array_equal(X_hat, expected_X)
    # Errors against the float64 input, not its float32 rounding.
    recon = _float32_module(module, "autoencoder", (X - mean) / scale) * scale + mean
    assert_allclose(scores, -np.mean((X - recon) ** 2, axis=1), rtol=1e-12)
    Z32 = infer(module, "encoder", X.astype(np.float32), **kw)
    assert Z32.dtype == np.float32
    assert infer(module, "score", X.astype(np.float32), **kw).dtype == np.float64
    assert_allclose(Z32, expected_Z, rtol=1e-5, atol=1e-6)


def _assert_batching_invariant(module, part, X, kw):
    full = infer(module, part, X, batch_size=None, **kw)
    for batch_size in (1, 7, 17, 100):
        np.testing.assert_array_equal(
            infer(module, part, X, batch_size=batch_size, **kw), full
        )
    for n in range(1, 41):
        np.testing.assert_array_equal(
            infer(module, part, X[:n], batch_size=None, **kw), full[:n]
        )
    rows = np.random.RandomState(1).permutation(len(X))[:50]
    np.testing.assert_array_equal(
        infer(module, part, X[rows], batch_size=None, **kw), full[rows]
    )


LAYOUTS = [(30, 4, (64, 32)), (10, 2, (100,))]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("part", ["encoder", "decoder", "score", "feature_error"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_results_do_not_depend_on_the_batching(layout, part, dtype, threads):
    # What sklearn's subset and sample-order invariance checks ask (1e-7 and
    # 1e-9): the same bits for a row alone, in any subset, in any order and
    # under any batch size, with 1 and 2 threads. Batches are padded (to 16
    # rows or more); without the padding, batches of a few rows round
    # differently (~1e-7).
    n_features, n_components, hidden = layout
    module = Autoencoder(n_features, n_components, hidden).eval()
    width = n_components if part == "decoder" else n_features
    X = np.random.RandomState(0).randn(300, width).astype(dtype)
    kw = dict(mean=np.zeros(n_features), scale=np.ones(n_features))
    torch.set_num_threads(threads)  # the autouse fixture puts 1 back
    _assert_batching_invariant(module, part, X, kw)


def test_codes_do_not_depend_on_the_batching_with_many_threads():
    # With 16 threads torch's products of 17-19 or 25-27 rows take other
    # kernels than those of 16, 24 or 32: batches padded to a multiple of 8
    # avoid them. Not every layout is covered at 16 threads: the 10-100-2
    # encoder of LAYOUTS still rounds batches of 16 and 300 rows differently
    # there (a threading threshold; see skae._inference.MIN_ROWS).
    n_features, n_components, hidden = LAYOUTS[0]
    module = Autoencoder(n_features, n_components, hidden).eval()
    X = np.random.RandomState(0).randn(300, n_features)
    kw = dict(mean=np.zeros(n_features), scale=np.ones(n_features))
    torch.set_num_threads(16)
    _assert_batching_invariant(module, "encoder", X, kw)


def test_inference_fn_runs_float64_without_touching_the_module():
    module = Autoencoder(4, 2, (3,))
    fn = inference_fn(module, "encoder", np.float64)
    assert fn(torch.zeros(2, 4, dtype=torch.float64)).dtype == torch.float64
    assert next(module.parameters()).dtype == torch.float32
    assert inference_fn(module, "encoder", np.float32) is module.encoder
    assert not module.training


def test_float64_inference_follows_the_weights_changed_in_place():
    module = Autoencoder(4, 2, (3,)).eval()
    x = torch.from_numpy(np.random.RandomState(0).rand(5, 4))
    before = inference_fn(module, "encoder", np.float64)(x)
    with torch.no_grad():
        module.encoder.out.weight.mul_(2.0)  # e.g. fine-tuned in PyTorch
    after = inference_fn(module, "encoder", np.float64)(x)
    with torch.no_grad():
        expected = copy.deepcopy(module).double().encoder(x)
    assert not torch.allclose(after, before, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(after, expected, rtol=0, atol=0)


def test_float64_inference_from_many_threads_at_once():
    # Inference never changes the module, so concurrent float64 and float32
    # calls on one model all give the serial results.
    module = Autoencoder(16, 2, (32,)).eval()
    X = np.random.RandomState(0).rand(64, 16)
    kw = dict(mean=np.zeros(16), scale=np.ones(16), batch_size=8)
    expected = {
        dtype: infer(module, "encoder", X.astype(dtype), **kw)
        for dtype in (np.float32, np.float64)
    }
    calls = [
        (d, lambda d=d: infer(module, "encoder", X.astype(d), **kw)) for d in expected
    ] * 3
    for dtype, Z in run_in_threads(calls, repeat=30):
        assert np.array_equal(Z, expected[dtype])
    assert next(module.parameters()).dtype == torch.float32


def _net():
    return Autoencoder(3, 2, (4,)).eval()


def test_standardization_out_of_float32_range_subtracts_then_divides():
    # 1 / scale overflows float32: the fused x * (1 / scale) pass is not
    # usable, the subtract-then-divide one must give the same standardization.
    net = _net()
    X = (np.random.RandomState(0).rand(6, 3) * 1e-39).astype(np.float32)
    mean, scale = np.full(3, 5e-40), np.full(3, 2e-40)
    Z = infer(net, "encoder", X, mean=mean, scale=scale, batch_size=4)
    x = torch.from_numpy((X.astype(np.float64) - mean) / scale).float()
    with torch.inference_mode():
        expected = net.encoder(x).numpy()
    assert np.isfinite(Z).all()
    assert_allclose(Z, expected, rtol=1e-4, atol=1e-5)


def test_standardization_far_from_zero_keeps_the_input_precision():
    # Data like timestamps: a mean 1e6 spreads away. float64 input must be
    # standardized exactly (subtract, then divide, in float64) before the
    # float32 module; float32's fused pass must not lose more than the
    # float32 input itself carries.
    net = _net()
    rng = np.random.RandomState(0)
    mean, scale = np.array([1.7e9, -3e8, 5e7]), np.array([1e3, 1e2, 50.0])
    X = mean + scale * rng.randn(64, 3)
    kw = dict(mean=mean, scale=scale, batch_size=16)
    Z64 = infer(net, "encoder", X, **kw)
    np.testing.assert_array_equal(
        Z64, _float32_module(net, "encoder", (X - mean) / scale)
    )
    m64 = Autoencoder(3, 2, (4,)).double().eval()
    m64.load_state_dict(net.state_dict())
    with torch.inference_mode():
        exact = m64.encoder(torch.from_numpy((X - mean) / scale)).numpy()
    X32 = X.astype(np.float32)
    with torch.inference_mode():
        carried = m64.encoder(
            torch.from_numpy((X32.astype(np.float64) - mean) / scale)
        ).numpy()
    Z32 = infer(net, "encoder", X32, **kw)
    # The float32 input is itself ~1e-7 * 1.7e9 / 1e3 ~ 0.2 off in units of
    # the standardized data; the fused pass may add about as much. The
    # float64 input loses only the module's float32 rounding.
    reach = np.abs(carried - exact).max()
    assert np.abs(Z32 - exact).max() <= 3 * reach
    assert np.abs(Z64 - exact).max() < 1e-6 < reach


@pytest.mark.parametrize("source", ["dense", "sparse"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("part", ["encoder", "score"])
def test_non_finite_input_is_refused_unless_assume_finite(part, bad, source):
    net = _net()
    X = np.random.RandomState(0).rand(10, 3)
    X[9, 0] = bad  # in the last batch
    if source == "sparse":
        X = as_sparse(sp.csr_matrix(X))
    kw = dict(mean=np.zeros(3), scale=np.ones(3), batch_size=4)
    with pytest.raises(ValueError, match="Input X contains (NaN|infinity)"):
        infer(net, part, X, **kw)
    with sklearn.config_context(assume_finite=True):  # no check, no error
        out = infer(net, part, X, **kw)
    # The other rows are untouched (what the bad row gives is undefined).
    assert np.isfinite(out[:8]).all()


def test_values_whose_sum_overflows_are_not_an_error():
    # Each standardized value is within float32's range, their sum is not:
    # only values beyond the range are the overflow error.
    X = np.full((4, 3), 2e38)
    kw = dict(mean=np.zeros(3), scale=np.ones(3), batch_size=None)
    infer(_net(), "encoder", X, **kw)
    X[1, 2] = 4e38
    with pytest.raises(ValueError, match="too large for the network"):
        infer(_net(), "encoder", X, **kw)
