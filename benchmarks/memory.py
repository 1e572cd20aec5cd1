"""Peak memory of ``transform``, and of ``fit`` on sparse and out-of-core data.

1. ``transform`` of 1 000 000 x 256 float32 rows in memory: fits
   :class:`skae.AutoencoderTransformer` (default architecture, 8
   components) on the first 20 000 rows, transforms all rows and reads the
   process's peak resident memory (``VmHWM``, reset through
   ``/proc/self/clear_refs`` just before the call, Linux only). "Extra" is
   the peak minus the resident memory before the call minus the output's
   size: what ``transform`` needs beyond input and output, which should be a
   few batches.
2. ``fit`` (one epoch) and ``transform`` of a 2 000 000 x 64 float32 source
   stored as a zarr array, an HDF5 dataset (h5py) and a dask array (over the
   zarr store), each in a fresh process: peak resident memory growth against
   the source's size (488 MiB), and, for comparison, the same data loaded
   whole with ``np.asarray`` first (what ``check_array`` does). A smaller
   network than the default (``hidden_layer_sizes=(32,)``, 8 components)
   keeps the run short; memory does not depend on it.
3. ``fit`` (one epoch) and ``transform`` of a 50 000 x 2 000 float32 CSR
   matrix at 1 % density (dense: 381 MiB), same network, fresh process.

Usage::

    python benchmarks/memory.py                  # full sizes
    python benchmarks/memory.py --quick --out /tmp/results   # a tenth

Results go to ``benchmarks/results/memory.json`` and ``memory.md``.
"""

import os
import sys

from _common import thread_env

# The BLAS / OpenMP pools read these once, when numpy and torch are imported.
os.environ.update(thread_env(sys.argv[1:]))

import json
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from _common import (
    load,
    machine_facts,
    machine_line,
    markdown_table,
    parser,
    write_results,
)

from skae import AutoencoderTransformer
from skae._inference import batch_rows

MIB = 2**20


def _status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024  # kB -> bytes
    raise KeyError(key)


def _reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current resident size


#: Out-of-core source: rows, features, rows per chunk.
SOURCE_SHAPE, SOURCE_CHUNK = (2_000_000, 64), 65_536
#: Sparse matrix: rows, features, density.
SPARSE = (50_000, 2_000, 0.01)
#: The network of the out-of-core and sparse measurements.
SMALL_NET = dict(n_components=8, hidden_layer_sizes=(32,), max_iter=1, tol=0.0)


def write_sources(directory, n_rows):
    """Write the zarr store and the HDF5 file, block by block."""
    import h5py
    import zarr

    shape = (n_rows, SOURCE_SHAPE[1])
    chunks = (min(SOURCE_CHUNK, n_rows), shape[1])
    z = zarr.open_array(
        str(directory / "x.zarr"), mode="w", shape=shape, chunks=chunks, dtype="f4"
    )
    rng = np.random.default_rng(0)
    latent = rng.standard_normal((8, shape[1])).astype(np.float32)
    with h5py.File(directory / "x.h5", "w") as f:
        d = f.create_dataset("x", shape=shape, chunks=chunks, dtype="f4")
        for start in range(0, n_rows, chunks[0]):
            m = min(chunks[0], n_rows - start)
            block = rng.standard_normal((m, 8), dtype=np.float32) @ latent
            block += 0.1 * rng.standard_normal((m, shape[1]), dtype=np.float32)
            z[start : start + m] = block
            d[start : start + m] = block


def open_source(kind, directory):
    """The stored source of ``kind`` (``"numpy"``: the zarr data loaded whole)."""
    import zarr

    if kind == "h5py":
        import h5py

        return h5py.File(directory / "x.h5", "r")["x"]
    if kind == "dask":
        import dask.array as da

        return da.from_zarr(str(directory / "x.zarr"))
    z = zarr.open_array(str(directory / "x.zarr"), mode="r")
    return np.asarray(z) if kind == "numpy" else z


def sparse_source(quick):
    import scipy.sparse as sp

    n, p, density = SPARSE
    n = n // 10 if quick else n
    return sp.random(
        n, p, density=density, format="csr", dtype=np.float32, random_state=0
    )


def measure_scenario(kind, directory, quick):
    """Peak RSS growth of fit and transform (run in a fresh process)."""
    warnings.simplefilter("ignore")
    if kind == "sparse":
        X = sparse_source(quick)
        source_bytes = X.shape[0] * X.shape[1] * 4  # dense float32
    else:
        source_bytes = int(np.prod(open_source("zarr", directory).shape)) * 4
    before_load = _status("VmRSS")
    _reset_peak()
    if kind != "sparse":
        X = open_source(kind, directory)
    load_peak = _status("VmHWM") - before_load
    est = AutoencoderTransformer(random_state=0, **SMALL_NET)
    est.fit(X[:4096])  # warm-up: libraries, allocator pools
    est.transform(X[:4096])
    result = {"kind": kind, "source_bytes": source_bytes, "load": load_peak}
    for name, call in (
        ("fit", lambda: est.fit(X)),
        ("transform", lambda: est.transform(X)),
    ):
        before = _status("VmRSS")
        _reset_peak()
        start = time.perf_counter()
        out = call()
        result[f"{name}_s"] = time.perf_counter() - start
        result[name] = _status("VmHWM") - before
        if name == "transform":
            result["output_bytes"] = out.nbytes
    return result


