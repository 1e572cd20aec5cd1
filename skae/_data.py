"""Training data on the device: rows, mini-batches and the validation split.

Batches are index-slices of one preloaded float32 tensor, or, for sources
that are not preloaded (:func:`~skae._sources.is_lazy`: memory-mapped files,
sparse matrices, zarr / HDF5 / dask arrays), rows read and standardized when
a batch needs them (:class:`LazyRows`). They reach skorch through its
``get_dataset`` / ``get_iterator`` / ``train_split`` hooks instead of the
per-row ``Dataset`` + ``collate`` path. Standardization is
:class:`~skae._scaling.Scaling`'s torch side in every case, and a batch holds
the same rows in the same order whichever the source: the fitted model does
not depend on how ``X`` is stored.
"""

import math

import numpy as np
import torch

from ._devices import copy_into, float64_device, move
from ._scaling import chunks
from ._sources import BlockArray, is_lazy, pieces, read_chunk

#: An out-of-core (block-read) source is read in passes over the whole
#: array, each gathering the rows of the next mini-batches (in the epoch's
#: shuffled order) into memory: a pass holds about this share of the
#: source's rows, standardized in float32, so an epoch reads the source this
#: many times over, always in contiguous blocks.
PASS_FRACTION = 1 / 12

#: ... but at least this many values (small sources: one pass).
MIN_PASS_ELEMENTS = 2**22

#: Largest absolute standardized value accepted for training (float32 squares
#: of larger values overflow).
MAX_TRAINING_VALUE = 1e18

#: A trailing mini-batch with fewer rows joins the batch before it (when
#: ``batch_size`` is at least this). torch's CPU matrix products of 5 to 11
#: float32 rows round differently with 1 and 2 threads (measured with torch
#: 2.13 on x86-64; 1-4, 8 and 12 rows or more do not), so a tiny trailing
#: batch would make the fitted model depend on the thread count.
MIN_BATCH_ROWS = 16


def index_dtype(n):
    """int32 positions for fewer than 2**31 rows: half the memory of int64.

    ``torch.randperm`` draws the same permutation in either dtype (checked up
    to 2,000,000 rows), so fitted models do not change; a 2,000,000-row split
    and shuffle then hold 8 MB each instead of 16.
    """
    return torch.int32 if n < 2**31 else torch.int64


def batch_bounds(n, batch_size):
    """Return ``(start, stop)`` pairs of the mini-batches of ``n`` rows.

    Batches of ``batch_size`` rows; a trailing batch of fewer than
    ``MIN_BATCH_ROWS`` rows (with ``batch_size >= MIN_BATCH_ROWS``), or of a
    single row (batch normalization cannot train on one), joins the batch
    before it.
    """
    starts = list(range(0, n, batch_size))
    if len(starts) > 1:
        tail = n - starts[-1]
        if tail == 1 or (batch_size >= MIN_BATCH_ROWS and tail < MIN_BATCH_ROWS):
            starts.pop()
    return list(zip(starts, starts[1:] + [n]))


class Rows(torch.utils.data.Dataset):
    """Rows of a 2-D source, standardized on the fly when needed.

    ``data`` is either a float32 tensor already standardized and on the
    training device (the fast path) or a :class:`LazyRows` reading batches
    from an array such as ``np.memmap``. ``index`` selects a subset (a
    train/validation split) without copying.
    """

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

    def batches(self, order, bounds):
        """Yield the batch of ``order[start:stop]`` for each pair of ``bounds``.

        Lazy data whose source is read in blocks gather several batches per
        pass over the source (:data:`PASS_FRACTION`); the others take each
        batch as it comes. The batches are the same either way.
        """
        per_pass = getattr(self.data, "pass_rows", None)
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
                # The last batch is a copy: the caller still holds it while
                # the next pass is read, and a view would keep this whole
                # pass alive meanwhile.
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
    """Read, standardize and convert rows of ``X`` when a batch needs them.

    Used for sources that are not preloaded (an ``np.memmap``, a sparse
    matrix, a zarr / HDF5 / dask array), so that ``X`` is never copied
    whole. ``standardize`` is the scaling's torch side for ``X``'s dtype.
    A :class:`~skae._sources.BlockArray` is read in passes of
    ``pass_rows`` rows (:meth:`Rows.batches`); the other sources batch by
    batch (``pass_rows`` is None).
    """

    def __init__(self, X, standardize, device, host=None):
        self.X = X
        self.standardize = standardize
        self.device = device
        # Where ``standardize`` computes (the CPU for float64 rows on MPS).
        self.host = device if host is None else host
        self.pass_rows = None
        if isinstance(X, BlockArray):
            n, p = X.shape
            self.pass_rows = max(
                math.ceil(n * PASS_FRACTION), MIN_PASS_ELEMENTS // max(p, 1)
            )

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
            out = torch.empty((0, self.X.shape[1]), device=self.device)
        return out


