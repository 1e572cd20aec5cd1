"""The private skorch net: batches, split, loss terms, inference helpers."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from skae import AutoencoderTransformer
from skae._modules import Autoencoder
from skae._net import (
    BatchIterator,
    HoldoutSplit,
    LazyRows,
    Rows,
    infer,
    inference_fn,
    num_threads,
    prepare_rows,
    resolve_device,
    seeded,
)
from tests.conftest import FAST


def test_batches_are_the_input_itself_with_no_target():
    data = torch.arange(20.0).reshape(10, 2)
    batches = list(BatchIterator(Rows(data), 4, shuffle=False, generator=None))
    assert [b[1] for b in batches] == [None, None, None]
    torch.testing.assert_close(torch.cat([b[0] for b in batches]), data)


def test_shuffle_is_a_permutation_drawn_from_the_generator():
    data = torch.arange(10.0).reshape(10, 1)
    it = BatchIterator(
        Rows(data), 3, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    first = torch.cat([b for b, _ in it]).flatten()
    second = torch.cat([b for b, _ in it]).flatten()
    assert sorted(first.tolist()) == list(range(10))
    assert not torch.equal(first, second)  # a new order each epoch
    again = BatchIterator(
        Rows(data), 3, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(torch.cat([b for b, _ in again]).flatten(), first)


def test_a_trailing_single_row_joins_the_previous_batch():
    it = BatchIterator(Rows(torch.zeros(9, 2)), 4, shuffle=False, generator=None)
    assert [len(b) for b, _ in it] == [4, 5]
    assert len(it) == 2


def test_batch_norm_trains_when_a_batch_would_have_one_row(digits):
    est = AutoencoderTransformer(
        2,
        hidden_layer_sizes=(8,),
        normalization="batch",
        batch_size=299 // 2 + 1,
        max_iter=2,
        random_state=0,
    )
    est.fit(digits[:299])  # 150 + 149 rows, no lone row
    est.set_params(batch_size=149).fit(digits[:299])  # 149 + 149 + 1 -> 149 + 150
    assert np.isfinite(est.transform(digits)).all()


def test_holdout_split_is_disjoint_and_cached():
    rows = Rows(torch.zeros(50, 2))
    split = HoldoutSplit(0.2, torch.Generator().manual_seed(0))
    train, valid = split(rows)
    assert len(valid) == 10 and len(train) == 40
    assert set(train.index.tolist()).isdisjoint(valid.index.tolist())
    again_train, again_valid = split(rows)
    assert torch.equal(again_valid.index, valid.index)


def test_loss_is_reconstruction_plus_named_penalties(digits):
    est = AutoencoderTransformer(2, alpha=0.1, l1=0.01, **FAST).fit(digits)
    net = est.net_
    X = torch.as_tensor(digits[:20], dtype=torch.float32)
    with torch.no_grad():
        X_pred = net.module_(X)
        terms = net.loss_terms(X_pred, X, training=True)
        weights = net.module_.weights()
        assert net.n_train_ == 300
        l2 = 0.5 * 0.1 / 300 * sum(w.square().sum() for w in weights)
        l1 = 0.01 / 300 * sum(w.abs().sum() for w in weights)
        torch.testing.assert_close(terms["reconstruction"], ((X_pred - X) ** 2).mean())
        torch.testing.assert_close(terms["l2"], l2)
        torch.testing.assert_close(terms["l1"], l1)
        total = net.get_loss(X_pred, None, X=X, training=True)
        torch.testing.assert_close(total, terms["reconstruction"] + l2 + l1)
        # Validation measures the reconstruction alone.
        assert set(net.loss_terms(X_pred, X, training=False)) == {"reconstruction"}


def test_infer_runs_in_batches_into_input_units():
    module = Autoencoder(3, 2, (4,)).eval()
    X = np.random.RandomState(0).rand(10, 3)
    mean, scale = np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 2.0])
    kw = dict(mean=mean, scale=scale, batch_size=4, device="cpu")
    Z = infer(module, "encoder", X, **kw)
    X_hat = infer(module, "decoder", Z, **kw)
    scores = infer(module, "score", X, **kw)
    m64 = Autoencoder(3, 2, (4,)).double()
    m64.load_state_dict(module.state_dict())
    with torch.no_grad():
        expected_Z = m64.encoder(torch.from_numpy((X - mean) / scale)).numpy()
        expected_X = m64.decoder(torch.from_numpy(expected_Z)).numpy() * scale + mean
    assert Z.dtype == X_hat.dtype == scores.dtype == np.float64
    assert_allclose(Z, expected_Z, rtol=1e-12)
    assert_allclose(X_hat, expected_X, rtol=1e-12)
    assert_allclose(scores, -np.mean((X - expected_X) ** 2, axis=1), rtol=1e-10)
    Z32 = infer(module, "encoder", X.astype(np.float32), **kw)
    assert Z32.dtype == np.float32
    assert infer(module, "score", X.astype(np.float32), **kw).dtype == np.float64
    assert_allclose(Z32, expected_Z, rtol=1e-5, atol=1e-6)


def test_inference_fn_runs_float64_on_a_copy():
    module = Autoencoder(4, 2, (3,))
    fn = inference_fn(module, "encoder", np.float64)
    assert next(fn.parameters()).dtype == torch.float64
    assert next(module.parameters()).dtype == torch.float32
    assert inference_fn(module, "encoder", np.float32) is module.encoder
    assert not module.training


def test_prepare_rows_standardizes_once_into_float32():
    X = np.arange(12.0).reshape(4, 3)
    rows = prepare_rows(X, lambda b: b - 1.0, torch.device("cpu"))
    assert rows.data.dtype == torch.float32
    torch.testing.assert_close(rows.data, torch.as_tensor(X - 1.0, dtype=torch.float32))


def test_prepare_rows_reads_a_memmap_lazily(tmp_path):
    X = np.lib.format.open_memmap(
        tmp_path / "x.npy", mode="w+", dtype=np.float64, shape=(6, 2)
    )
    X[:] = np.arange(12.0).reshape(6, 2)
    rows = prepare_rows(X, lambda b: b * 10, torch.device("cpu"))
    assert isinstance(rows.data, LazyRows)
    torch.testing.assert_close(
        rows.take(torch.tensor([4, 1])), torch.tensor([[20.0, 30.0], [80.0, 90.0]])
    )


def test_seeded_restores_the_global_generator():
    state = torch.get_rng_state()
    with seeded(123, torch.device("cpu")):
        a = torch.rand(3)
    with seeded(123, torch.device("cpu")):
        b = torch.rand(3)
    assert torch.equal(a, b)
    assert torch.equal(torch.get_rng_state(), state)


def test_num_threads_restores_the_setting():
    before = torch.get_num_threads()
    with num_threads(2):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == before
    with num_threads(None):
        assert torch.get_num_threads() == before


def test_cuda_without_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="device='cuda' but CUDA is not available"):
        resolve_device("cuda")
    assert resolve_device("auto") == torch.device("cpu")
