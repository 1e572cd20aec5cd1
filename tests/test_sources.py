"""Sparse and out-of-core inputs: read a batch or a block at a time, same model."""

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

from skae import AutoencoderTransformer
from skae._data import rows as data_rows
from skae._data import sources
from skae._data.sources import BlockArray, SparseRows


def _fast(**params):
    defaults = dict(
        n_components=3,
        hidden_layer_sizes=(8,),
        max_iter=3,
        batch_size=32,
        random_state=0,
    )
    return AutoencoderTransformer(**{**defaults, **params})


def _outputs(ae, X):
    """What a fitted model gives on X, then after one more partial_fit."""
    out = [ae.transform(X), ae.score_samples(X), np.float64(ae.score(X))]
    ae.partial_fit(X)
    return [*out, ae.transform(X)]


def _assert_same(left, right):
    for a, b in zip(left, right, strict=True):
        assert a.dtype == b.dtype
        assert np.array_equal(a, b)


# ------------------------------------------------------------------ sparse


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "params",
    [{}, {"early_stopping": True}, {"scaling": "standard"}, {"scaling": None}],
)
@pytest.mark.parametrize("kind", [sp.csr_array, sp.csc_matrix])
def test_sparse_gives_the_dense_model_bit_for_bit(kind, params, dtype):
    X = sp.random(300, 12, density=0.2, random_state=0, dtype=dtype)
    sparse, dense = kind(X), X.toarray()
    ae_sparse, ae_dense = _fast(**params), _fast(**params)
    Z_sparse, Z_dense = ae_sparse.fit_transform(sparse), ae_dense.fit_transform(dense)
    assert Z_sparse.dtype == dtype
    assert np.array_equal(Z_sparse, Z_dense)
    _assert_same(_outputs(ae_sparse, sparse), _outputs(ae_dense, dense))


def test_sparse_is_densified_a_batch_at_a_time(monkeypatch):
    X = sp.random(6000, 200, density=0.02, format="csr", random_state=0)
    widest = []
    real = SparseRows.__getitem__

    def read(self, rows):
        out = real(self, rows)
        widest.append(out.shape[0])
        return out

    monkeypatch.setattr(SparseRows, "__getitem__", read)
    ae = _fast(batch_size=256, max_iter=1).fit(X)
    ae.transform(X)
    ae.score_samples(X)
    # Scaling chunks (1 310 rows of 200), mini-batches (256 rows), the
    # learned-nothing check (512) and inference batches (2 621 rows): never
    # the whole matrix.
    assert max(widest) <= 2**19 // 200 < X.shape[0] / 2
    assert 256 in widest


def test_sparse_fit_and_transform_memory_is_a_few_batches():
    X = sp.random(20_000, 500, density=0.01, format="csc", random_state=0)
    X = X.astype(np.float32)
    dense_bytes = X.shape[0] * X.shape[1] * 4
    ae = _fast(max_iter=1, batch_size=256)
    ae.fit(X[:500])  # warm-up: first-call allocations are not the data's
    tracemalloc.start()
    ae.fit(X)
    ae.transform(X)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # The CSR copy of the CSC input and a few dense pieces of about 2 MB
    # (scaling chunks of 2**18 float64 values, inference batches of 2**19
    # float32 values; mini-batches are smaller): a fifth of the dense 40 MB.
    csr_bytes = X.nnz * 8 + (X.shape[0] + 1) * 4
    assert peak < 4 * 2**21 + csr_bytes < 0.25 * dense_bytes


