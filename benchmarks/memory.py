"""Peak memory of ``transform`` on 1 000 000 x 256 float32 rows.

Fits :class:`skae.AutoencoderTransformer` (default architecture, 8 components)
on the first 20 000 rows, then transforms all 1 000 000 rows and reads the
process's peak resident memory (``VmHWM``, reset through
``/proc/self/clear_refs`` just before the call, Linux only). "Extra" is the
peak minus the resident memory before the call minus the output's size: what
``transform`` needs beyond input and output, which should be a few batches.

Usage::

    python benchmarks/memory.py                  # 1 000 000 rows
    python benchmarks/memory.py --quick --out /tmp/results   # 100 000 rows

Results go to ``benchmarks/results/memory.json`` and ``memory.md``.
"""

import os
import sys

from _common import thread_env

# The BLAS / OpenMP pools read these once, when numpy and torch are imported.
os.environ.update(thread_env(sys.argv[1:]))

import time

import numpy as np
import torch
from _common import (
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


def main(argv=None):
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
    md = f"{machine_line(facts)}\n\n{summary}\n\n{table}\n"
    payload = {
        "machine": facts,
        "n_rows": n_rows,
        "seconds": seconds,
        "bytes": {
            "input": X.nbytes,
            "output": Z.nbytes,
            "before": before,
            "peak": peak,
            "extra": extra,
            "batch": batch_bytes,
        },
    }
    write_results(args.out, "memory", args.quick, payload, md)


if __name__ == "__main__":
    main()