class BatchIterator:
    """Yield ``(X_batch, None)`` mini-batches of a :class:`Rows` dataset.

    The reconstruction target is the batch itself, so no ``y`` is built. With
    ``shuffle``, each epoch draws one permutation from ``generator`` and slices
    it into the batches of :func:`batch_bounds`. With ``shard`` (a
    :class:`~skae._distributed.DataParallel`), each global batch is cut the
    same way on every rank and this rank's piece is yielded as
    ``(X_piece, n_rows_of_the_global_batch)``.
    """

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
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator, dtype=index_dtype(n))
        else:
            order = torch.arange(n, dtype=index_dtype(n))
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


class HoldoutSplit:
    """skorch ``train_split``: hold out a random ``fraction`` of the rows.

    The split is drawn once per dataset and reused when training resumes after
    a restart, so validation rows never leak into training; :meth:`forget`
    drops it at the end of a training call (it references the training rows).
    With ``active=False`` (what ``partial_fit`` sets) every row is trained on.
    """

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
        if isinstance(dataset.data, torch.Tensor):
            valid, train = valid.to(dataset.data.device), train.to(dataset.data.device)
        return Rows(dataset.data, train), Rows(dataset.data, valid)


def prepare_rows(X, scaling, device):
    """Return a :class:`Rows` dataset over ``X`` standardized by ``scaling``.

    A lazy source (:func:`~skae._sources.is_lazy`) is read batch by batch,
    never copied whole; any other array is standardized chunk by chunk, in
    ``X``'s dtype (the arithmetic of inference), on ``device`` (float64 rows
    on the CPU for MPS, which has no float64), into one float32 tensor on
    ``device``.
    """
    dtype = torch.float64 if X.dtype == np.float64 else torch.float32
    # float64 arithmetic where the device has none (MPS): on the CPU.
    host = float64_device(device) if dtype == torch.float64 else torch.device(device)
    standardize = scaling.standardizer(dtype, host)
    if is_lazy(X):
        return Rows(LazyRows(X, standardize, device, host))
    data = torch.empty(X.shape, dtype=torch.float32, device=device)
    for rows in chunks(*X.shape):
        # Writable: torch warns on read-only arrays (a DataFrame's values
        # under pandas' copy-on-write are), though it only reads this one.
        chunk = np.require(read_chunk(X, rows), requirements=["W"])
        copy_into(data[rows], standardize(torch.from_numpy(chunk).to(host)))
    return Rows(data)


def check_finite_rows(rows):
    """Raise ValueError if the standardized training data is too large to train.

    The network trains in float32; squared errors of values beyond ~1e18
    overflow it, so such data is refused before training starts.
    """
    data = rows.data
    if isinstance(data, torch.Tensor) and data.numel():
        peak = data.abs().max().item()
        if not peak <= MAX_TRAINING_VALUE:
            raise ValueError(
                f"X has values up to {peak:.3g} after scaling; the network trains "
                f"in float32 and needs them below {MAX_TRAINING_VALUE:.0e}. Use "
                "scaling='global' or 'standard', or rescale X."
            )
