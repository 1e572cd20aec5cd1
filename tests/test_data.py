"""Training data: rows, mini-batches, the validation split, memmaps."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from numpy.testing import assert_allclose

from skae import AutoencoderTransformer
from skae._data import rows as data_rows
from skae._data.rows import (
    BatchIterator,
    BlockShuffle,
    HoldoutSplit,
    LazyRows,
    Rows,
    batch_bounds,
    load_rows,
)
from skae._data.scaling import Scaling
from skae._data.sources import as_sparse

CPU = torch.device("cpu")


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


@pytest.mark.parametrize("tail", range(1, 17))
def test_no_batch_smaller_than_16_rows_with_batch_size_16_or_more(tail):
    sizes = [stop - start for start, stop in batch_bounds(64 + tail, 32)]
    assert sum(sizes) == 64 + tail
    assert min(sizes) >= 16
    assert sizes == ([32, 32, tail] if tail == 16 else [32, 32 + tail])


def test_small_batch_sizes_keep_their_batches():
    assert [b - a for a, b in batch_bounds(11, 4)] == [4, 4, 3]
    assert [b - a for a, b in batch_bounds(10, 20)] == [10]


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


def test_load_rows_fits_the_scaling_and_standardizes_once_into_float32():
    X = np.arange(12.0).reshape(4, 3)
    scaling = Scaling("center")
    rows = load_rows(X, scaling, CPU)
    assert_allclose(scaling.mean_, X.mean(axis=0), rtol=0, atol=0)
    assert_allclose(scaling.data_min_, X.min(axis=0), rtol=0, atol=0)
    assert_allclose(scaling.data_max_, X.max(axis=0), rtol=0, atol=0)
    assert rows.data.dtype == torch.float32
    expected = torch.as_tensor(X - X.mean(axis=0), dtype=torch.float32)
    torch.testing.assert_close(rows.data, expected, rtol=0, atol=0)


def test_load_rows_keeps_a_fitted_scaling():
    # A later partial_fit call: standardized by the statistics of the first.
    X = np.arange(12.0).reshape(4, 3)
    scaling = Scaling("center").fit(X)
    rows = load_rows(X + 1.0, scaling, CPU)
    assert_allclose(scaling.mean_, X.mean(axis=0), rtol=0, atol=0)
    expected = torch.as_tensor(X + 1.0 - X.mean(axis=0), dtype=torch.float32)
    torch.testing.assert_close(rows.data, expected, rtol=0, atol=0)


def test_load_rows_reads_a_memmap_lazily(tmp_path):
    X = np.lib.format.open_memmap(
        tmp_path / "x.npy", mode="w+", dtype=np.float64, shape=(6, 2)
    )
    X[:] = np.arange(12.0).reshape(6, 2)
    rows = load_rows(X, Scaling(None), CPU)
    assert isinstance(rows.data, LazyRows)
    torch.testing.assert_close(
        rows.take(torch.tensor([4, 1])), torch.tensor([[8.0, 9.0], [2.0, 3.0]])
    )  # in the order asked for (read sorted, for the disk)


def _unit(n=10, p=3):
    return np.random.RandomState(0).uniform(size=(n, p))


@pytest.mark.parametrize("fitted", [False, True])
@pytest.mark.parametrize(
    "X, scaling, options, match",
    [
        (_unit(1), "global", {}, "n_samples=1 is too few to fit AutoencoderT"),
        (
            _unit(2),
            "global",
            {"validation_fraction": 0.1},
            r"n_samples=2 is too few for early_stopping=True with "
            r"validation_fraction=0.1: 1 validation and 1 training rows",
        ),
        (
            _unit() * 3 - 1,
            None,
            {"unit_interval": True},
            r"loss='bce' needs X in \[0, 1\]; X has values from -0.9.* to 1.9",
        ),
        (
            _unit() * 1e30,
            "center",
            {},
            r"X has values up to \d.*e\+29 after scaling; .* below 1e\+18",
        ),
        (
            np.where(_unit() > 0.9, np.nan, _unit()),
            "global",
            {},
            "Input X contains NaN",
        ),
        (np.where(_unit() > 0.9, np.inf, _unit()), "global", {}, "X contains infinity"),
    ],
)
def test_load_rows_refusals(X, scaling, options, match, fitted):
    # ``fitted``: a later partial_fit call, with statistics from earlier rows.
    scaling = Scaling(scaling)
    if fitted:
        scaling.fit(_unit())
    with pytest.raises(ValueError, match=match):
        load_rows(X, scaling, CPU, estimator_name="AutoencoderTransformer", **options)


def test_load_rows_accepts_what_it_does_not_refuse():
    # The edges of each refusal: 2 training rows, [0, 1] itself, 1e17.
    load_rows(_unit(3), Scaling(None), CPU, validation_fraction=0.1)
    edges = np.array([[0.0, 1.0], [1.0, 0.0]])
    load_rows(edges, Scaling(None), CPU, unit_interval=True)
    load_rows(_unit() * 1e17, Scaling(None), CPU)


def _lazy(X, source, path):
    if source == "sparse":
        return as_sparse(sp.csr_matrix(X))
    out = np.lib.format.open_memmap(path, mode="w+", dtype=X.dtype, shape=X.shape)
    out[:] = X
    return out


@pytest.mark.parametrize("source", ["memmap", "sparse"])
def test_float32_overflow_is_refused_for_lazy_sources_too(tmp_path, source):
    # Lazy rows are standardized batch by batch in training, never whole:
    # the range found in the scaling's pass decides before training starts.
    X = _lazy(_unit(20, 4) * 1e30, source, tmp_path / "huge.npy")
    with pytest.raises(ValueError, match=r"X has values up to 9.*e\+29 after scaling"):
        load_rows(X, Scaling(None), CPU)
    X = _lazy(_unit(20, 4) * 1e17, source, tmp_path / "large.npy")
    assert isinstance(load_rows(X, Scaling(None), CPU).data, LazyRows)


def test_read_only_input_reaches_torch_writable(monkeypatch):
    # A DataFrame's values under pandas' copy-on-write are read-only, and
    # torch warns when it wraps a read-only array (once per process).
    wrapped, from_numpy = [], torch.from_numpy

    def checked(array):
        wrapped.append(array.flags.writeable)
        return from_numpy(array)

    monkeypatch.setattr(data_rows.torch, "from_numpy", checked)
    X = np.random.RandomState(0).normal(size=(50, 4))
    X.setflags(write=False)
    AutoencoderTransformer(2, hidden_layer_sizes=(4,), max_iter=2).fit(X)
    assert wrapped and all(wrapped)


def test_split_and_shuffle_hold_four_bytes_per_row_and_the_same_order():
    # int32 positions halve what a 2,000,000-row split and shuffle hold,
    # and draw the permutation an int64 one would: fitted models do not move.
    rows = Rows(torch.arange(2000.0).reshape(1000, 2))
    train, valid = HoldoutSplit(0.1, torch.Generator().manual_seed(0))(rows)
    order = torch.randperm(1000, generator=torch.Generator().manual_seed(0))
    assert train.index.element_size() == valid.index.element_size() == 4
    assert torch.equal(valid.index.long(), order[:100])
    assert torch.equal(train.index.long(), order[100:])
    batches = BatchIterator(train, 900, True, torch.Generator().manual_seed(1))
    ((batch, _),) = list(batches)
    shuffle = torch.randperm(900, generator=torch.Generator().manual_seed(1))
    assert torch.equal(batch, rows.data[order[100:][shuffle]])


def test_block_shuffle_draws_every_position_once_holding_one_group():
    # Blocks of 15 to 40 positions in groups of at most 50: slices of an
    # epoch never make it hold more than one group, however long the epoch.
    edges = np.array([0, 30, 60, 75, 100, 140, 160])
    order = BlockShuffle(edges, 50, torch.Generator().manual_seed(0))
    pieces, held = [], []
    for start in range(0, 160, 24):
        pieces.append(order[start : min(start + 24, 160)])
        held.append(len(order.group))
    drawn = torch.cat(pieces)
    assert drawn.dtype == torch.int32
    assert sorted(drawn.tolist()) == list(range(160))
    assert max(held) <= 50
    # Each block's positions come within one group's 50 draws of the epoch.
    at = np.argsort(drawn.numpy())
    for b in range(len(edges) - 1):
        span = at[edges[b] : edges[b + 1]]
        assert span.max() - span.min() < 50
