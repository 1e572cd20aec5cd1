"""Peak memory of ``transform``, and of ``fit`` on sparse and out-of-core data.

1. ``transform`` of 1 000 000 x 256 float32 rows in memory: fits
   :class:`skae.AutoencoderTransformer` (default architecture, 8
   components) on the first 20 000 rows, transforms all rows and reads the
   process's peak resident memory (``VmHWM``, reset through
   ``/proc/self/clear_refs`` just before the call, Linux only). "Extra" is
   the peak minus the resident memory before the call minus the output's
   size: what ``transform`` needs beyond input and output, which should be a
   few batches.
2. ``fit`` (one epoch) and ``transform`` of a zarr array, an HDF5 dataset
   (h5py) and a dask array (over the zarr store) of 64 float32 features, in
   chunks of 65 536 rows, at 1 000 000 and 4 000 000 rows (244 and 977 MiB),
   each call in a fresh process: the peak resident memory growth at each
   size (for ``transform``, beyond the output array), the slope between
   the sizes in bytes per row, and the fixed part (the growth the line
   through both points gives at 0 rows). ``fit`` keeps the validation
   split's positions, 4 bytes per row as int32; the target is at most 8
   bytes per row beyond those, and beyond the output for ``transform``. A
   smaller network than the default (``hidden_layer_sizes=(32,)``, 8
   components) keeps the run short; memory does not depend on it. Both
   sizes are above 786 432 rows, from which an epoch shuffles the rows
   within groups of blocks (below it, exactly as an array in memory).
3. At 1 000 000 rows, for comparison: the same data loaded whole with
   ``np.asarray`` first (what ``check_array`` does), and a 50 000 x 2 000
   float32 CSR matrix at 1 % density (dense: 381 MiB), same network.

Two fresh processes run at a time (``--jobs``); the seconds they report
are those of a shared machine. They run glibc's malloc with a fixed mmap
threshold of 1 MiB (``MALLOC_MMAP_THRESHOLD_``): buffers of a MiB or more
go back to the system when freed, so the peak is what skae and the readers
hold. With the default, moving threshold the heap keeps freed blocks of
16 MiB by chance, and the same call peaks 15 to 30 MiB higher or lower from
one run to the next, more than the per-row figures being measured.

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

import ctypes
import gc
import json
import subprocess
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from _common import (
    command_line,
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


def _trim():
    """Give freed heap memory back to the system (glibc), so none is reused."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


#: Out-of-core sources: rows at two sizes, features, rows per chunk.
SOURCE_ROWS, SOURCE_FEATURES, SOURCE_CHUNK = (1_000_000, 4_000_000), 64, 65_536
#: The sources read block by block.
OUT_OF_CORE = ("zarr", "h5py", "dask")
#: Bytes per row of fit's validation positions (int32), not counted in its target.
POSITION_BYTES = 4
#: Bytes per row allowed beyond those positions (fit) or the output (transform).
TARGET_BYTES_PER_ROW = 8
#: Environment of the measurement processes (see the module's docstring).
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(2**20)}
#: Sparse matrix: rows, features, density.
SPARSE = (50_000, 2_000, 0.01)
#: The network of the out-of-core and sparse measurements.
SMALL_NET = dict(n_components=8, hidden_layer_sizes=(32,), max_iter=1, tol=0.0)


def source_rows(quick):
    return tuple(n // 10 for n in SOURCE_ROWS) if quick else SOURCE_ROWS


def write_sources(directory, n_rows):
    """Write the zarr store and the HDF5 file, block by block."""
    import h5py
    import zarr

    shape = (n_rows, SOURCE_FEATURES)
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


def measure_scenario(kind, directory, call, quick):
    """Peak RSS growth of one ``fit`` or ``transform`` (run in a fresh process)."""
    warnings.simplefilter("ignore")
    if kind == "sparse":
        X = sparse_source(quick)
    else:
        before_load = _status("VmRSS")
        _reset_peak()
        X = open_source(kind, directory)
        load_peak = _status("VmHWM") - before_load
    est = AutoencoderTransformer(random_state=0, **SMALL_NET)
    est.fit(X[:4096])  # warm-up: libraries, allocator pools
    est.transform(X[:4096])
    result = {"kind": kind, "call": call, "n_rows": X.shape[0]}
    if kind == "numpy":
        result["load"] = load_peak
    _trim()
    before = _status("VmRSS")
    _reset_peak()
    start = time.perf_counter()
    out = est.fit(X) if call == "fit" else est.transform(X)
    result["seconds"] = time.perf_counter() - start
    result["growth"] = _status("VmHWM") - before
    if call == "transform":
        result["output_bytes"] = out.nbytes
        result["growth"] -= out.nbytes  # beyond the output
    return result


def run_scenarios(args):
    """Run every measurement in a fresh process, ``args.jobs`` at a time."""
    sizes = source_rows(args.quick)
    tasks = []
    with tempfile.TemporaryDirectory() as tmp:
        directories = {}
        for n_rows in sizes:
            directories[n_rows] = Path(tmp) / str(n_rows)
            directories[n_rows].mkdir()
            print(f"writing {n_rows:,} rows ...", flush=True)
            write_sources(directories[n_rows], n_rows)
        for kind in (*OUT_OF_CORE, "numpy", "sparse"):
            for n_rows in sizes if kind in OUT_OF_CORE else sizes[:1]:
                for call in ("fit", "transform"):
                    tasks.append((kind, directories[n_rows], call))

        def run(task):
            kind, directory, call = task
            command = [sys.executable, __file__, "--scenario", kind, str(directory)]
            command += [call, "--threads", str(args.threads)]
            command += ["--quick"] if args.quick else []
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                check=True,
                timeout=1800,
                env={**os.environ, **MALLOC_ENV},
            )
            result = json.loads(done.stdout.strip().splitlines()[-1])
            print(
                f"{kind} {call} {result['n_rows']:,} rows: "
                f"{result['growth'] / MIB:.1f} MiB",
                flush=True,
            )
            return result

        with ThreadPoolExecutor(args.jobs) as pool:
            return list(pool.map(run, tasks))


