"""Training data on the device: rows, mini-batches and the validation split.

Batches are index-slices of one preloaded float32 tensor (or, for a memory-
mapped file, rows read and standardized batch by batch), fed to skorch through
its ``get_dataset`` / ``get_iterator`` / ``train_split`` hooks instead of the
per-row ``Dataset`` + ``collate`` path. Standardization is
:class:`~skae._scaling.Scaling`'s torch side in every case.
"""

import math
import mmap

import numpy as np
import torch

from ._scaling import chunks, read_chunk

#: Largest absolute standardized value accepted for training (float32 squares
#: of larger values overflow).
MAX_TRAINING_VALUE = 1e18

#: A trailing mini-batch with fewer rows joins the batch before it (when
#: ``batch_size`` is at least this). torch's CPU matrix products of 5 to 11
#: float32 rows round differently with 1 and 2 threads (measured with torch
#: 2.13 on x86-64; 1-4, 8 and 12 rows or more do not), so a tiny trailing
#: batch would make the fitted model depend on the thread count.
MIN_BATCH_ROWS = 16


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

    def preloaded(self):
        """The standardized float32 tensor of every row, or None (lazy rows)."""
        if self.index is None and isinstance(self.data, torch.Tensor):
            return self.data
        return None


class LazyRows:
    """Standardize and convert rows of a numpy array batch by batch.

    Used for ``np.memmap`` input so that the file is never copied whole.
    ``standardize`` is the scaling's torch side for ``X``'s dtype.
    """

    def __init__(self, X, standardize, device):
        self.X = X
        self.standardize = standardize
        self.device = device

    def __len__(self):
        return self.X.shape[0]

    def take(self, rows):
        rows = np.sort(rows.cpu().numpy())  # sorted reads are sequential on disk
        batch = torch.from_numpy(read_chunk(self.X, rows)).to(self.device)
        return self.standardize(batch).to(torch.float32)


class BatchIterator:
    """Yield ``(X_batch, None)`` mini-batches of a :class:`Rows` dataset.

    The reconstruction target is the batch itself, so no ``y`` is built. With
    ``shuffle``, each epoch draws one permutation from ``generator`` and slices
    it into the batches of :func:`batch_bounds`.
    """

    def __init__(self, dataset, batch_size, shuffle, generator):
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator

    def __len__(self):
        return len(batch_bounds(len(self.dataset), self.batch_size))

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator)
        else:
            order = torch.arange(n)
        data = self.dataset.data
        if isinstance(data, torch.Tensor):
            order = order.to(data.device)
        for start, stop in batch_bounds(n, self.batch_size):
            yield self.dataset.take(order[start:stop]), None


class HoldoutSplit:
    """skorch ``train_split``: hold out a random ``fraction`` of the rows.

    The split is drawn once per dataset and reused when training resumes after
    a restart, so validation rows never leak into training. The fit parameter
    ``holdout=False`` (what ``partial_fit`` passes) trains on every row.
    """

    def __init__(self, fraction, generator):
        self.fraction = fraction
        self.generator = generator
        self._cache = None

    def __call__(self, dataset, y=None, holdout=True, **fit_params):
        if not holdout:
            return dataset, None
        if self._cache is not None and self._cache[0] is dataset:
            return self._cache[1]
        self._cache = (dataset, self._split(dataset))
        return self._cache[1]

    def __getstate__(self):
        return {**self.__dict__, "_cache": None}

    def _split(self, dataset):
        n = len(dataset)
        n_valid = max(1, math.ceil(self.fraction * n))
        order = torch.randperm(n, generator=self.generator)
        valid, train = order[:n_valid], order[n_valid:]
        base = dataset.index
        if base is not None:
            valid, train = base[valid], base[train]
        if isinstance(dataset.data, torch.Tensor):
            valid, train = valid.to(dataset.data.device), train.to(dataset.data.device)
        return Rows(dataset.data, train), Rows(dataset.data, valid)


def prepare_rows(X, scaling, device):
    """Return a :class:`Rows` dataset over ``X`` standardized by ``scaling``.

    An ``np.memmap`` is read batch by batch (never copied whole); any other
    array is standardized chunk by chunk, in ``X``'s dtype on ``device`` (the
    arithmetic of inference), into one float32 tensor there.
    """
    dtype = torch.float64 if X.dtype == np.float64 else torch.float32
    standardize = scaling.standardizer(dtype, device)
    if _file_backed(X):
        return Rows(LazyRows(X, standardize, device))
    data = torch.empty(X.shape, dtype=torch.float32, device=device)
    for rows in chunks(*X.shape):
        # Writable: torch warns on read-only arrays (a DataFrame's values
        # under pandas' copy-on-write are), though it only reads this one.
        chunk = np.require(read_chunk(X, rows), requirements=["W"])
        data[rows] = standardize(torch.from_numpy(chunk).to(device))
    return Rows(data)


def _file_backed(X):
    """Return True if ``X`` is (a view of) a memory-mapped file."""
    while X is not None:
        if isinstance(X, (np.memmap, mmap.mmap)):
            return True
        X = getattr(X, "base", None)
    return False


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
