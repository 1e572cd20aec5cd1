"""Training data on the device: rows, mini-batches and the validation split.

Batches are index-slices of one preloaded float32 tensor (or, for a memory-
mapped file, rows read and standardized batch by batch), fed to skorch through
its ``get_dataset`` / ``get_iterator`` / ``train_split`` hooks instead of the
per-row ``Dataset`` + ``collate`` path.
"""

import math
import mmap

import numpy as np
import torch

from ._scaling import chunks

#: Largest absolute standardized value accepted for training (float32 squares
#: of larger values overflow).
MAX_TRAINING_VALUE = 1e18


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


class LazyRows:
    """Standardize and convert rows of a numpy array batch by batch.

    Used for ``np.memmap`` input so that the file is never copied whole.
    """

    def __init__(self, X, transform, device):
        self.X = X
        self.transform = transform
        self.device = device

    def __len__(self):
        return self.X.shape[0]

    def take(self, rows):
        rows = np.sort(rows.cpu().numpy())  # sorted reads are sequential on disk
        batch = self.transform(self.X[rows]).astype(np.float32, copy=False)
        return torch.from_numpy(batch).to(self.device)


class BatchIterator:
    """Yield ``(X_batch, None)`` mini-batches of a :class:`Rows` dataset.

    The reconstruction target is the batch itself, so no ``y`` is built. With
    ``shuffle``, each epoch draws one permutation from ``generator`` and slices
    it. A trailing batch of one row is merged into the previous batch (batch
    normalization cannot train on a single row).
    """

    def __init__(self, dataset, batch_size, shuffle, generator):
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator

    def __len__(self):
        return len(self._bounds())

    def _bounds(self):
        n, size = len(self.dataset), self.batch_size
        starts = list(range(0, n, size))
        if len(starts) > 1 and n - starts[-1] == 1:
            starts.pop()
        return list(zip(starts, starts[1:] + [n]))

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator)
        else:
            order = torch.arange(n)
        data = self.dataset.data
        if isinstance(data, torch.Tensor):
            order = order.to(data.device)
        for start, stop in self._bounds():
            yield self.dataset.take(order[start:stop]), None


class HoldoutSplit:
    """skorch ``train_split``: hold out a random ``fraction`` of the rows.

    The split is drawn once per dataset and reused when training resumes (after a
    restart), so validation rows never leak into training.
    """

    def __init__(self, fraction, generator):
        self.fraction = fraction
        self.generator = generator
        self._cache = None

    def __call__(self, dataset, y=None, **fit_params):
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


def prepare_rows(X, transform, device):
    """Return a :class:`Rows` dataset over ``X`` standardized by ``transform``.

    An ``np.memmap`` is read batch by batch (never copied whole); any other
    array is standardized chunk by chunk into one float32 tensor on ``device``.
    """
    if _file_backed(X):
        return Rows(LazyRows(X, transform, device))
    data = torch.empty(X.shape, dtype=torch.float32)
    with np.errstate(over="ignore"):  # overflow is reported by check_finite_rows
        for rows in chunks(*X.shape):
            chunk = np.asarray(transform(X[rows]), dtype=np.float32)
            data[rows] = torch.from_numpy(chunk)
    return Rows(data.to(device))


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