def out_of_core_rows(args):
    """Run every out-of-core and sparse scenario in a fresh process."""
    n_rows = SOURCE_SHAPE[0] // 10 if args.quick else SOURCE_SHAPE[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        write_sources(directory, n_rows)
        for kind in ("zarr", "h5py", "dask", "numpy", "sparse"):
            print(f"{kind} ...", flush=True)
            command = [sys.executable, __file__, "--scenario", kind, str(directory)]
            command += ["--threads", str(args.threads)]
            command += ["--quick"] if args.quick else []
            done = subprocess.run(
                command, capture_output=True, text=True, check=True, timeout=1800
            )
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return rows


def out_of_core_table(results):
    def pct(value, r):
        return 100.0 * value / r["source_bytes"]

    names = {
        "zarr": "zarr array (chunks of 65 536 rows)",
        "h5py": "HDF5 dataset, h5py (chunks of 65 536 rows)",
        "dask": "dask array over the zarr store",
        "numpy": "zarr loaded whole with np.asarray first (info)",
        "sparse": "CSR matrix, 1 % density (source: its dense size)",
    }
    rows = []
    for r in results:
        extra = r["transform"] - r["output_bytes"]
        rows.append(
            [
                names[r["kind"]],
                r["source_bytes"] / MIB,
                r["load"] / MIB if r["kind"] == "numpy" else None,
                r["fit"] / MIB,
                pct(r["fit"], r),
                r["fit_s"],
                extra / MIB,
                pct(extra, r),
            ]
        )
    return markdown_table(
        [
            "source",
            "source MiB",
            "loading MiB",
            "fit: peak growth MiB",
            "fit: % of source",
            "fit s (1 epoch)",
            "transform: growth beyond output MiB",
            "transform: % of source",
        ],
        rows,
    )


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--scenario":
        torch.set_num_threads(int(argv[argv.index("--threads") + 1]))
        kind, directory = argv[1], Path(argv[2])
        print(json.dumps(measure_scenario(kind, directory, "--quick" in argv)))
        return
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    torch.set_num_threads(args.threads)
    n_rows = 100_000 if args.quick else 1_000_000
    facts = machine_facts()
    print(f"machine: {machine_line(facts)}", flush=True)

    rng = np.random.default_rng(0)
    X = np.empty((n_rows, 256), dtype=np.float32)
    for start in range(0, n_rows, 100_000):  # filled in chunks: no float64 copy
        X[start : start + 100_000] = rng.standard_normal(
            (min(100_000, n_rows - start), 256), dtype=np.float32
        )
    est = AutoencoderTransformer(8, max_iter=2, random_state=0).fit(X[:20_000])
    est.transform(X[:2048])  # warm-up: allocator pools, lazy imports

    _reset_peak()
    before = _status("VmRSS")
    start = time.perf_counter()
    Z = est.transform(X)
    seconds = time.perf_counter() - start
    peak = _status("VmHWM")
    extra = peak - before - Z.nbytes
    rows_per_batch = batch_rows(256)  # skae's inference batch
    batch_bytes = rows_per_batch * 256 * 4

    rows = [
        ["input X (float32)", X.nbytes / MIB],
        ["output Z (float32)", Z.nbytes / MIB],
        ["resident before transform", before / MIB],
        ["peak during transform", peak / MIB],
        ["extra beyond input and output", extra / MIB],
        [f"one input batch ({rows_per_batch} x 256 float32)", batch_bytes / MIB],
        ["extra / one input batch", extra / batch_bytes],
    ]
    table = markdown_table(["quantity", "MiB"], rows)
    summary = (
        f"transform of {n_rows:,} x 256 float32 rows: {seconds:.2f} s "
        f"({n_rows / seconds:,.0f} rows/s)"
    )
    print(table)
    print(summary)
    input_bytes, output_bytes = X.nbytes, Z.nbytes
    del X, Z

    print("out-of-core and sparse sources ...", flush=True)
    sources = out_of_core_rows(args)
    sources_table = out_of_core_table(sources)
    print(sources_table)
    targets = [
        {
            "measure": f"{r['kind']}: fit peak memory growth / source size",
            "value": r["fit"] / r["source_bytes"],
            "target": "< 0.3",
            "met": r["fit"] / r["source_bytes"] < 0.3,
        }
        for r in sources
        if r["kind"] in ("zarr", "h5py", "dask")
    ]
    facts["load_average_end"] = load()
    n_source = sources[0]["source_bytes"] // (4 * SOURCE_SHAPE[1])
    net = ", ".join(f"{k}={v!r}" for k, v in SMALL_NET.items())
    md = (
        f"{machine_line(facts)}\n\n{summary}\n\n{table}\n\n"
        f"Out-of-core and sparse sources: peak resident memory growth of one "
        f"epoch of `fit` and of `transform` ({n_source:,} x {SOURCE_SHAPE[1]} "
        f"float32 source; sparse: {SPARSE[0] // (10 if args.quick else 1):,} x "
        f"{SPARSE[1]:,}), each source in a fresh process, "
        f"`AutoencoderTransformer({net})`:"
        f"\n\n{sources_table}\n"
    )
    payload = {
        "machine": facts,
        "targets": targets,
        "sources": sources,
        "n_rows": n_rows,
        "seconds": seconds,
        "bytes": {
            "input": input_bytes,
            "output": output_bytes,
            "before": before,
            "peak": peak,
            "extra": extra,
            "batch": batch_bytes,
        },
    }
    write_results(args.out, "memory", args.quick, payload, md)


if __name__ == "__main__":
    main()