def per_row(results, kind, call):
    """Growth at each size, slope (bytes per row) and fixed part (bytes)."""
    (small, large) = sorted(
        (r for r in results if r["kind"] == kind and r["call"] == call),
        key=lambda r: r["n_rows"],
    )
    slope = (large["growth"] - small["growth"]) / (large["n_rows"] - small["n_rows"])
    fixed = small["growth"] - slope * small["n_rows"]
    return small, large, slope, fixed


def out_of_core_table(results):
    names = {
        "zarr": "zarr array",
        "h5py": "HDF5 dataset, h5py",
        "dask": "dask array over the zarr store",
    }
    rows = []
    for kind in OUT_OF_CORE:
        for call in ("fit", "transform"):
            small, large, slope, fixed = per_row(results, kind, call)
            counted = slope - (POSITION_BYTES if call == "fit" else 0)
            rows.append(
                [
                    names[kind],
                    "fit (1 epoch)" if call == "fit" else "transform, beyond output",
                    small["growth"] / MIB,
                    large["growth"] / MIB,
                    slope,
                    counted,
                    fixed / MIB,
                    large["seconds"],
                ]
            )
    small_n, large_n = (r["n_rows"] for r in per_row(results, "zarr", "fit")[:2])
    return markdown_table(
        [
            "source",
            "call",
            f"peak growth MiB, {small_n:,} rows",
            f"peak growth MiB, {large_n:,} rows",
            "bytes per row",
            "bytes per row beyond int32 positions (fit)",
            "fixed part MiB",
            f"s, {large_n:,} rows",
        ],
        rows,
    )


def comparison_table(results):
    def one(kind, call):
        return next(r for r in results if r["kind"] == kind and r["call"] == call)

    rows = []
    for kind, name in (
        ("zarr", "zarr array, read block by block"),
        ("numpy", "zarr loaded whole with np.asarray first"),
        ("sparse", "CSR matrix, 1 % density"),
    ):
        fit, transform = one(kind, "fit"), one(kind, "transform")
        rows.append(
            [
                name,
                fit["n_rows"],
                fit["load"] / MIB if kind == "numpy" else None,
                fit["growth"] / MIB,
                fit["seconds"],
                transform["growth"] / MIB,
            ]
        )
    return markdown_table(
        [
            "source",
            "rows",
            "loading MiB",
            "fit: peak growth MiB",
            "fit s (1 epoch)",
            "transform: growth beyond output MiB",
        ],
        rows,
    )


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--scenario":
        torch.set_num_threads(int(argv[argv.index("--threads") + 1]))
        kind, directory, call = argv[1], Path(argv[2]), argv[3]
        print(json.dumps(measure_scenario(kind, directory, call, "--quick" in argv)))
        return
    p = parser(__doc__.splitlines()[0])
    p.add_argument(
        "--jobs",
        type=int,
        default=2,
        help="measurement processes run at a time (default: 2)",
    )
    args = p.parse_args(argv)
    began = time.perf_counter()
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
    sources = run_scenarios(args)
    sources_table = out_of_core_table(sources)
    compared = comparison_table(sources)
    print(sources_table)
    print(compared)
    targets = []
    for kind in OUT_OF_CORE:
        for call in ("fit", "transform"):
            _, _, slope, fixed = per_row(sources, kind, call)
            counted = slope - (POSITION_BYTES if call == "fit" else 0)
            beyond = "int32 positions" if call == "fit" else "the output"
            targets.append(
                {
                    "measure": f"{kind}: {call} peak growth, bytes per row beyond "
                    f"{beyond}",
                    "value": counted,
                    "fixed_bytes": fixed,
                    "target": f"<= {TARGET_BYTES_PER_ROW}",
                    "met": counted <= TARGET_BYTES_PER_ROW,
                }
            )
    facts["load_average_end"] = load()
    elapsed = time.perf_counter() - began
    small_n, large_n = source_rows(args.quick)
    net = ", ".join(f"{k}={v!r}" for k, v in SMALL_NET.items())
    md = (
        f"{machine_line(facts)}\n\n{summary}\n\n{table}\n\n"
        f"Out-of-core sources of {small_n:,} and {large_n:,} x {SOURCE_FEATURES} "
        f"float32 rows in chunks of {SOURCE_CHUNK:,} rows: peak resident memory "
        f"growth of one epoch of `fit` and of `transform` (beyond its output), "
        f"each call in a fresh process, `AutoencoderTransformer({net})`; bytes "
        f"per row is the slope between the sizes, the fixed part the growth it "
        f"leaves at 0 rows. Target: at most {TARGET_BYTES_PER_ROW} bytes per "
        f"row beyond fit's {POSITION_BYTES}-byte int32 validation positions, "
        f"and beyond transform's output:"
        f"\n\n{sources_table}\n\n"
        f"For comparison, at {small_n:,} rows (sparse: "
        f"{SPARSE[0] // (10 if args.quick else 1):,} x {SPARSE[1]:,}):"
        f"\n\n{compared}\n\n"
        f"Command: `{command_line(argv)}`; run time {elapsed:.0f} s.\n"
    )
    payload = {
        "machine": facts,
        "command": command_line(argv),
        "seconds_total": elapsed,
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