# ------------------------------------------------------------ out-of-core


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 16 rows of 6 float32, passes of 80 rows: many of each."""
    monkeypatch.setattr(sources, "BLOCK_BYTES", 16 * 6 * 4)
    monkeypatch.setattr(data_rows, "PASS_ELEMENTS", 80 * 6)


def _data64(n=500, p=6):
    return np.random.RandomState(0).normal(size=(n, p))


def _zarr(tmp_path, X, chunks=(16, 6)):
    zarr = pytest.importorskip("zarr")
    z = zarr.open_array(
        str(tmp_path / "x.zarr"), mode="w", shape=X.shape, chunks=chunks, dtype=X.dtype
    )
    z[:] = X
    return zarr.open_array(str(tmp_path / "x.zarr"), mode="r")


def _h5py(tmp_path, X):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.create_dataset("x", data=X, chunks=(50, X.shape[1]))
    return h5py.File(tmp_path / "x.h5", "r")["x"]


def _dask(tmp_path, X):
    da = pytest.importorskip("dask.array")
    _zarr(tmp_path, X, chunks=(40, X.shape[1]))
    return da.from_zarr(str(tmp_path / "x.zarr"))


SOURCES = {"zarr": _zarr, "h5py": _h5py, "dask": _dask}


CASES = [
    (source, params, dtype)
    for source in ("zarr", "h5py")
    for params in ({}, {"early_stopping": True})
    for dtype in (np.float32, np.float64)
] + [("dask", {}, np.float32), ("dask", {"early_stopping": True}, np.float64)]


@pytest.mark.parametrize("source, params, dtype", CASES)
def test_out_of_core_gives_the_numpy_model_bit_for_bit(
    tmp_path, small_blocks, source, params, dtype
):
    X = _data64().astype(dtype)
    stored = SOURCES[source](tmp_path, X)
    ae_stored, ae_numpy = _fast(**params), _fast(**params)
    Z_stored, Z_numpy = ae_stored.fit_transform(stored), ae_numpy.fit_transform(X)
    assert Z_stored.dtype == dtype
    assert np.array_equal(Z_stored, Z_numpy)
    assert ae_stored.n_features_in_ == 6
    _assert_same(_outputs(ae_stored, stored), _outputs(ae_numpy, X))


def test_out_of_core_is_never_loaded_whole(tmp_path, small_blocks, monkeypatch):
    zarr = pytest.importorskip("zarr")
    X = _data64().astype(np.float32)
    stored = _zarr(tmp_path, X)

    def refuse(*args, **kwargs):
        raise AssertionError("the whole array was loaded")

    monkeypatch.setattr(type(stored), "__array__", refuse, raising=False)
    with pytest.raises(AssertionError, match="whole array"):
        np.asarray(stored)  # the trap works
    reads = []
    real = BlockArray._block

    def block(self, b):
        if self._cached is None or self._cached[0] != b:
            reads.append(int(self.starts[b + 1] - self.starts[b]))
        return real(self, b)

    monkeypatch.setattr(BlockArray, "_block", block)
    ae = _fast(max_iter=2).fit(stored)
    ae.transform(stored)
    assert isinstance(stored, zarr.Array)
    assert max(reads) == 16  # one block of 16 rows at a time
    # Reads: the scaling pass, then per epoch one pass per 80-row group of
    # batches (7) and the learned-nothing check, then the transform.
    passes = sum(reads) / len(X)
    assert 10 <= passes <= 2 + 7 * 2 + 2


def test_large_out_of_core_source_holds_a_pass_whatever_its_rows(
    tmp_path, small_blocks, monkeypatch
):
    # 3 000 rows: more than PASSES passes of 80 rows, so an epoch shuffles
    # within groups of blocks; a pass holds 80 rows and a batch, not a
    # twelfth of the rows (250), and each block is still read about PASSES
    # times an epoch.
    X = _data64(3000).astype(np.float32)
    stored = _zarr(tmp_path, X)
    reads, taken = [], []
    real_block, real_take = BlockArray._block, data_rows.LazyRows.take

    def block(self, b):
        if self._cached is None or self._cached[0] != b:
            reads.append(int(self.starts[b + 1] - self.starts[b]))
        return real_block(self, b)

    def take(self, rows):
        taken.append(len(rows))
        return real_take(self, rows)

    monkeypatch.setattr(BlockArray, "_block", block)
    monkeypatch.setattr(data_rows.LazyRows, "take", take)
    monkeypatch.setattr(sources, "CHUNK_ELEMENTS", 80 * 6)  # the PCA's chunks
    ae = _fast(max_iter=2, early_stopping=True).fit(stored)
    assert ae.n_iter_ == 2 and np.isfinite(ae.loss_curve_).all()
    assert max(taken) <= 80 + 32
    # The scaling and PCA passes, then per epoch the training passes and the
    # validation rows, read in order; the start judged before and after.
    passes = sum(reads) / len(X)
    assert passes <= 2 + 2 * (data_rows.PASSES + 2) + 2


def test_out_of_core_integer_source_gives_float64(tmp_path):
    X = np.random.RandomState(0).randint(0, 5, size=(100, 6)).astype(np.int16)
    stored = _zarr(tmp_path, X)
    ae = _fast().fit(stored)
    Z = ae.transform(stored)
    assert Z.dtype == np.float64
    assert np.array_equal(Z, _fast().fit(X).transform(X))


def test_out_of_core_errors_are_sklearn_s(tmp_path):
    X = _data64().astype(np.float32)
    stored = _zarr(tmp_path, X)
    ae = _fast().fit(stored)
    with pytest.raises(ValueError, match="X has 6 features, but .* expecting 4"):
        _fast().fit(X[:, :4]).transform(stored)
    bad = X.copy()
    bad[-1, 2] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        ae.transform(_zarr(tmp_path / "bad", bad))
    fresh = _fast()
    with pytest.raises(ValueError, match="Input X contains NaN"):
        fresh.fit(_zarr(tmp_path / "bad2", bad))
    assert not hasattr(fresh, "net_")
    with pytest.raises(ValueError, match="Expected 2D array"):
        _fast().fit(_zarr(tmp_path / "flat", X[:, 0], chunks=(16,)))


@pytest.mark.parametrize("scheduler", ["threads", "sync"])
def test_dask_transform_lazily_with_map_blocks(tmp_path, scheduler):
    da = pytest.importorskip("dask.array")
    dask = pytest.importorskip("dask")
    X = _data64(2000, 6).astype(np.float32)
    stored = _dask(tmp_path, X)  # from a zarr store, not from memory
    ae = _fast().fit(stored)
    calls = []

    def encode(block):
        calls.append(block.shape)
        return ae.transform(block)

    codes = stored.rechunk({1: -1}).map_blocks(
        encode,
        dtype=np.float32,
        chunks=(stored.chunks[0], (ae.n_components_,)),
        meta=np.empty((0, 0), dtype=np.float32),
    )
    assert calls == []  # nothing runs until computed
    with dask.config.set(scheduler=scheduler):
        Z = codes.compute()
    assert len(calls) == len(stored.chunks[0]) > 1
    assert np.array_equal(Z, ae.transform(X))
    assert isinstance(codes, da.Array)
