"""Where rows come from: arrays in memory, sparse matrices, out-of-core arrays.

:func:`read_chunk` and :func:`pieces` return dense C-contiguous rows whatever
``X`` is; :class:`SparseRows` and :class:`BlockArray` (zarr, h5py, dask, never
loaded whole) give other sources that face.
"""

import contextlib
import mmap
import sys

import numpy as np
import scipy.sparse as sp

#: Top-level packages whose 2-D arrays are read block by block.
OUT_OF_CORE = ("zarr", "h5py", "dask")

#: Minimum bytes per block of an out-of-core array (whole chunks; fewer at the end).
BLOCK_BYTES = 8 * 2**20

#: A pass over ``X`` reads chunks of about this many values (2 MB of float64).
CHUNK_ELEMENTS = 2**18


def chunks(n_rows, n_features):
    """Yield ``slice`` objects covering ``n_rows`` rows in ~2 MB float64 chunks."""
    step = max(1, CHUNK_ELEMENTS // max(n_features, 1))
    for start in range(0, n_rows, step):
        yield slice(start, start + step)


def read_chunk(X, rows, dtype=None):
    """Return ``X[rows]`` dense and C-contiguous, so results ignore ``X``'s layout."""
    return np.ascontiguousarray(X[rows], dtype=dtype)


def is_out_of_core(X):
    """True for a zarr array, an h5py dataset or a dask array."""
    return (
        type(X).__module__.partition(".")[0] in OUT_OF_CORE
        and hasattr(X, "shape")
        and hasattr(X, "dtype")
        and hasattr(X, "ndim")
    )


def is_lazy(X):
    """True if ``X`` is read batch by batch in training, never preloaded."""
    return isinstance(X, (SparseRows, BlockArray)) or file_backed(X)


def file_backed(X):
    """Return True if ``X`` is (a view of) a memory-mapped file."""
    while X is not None:
        if isinstance(X, (np.memmap, mmap.mmap)):
            return True
        X = getattr(X, "base", None)
    return False


class SparseRows:
    """A SciPy sparse matrix read as dense rows; CSC becomes CSR (~8x faster rows)."""

    def __init__(self, X):
        self.matrix = X.tocsr() if X.format != "csr" else X
        self.shape = X.shape
        self.dtype = X.dtype
        self.ndim = 2

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, rows):
        return self.matrix[rows].toarray()


class BlockArray:
    """A zarr, h5py or dask 2-D array read in chunk-aligned blocks, as ``dtype``."""

    def __init__(self, source, dtype):
        self.source = source
        self.shape = tuple(int(n) for n in source.shape)
        self.dtype = np.dtype(dtype)
        self.ndim = 2
        self.starts = _block_starts(source, self.shape)
        self._cached = None  # (block index, rows)

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, rows):
        if isinstance(rows, slice):
            start, stop, step = rows.indices(self.shape[0])
            if step == 1:
                return self.read(start, max(start, stop))
            rows = np.arange(start, stop, step)
        rows = np.asarray(rows)
        out = np.empty((len(rows), self.shape[1]), dtype=self.dtype)
        for positions, data in self.pieces(rows):
            out[positions] = data
        return out

    def read(self, start, stop):
        """Rows ``start`` to ``stop`` as a C-contiguous array."""
        first = self._block_of(start)
        parts = []
        b = first
        while b < len(self.starts) - 1 and self.starts[b] < stop:
            block = self._block(b)
            lo = max(start, self.starts[b]) - self.starts[b]
            hi = min(stop, self.starts[b + 1]) - self.starts[b]
            parts.append(block[lo:hi])
            b += 1
        if not parts:
            return np.empty((0, self.shape[1]), dtype=self.dtype)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def pieces(self, rows):
        """Yield ``(positions, data)``: ``data[i]`` is row ``rows[positions[i]]``."""
        order = np.argsort(rows, kind="stable")
        ordered = rows[order]
        edges = np.searchsorted(ordered, self.starts)
        for b in range(len(self.starts) - 1):
            lo, hi = edges[b], edges[b + 1]
            if lo == hi:
                continue
            block = self._block(b)
            yield order[lo:hi], block[ordered[lo:hi] - self.starts[b]]

    def _block_of(self, row):
        return max(0, int(np.searchsorted(self.starts, row, side="right")) - 1)

    def _block(self, b):
        if self._cached is not None and self._cached[0] == b:
            return self._cached[1]
        self._cached = None  # free the previous block before reading
        with _one_reader():
            data = self.source[self.starts[b] : self.starts[b + 1]]
            if hasattr(data, "compute"):  # dask
                data = data.compute(scheduler="synchronous")
        data = np.ascontiguousarray(data, dtype=self.dtype)
        self._cached = (b, data)
        return data

    def __getstate__(self):
        return {**self.__dict__, "_cached": None}


def _one_reader():
    """Make zarr read in this thread: its pool's memory arenas outlive the read."""
    zarr = sys.modules.get("zarr")
    config = getattr(zarr, "config", None)
    if config is None or config.get("threading", None) is None:
        return contextlib.nullcontext()
    return config.set({"threading.max_workers": 1, "async.concurrency": 1})


def _block_starts(source, shape):
    """Row offsets of blocks of whole chunks, each of :data:`BLOCK_BYTES` or more."""
    n, p = shape
    row_bytes = max(1, p) * np.dtype(source.dtype).itemsize
    target = max(1, BLOCK_BYTES // row_bytes)
    chunks = getattr(source, "chunks", None)
    if isinstance(chunks, tuple) and chunks and isinstance(chunks[0], tuple):
        sizes = chunks[0]  # dask: the rows of each chunk
        if any(s != s for s in sizes):  # NaN: unknown chunk sizes
            raise ValueError(
                "X is a dask array with unknown chunk sizes; call "
                "X.compute_chunk_sizes() first."
            )
    else:
        step = chunks[0] if isinstance(chunks, tuple) and chunks else 1
        step = max(1, int(step))
        size = max(step, target // step * step)
        sizes = [size] * (n // size) + ([n % size] if n % size else [])
    starts, filled = [0], 0
    for size in sizes:
        filled += int(size)
        if filled - starts[-1] >= target or filled == n:
            starts.append(filled)
    if starts[-1] != n:
        starts.append(n)
    return np.asarray(starts, dtype=np.int64)


def pieces(X, rows):
    """Yield ``(positions, data)`` covering ``X[rows]``; None positions: in order."""
    if isinstance(X, BlockArray):
        yield from X.pieces(rows)
    elif file_backed(X):
        order = np.argsort(rows, kind="stable")
        yield order, read_chunk(X, rows[order])
    else:
        yield None, read_chunk(X, rows)


def as_sparse(X):
    """Return :class:`SparseRows` over ``X`` if it is sparse, else ``X``."""
    return SparseRows(X) if sp.issparse(X) else X
