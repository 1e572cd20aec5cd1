"""The rows the net reads: datasets, mini-batches and the validation split.

Batches hold the same rows whether preloaded or read by :class:`LazyRows`,
except from an out-of-core source of more than :data:`PASSES` passes: there an
epoch shuffles the rows within groups of blocks (:class:`BlockShuffle`), so
that memory does not grow with the number of rows.
"""

import math

import numpy as np
import torch

from .._devices import float64_device, move
from .scaling import scan
from .sources import BlockArray, chunks, is_lazy, pieces, read_chunk

#: Values a pass over an out-of-core source holds (16 MiB of float32): the
#: rows of the next mini-batches, read from every block that has one.
PASS_ELEMENTS = 2**22

#: Passes per epoch up to which an out-of-core source is shuffled as an array
#: in memory; a larger source is shuffled within groups of blocks of this many
#: passes. Either way an epoch reads the source about this many times.
PASSES = 12

#: Largest standardized value accepted for training (float32 squares overflow).
MAX_TRAINING_VALUE = 1e18

#: Shorter tail batches merge: CPU products of 5-11 float32 rows vary by threads.
MIN_BATCH_ROWS = 16


def index_dtype(n):
    """int32 positions below 2**31 rows (``randperm`` draws the same order)."""
    return torch.int32 if n < 2**31 else torch.int64


def batch_bounds(n, batch_size):
    """Return the mini-batches' ``(start, stop)``; a short or one-row tail merges."""
    starts = list(range(0, n, batch_size))
    if len(starts) > 1:
        tail = n - starts[-1]
        if tail == 1 or (batch_size >= MIN_BATCH_ROWS and tail < MIN_BATCH_ROWS):
            starts.pop()
    return list(zip(starts, starts[1:] + [n]))


class Rows(torch.utils.data.Dataset):
    """Rows of a preloaded float32 tensor or :class:`LazyRows`; ``index`` a subset."""

    def __init__(self, data, index=None):
        self.data = data
        self.index = index

    def __len__(self):
        return len(self.data) if self.index is None else len(self.index)

    def take(self, positions):
        """Return the batch at ``positions`` (a LongTensor of positions)."""
        rows = positions if self.index is None else self.index[positions]
        if isinstance(self.data, torch.Tensor):
            return self.data.index_select(0, rows)
        return self.data.take(rows)

    def __getitem__(self, i):
        return self.take(torch.as_tensor([i]))[0]

    @property
    def grouped(self):
        """Whether an epoch shuffles within groups of blocks (:class:`BlockShuffle`)."""
        return getattr(self.data, "group_rows", None) is not None

    def order(self, generator=None):
        """An epoch's positions, shuffled by ``generator`` (None: in order).

        :meth:`batches` reads them in increasing slices.
        """
        n = len(self)
        if generator is None:
            return torch.arange(n, dtype=index_dtype(n))
        if not self.grouped:
            return torch.randperm(n, generator=generator, dtype=index_dtype(n))
        # Positions of block b: edges[b] to edges[b + 1] (the index is sorted).
        edges = self.data.X.starts
        if self.index is not None:
            edges = np.searchsorted(self.index.numpy(), edges)
        return BlockShuffle(edges, self.data.group_rows, generator)

    def batches(self, order, bounds):
        """Yield the batch of ``order[start:stop]`` for each pair of ``bounds``."""
        per_pass = None if isinstance(self.data, torch.Tensor) else self.data.pass_rows
        if per_pass is None:
            for start, stop in bounds:
                yield self.take(order[start:stop])
            return
        group = []
        for pair in bounds:
            group.append(pair)
            if pair[1] - group[0][0] >= per_pass or pair is bounds[-1]:
                first = group[0][0]
                rows = self.take(order[first : group[-1][1]])
                last = group.pop()
                for start, stop in group:
                    yield rows[start - first : stop - first]
                # A copy: a view would keep the whole pass alive.
                last = rows[last[0] - first : last[1] - first].clone()
                del rows
                yield last
                group = []

    def preloaded(self):
        """The standardized float32 tensor of every row, or None (lazy rows)."""
        if self.index is None and isinstance(self.data, torch.Tensor):
            return self.data
        return None


class LazyRows:
    """Read, standardize and convert rows of ``X`` when a batch needs them."""

    def __init__(self, X, standardize, device, host=None):
        self.X = X
        self.standardize = standardize
        self.device = device
        # Where ``standardize`` computes (the CPU for float64 rows on MPS).
        self.host = device if host is None else host
        self.pass_rows = self.group_rows = None
        if isinstance(X, BlockArray):
            n, p = X.shape
            self.pass_rows = max(1, PASS_ELEMENTS // max(p, 1))
            if n > PASSES * self.pass_rows:
                self.group_rows = PASSES * self.pass_rows

    def __len__(self):
        return self.X.shape[0]

    @property
    def shape(self):
        return self.X.shape

    def take(self, rows):
        """Rows ``rows`` (a LongTensor), standardized, as float32 on the device."""
        rows = rows.cpu().numpy()
        out = None
        for positions, data in pieces(self.X, rows):
            # data is a fresh copy: standardized in place.
            values = torch.from_numpy(data).to(self.host)
            values = self.standardize(values, out=values)
            values = move(values, self.device, torch.float32)
            if positions is None:
                return values
            if out is None:
                out = torch.empty(
                    (len(rows), self.X.shape[1]),
                    dtype=torch.float32,
                    device=self.device,
                )
            out[torch.from_numpy(positions).to(self.device)] = values
        if out is None:  # no rows
            out = torch.empty(
                (0, self.X.shape[1]), dtype=torch.float32, device=self.device
            )
        return out


class BatchIterator:
    """Yield ``(X_batch, None)``, or with ``shard`` ``(rank's piece, batch rows)``."""

    def __init__(self, dataset, batch_size, shuffle, generator, shard=None):
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.shard = shard
        if shard is not None:
            smallest = min(b - a for a, b in batch_bounds(len(dataset), batch_size))
            if smallest < shard.world:
                raise ValueError(
                    f"batch_size={batch_size} leaves a mini-batch of {smallest} "
                    f"rows for {shard.world} processes: every process needs a row "
                    f"of each batch. Use batch_size >= {max(shard.world, 16)}."
                )

    def __len__(self):
        return len(batch_bounds(len(self.dataset), self.batch_size))

    def __iter__(self):
        n = len(self.dataset)
        order = self.dataset.order(self.generator if self.shuffle else None)
        data = self.dataset.data
        if isinstance(data, torch.Tensor):
            order = order.to(data.device)
        bounds = batch_bounds(n, self.batch_size)
        if self.shard is None:
            for batch in self.dataset.batches(order, bounds):
                yield batch, None
            return
        pieces = [self.shard.piece(order[a:b]) for a, b in bounds]
        ends = np.cumsum([len(p) for p in pieces]).tolist()
        local = list(zip([0, *ends[:-1]], ends))
        batches = self.dataset.batches(torch.cat(pieces), local)
        for (start, stop), batch in zip(bounds, batches):
            yield batch, stop - start


class BlockShuffle:
    """An epoch's positions, shuffled within groups of blocks, drawn group by group.

    The positions of block ``b`` are ``edges[b]`` to ``edges[b + 1]``. Blocks
    come in a random order, in groups of at most ``group_rows`` positions (at
    least one block), each group's positions in a random order. Sliced in
    increasing ranges, it holds one group's positions, never the epoch's.
    """

    def __init__(self, edges, group_rows, generator):
        self.edges = [int(e) for e in edges]
        self.generator = generator
        blocks = torch.randperm(len(self.edges) - 1, generator=generator).tolist()
        self.groups = self._groups(blocks, group_rows)
        self.group = torch.empty(0, dtype=torch.int32)
        self.begin = 0  # the epoch's position of group[0]

    def __len__(self):
        return self.edges[-1]

    def _groups(self, blocks, group_rows):
        group, size = [], 0
        for b in blocks:
            rows = self.edges[b + 1] - self.edges[b]
            if group and size + rows > group_rows:
                yield sorted(group)
                group, size = [], 0
            group.append(b)
            size += rows
        if group:
            yield sorted(group)

    def _draw(self, blocks):
        """The positions of ``blocks`` in a random order, drawn in place."""
        sizes = [self.edges[b + 1] - self.edges[b] for b in blocks]
        ends = torch.tensor(sizes, dtype=torch.int32).cumsum(0, dtype=torch.int32)
        # k-th position of the group -> its block's edge + k - rows before it.
        shift = torch.tensor([self.edges[b] for b in blocks], dtype=torch.int32)
        shift -= ends - torch.tensor(sizes, dtype=torch.int32)
        order = torch.randperm(
            int(ends[-1]), generator=self.generator, dtype=torch.int32
        )
        for piece in order.split(2**16):
            piece += shift[torch.bucketize(piece, ends, out_int32=True, right=True)]
        return order

    def __getitem__(self, rows):
        start, stop, parts = rows.start, rows.stop, []
        while start < stop:
            end = self.begin + len(self.group)
            if start >= end:
                self.group, self.begin = None, end  # freed before the next
                self.group = self._draw(next(self.groups))
                continue
            parts.append(self.group[start - self.begin : min(stop, end) - self.begin])
            start = min(stop, end)
        return parts[0] if len(parts) == 1 else torch.cat(parts)


class HoldoutSplit:
    """skorch ``train_split``: hold out a random ``fraction``, reused after restarts."""

    def __init__(self, fraction, generator):
        self.fraction = fraction
        self.generator = generator
        self.active = True
        self._cache = None

    def __call__(self, dataset, y=None, **fit_params):
        if not self.active:
            return dataset, None
        if self._cache is not None and self._cache[0] is dataset:
            return self._cache[1]
        self._cache = (dataset, self._split(dataset))
        return self._cache[1]

    def forget(self):
        """Drop the cached split, and with it the reference to the rows."""
        self._cache = None

    def __getstate__(self):
        return {**self.__dict__, "_cache": None}

    def _split(self, dataset):
        n = len(dataset)
        n_valid = max(1, math.ceil(self.fraction * n))
        order = torch.randperm(n, generator=self.generator, dtype=index_dtype(n))
        valid, train = order[:n_valid], order[n_valid:]
        base = dataset.index
        if base is not None:
            valid, train = base[valid], base[train]
        if dataset.grouped:
            # Sorted in place: a pass reads only the blocks of its rows.
            valid.numpy().sort()
            train.numpy().sort()
        if isinstance(dataset.data, torch.Tensor):
            valid, train = valid.to(dataset.data.device), train.to(dataset.data.device)
        return Rows(dataset.data, train), Rows(dataset.data, valid)


def load_rows(
    X,
    scaling,
    device,
    *,
    validation_fraction=None,
    unit_interval=False,
    estimator_name=None,
):
    """Check ``X``, fit ``scaling`` if new; return ``X`` as standardized Rows."""
    n_samples = X.shape[0]
    if n_samples < 2:
        raise ValueError(
            f"n_samples={n_samples} is too few to fit {estimator_name}: it needs "
            "at least 2 samples."
        )
    if validation_fraction is not None:
        n_valid = math.ceil(validation_fraction * n_samples)
        if n_samples - n_valid < 2:
            raise ValueError(
                f"n_samples={n_samples} is too few for early_stopping=True with "
                f"validation_fraction={validation_fraction}: {n_valid} validation "
                f"and {n_samples - n_valid} training rows. Pass more samples or "
                "set early_stopping=False."
            )
    if hasattr(scaling, "mean_"):
        low, high = scan(X, estimator_name=estimator_name)
    else:
        scaling.fit(X, estimator_name=estimator_name)
        low, high = scaling.data_min_, scaling.data_max_
    if unit_interval and not (0.0 <= low.min() and high.max() <= 1.0):
        raise ValueError(
            f"loss='bce' needs X in [0, 1]; X has values from {low.min():.4g} to "
            f"{high.max():.4g}. Scale X to [0, 1] first, e.g. with "
            "sklearn.preprocessing.MinMaxScaler, or use loss='mse'."
        )
    peak = scaling.peak(low, high)
    if not peak <= MAX_TRAINING_VALUE:
        raise ValueError(
            f"X has values up to {peak:.3g} after scaling; the network trains "
            f"in float32 and needs them below {MAX_TRAINING_VALUE:.0e}. Use "
            "scaling='global' or 'standard', or rescale X."
        )
    dtype = torch.float64 if X.dtype == np.float64 else torch.float32
    # float64 arithmetic where the device has none (MPS): on the CPU.
    host = float64_device(device) if dtype == torch.float64 else torch.device(device)
    standardize = scaling.standardizer(dtype, host)
    if is_lazy(X):
        return Rows(LazyRows(X, standardize, device, host))
    data = torch.empty(X.shape, dtype=torch.float32, device=device)
    for rows in chunks(*X.shape):
        # Writable: torch warns on read-only arrays (pandas copy-on-write).
        chunk = np.require(read_chunk(X, rows), requirements=["W"])
        values = standardize(torch.from_numpy(chunk).to(host))
        # Rounded to float32 where computed: MPS converts no dtype on a copy.
        data[rows].copy_(values.to(torch.float32))
    return Rows(data)
