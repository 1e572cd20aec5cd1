"""Fit and transform on a GPU: float32, and bfloat16 autocast where supported.

Fits :class:`skae.AutoencoderTransformer` (default architecture, 16
components, ``tol=0`` so that every epoch runs) on 200 000 x 256 float32
rows of a generated nonlinear manifold, on the first GPU found (CUDA, then
XPU, then MPS), and times

* ``fit`` in float32,
* ``fit`` under ``torch.autocast(device_type, dtype=torch.bfloat16,
  cache_enabled=False)``, when
  the device supports bfloat16 (matrix products in bfloat16, weights and
  optimizer in float32),
* ``transform`` of the same rows in float32 and under bfloat16 autocast,

next to the same fit and transform on the CPU (1 torch thread unless
``--threads``), for scale. Device work is synchronized before each clock
read. Without a GPU the script says so and exits cleanly, writing nothing.

Usage::

    python benchmarks/gpu.py                     # 200 000 rows, 5 epochs
    python benchmarks/gpu.py --quick --out /tmp/results   # 20 000 rows

Results go to ``benchmarks/results/gpu.json`` and ``gpu.md``.
"""

import os
import sys

from _common import thread_env

# The BLAS / OpenMP pools read these once, when numpy and torch are imported.
os.environ.update(thread_env(sys.argv[1:]))

import contextlib
import time
import warnings

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

# scikit-learn and skae are imported once a GPU is found: without one, the
# script only needs torch to say so.
EPOCHS = 5


def find_gpu():
    """Return the first available accelerator as a torch.device, or None."""
    if torch.cuda.is_available():
        return torch.device("cuda", 0)
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        return torch.device("xpu", 0)
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return None


def device_name(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "xpu":
        return torch.xpu.get_device_name(device)
    return device.type


def supports_bf16(device):
    """True if matrix products run in bfloat16 under autocast on ``device``."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            a = torch.ones(8, 8, device=device)
            return (a @ a).dtype == torch.bfloat16
    except (RuntimeError, ValueError):
        return False


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "xpu":
        torch.xpu.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def make_data(n_rows, n_features=256, n_latent=8, seed=0):
    """float32 rows of a smooth 8-D manifold embedded in 256-D."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n_rows, n_latent))
    W1 = rng.standard_normal((n_latent, 64)) / np.sqrt(n_latent)
    W2 = rng.standard_normal((64, n_features)) / 8.0
    return (np.tanh(latent @ W1) @ W2).astype(np.float32)


def timed(device, fn):
    synchronize(device)
    start = time.perf_counter()
    out = fn()
    synchronize(device)
    return time.perf_counter() - start, out


def measure(device, X, epochs, autocast):
    """Seconds per epoch of fit, rows/s of transform, and the codes."""
    from sklearn.exceptions import ConvergenceWarning

    from skae import AutoencoderTransformer

    # cache_enabled=False: autocast caches the low-precision copy of each
    # weight until the context exits; around a whole fit the forward passes
    # would keep using the first batch's weights.
    context = (
        torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=False)
        if autocast
        else contextlib.nullcontext()
    )
    est = AutoencoderTransformer(
        16, max_iter=epochs, tol=0.0, random_state=0, device=device
    )
    with context, warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X[:4096])  # warm-up: kernels, allocator, lazy imports
        fit_s, _ = timed(device, lambda: est.fit(X))
        est.transform(X[:4096])
        transform_s, Z = timed(device, lambda: est.transform(X))
    return {
        "fit_s_per_epoch": fit_s / epochs,
        "fit_rows_per_s": X.shape[0] * epochs / fit_s,
        "transform_rows_per_s": X.shape[0] / transform_s,
        "final_train_loss": float(est.loss_curve_[-1]),
        "codes": Z,
    }


def main(argv=None):
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    torch.set_num_threads(args.threads)
    gpu = find_gpu()
    if gpu is None:
        print(
            "no GPU: CUDA, XPU and MPS are not available on this machine; "
            "nothing measured, no results written."
        )
        return
    facts = machine_facts()
    facts["gpu"] = device_name(gpu)
    print(f"machine: {machine_line(facts)}; GPU: {facts['gpu']}", flush=True)

    n_rows = 20_000 if args.quick else 200_000
    epochs = 2 if args.quick else EPOCHS
    X = make_data(n_rows)
    runs = [("CPU, float32", torch.device("cpu"), False), ("GPU, float32", gpu, False)]
    if supports_bf16(gpu):
        runs.append(("GPU, bfloat16 autocast", gpu, True))
    results = {}
    for label, device, autocast in runs:
        print(f"{label} ...", flush=True)
        results[label] = measure(device, X, epochs, autocast)
    reference = results["GPU, float32"]["codes"]
    rows = []
    for label, r in results.items():
        gap = np.max(np.abs(r["codes"].astype(np.float64) - reference))
        rows.append(
            [
                label,
                r["fit_s_per_epoch"],
                r["fit_rows_per_s"],
                r["transform_rows_per_s"],
                r["final_train_loss"],
                float(gap / np.max(np.abs(reference))),
            ]
        )
    table = markdown_table(
        [
            "run",
            "fit s/epoch",
            "fit rows/s",
            "transform rows/s",
            f"train loss after {epochs} epochs",
            "max |codes - GPU float32 codes| / max |codes|",
        ],
        rows,
    )
    facts["load_average_end"] = load()
    summary = (
        f"{n_rows:,} x 256 float32 rows, default architecture, 16 components, "
        f"{epochs} epochs; GPU: {facts['gpu']}"
    )
    print(table)
    md = f"{machine_line(facts)}\n\n{summary}\n\n{table}\n"
    payload = {
        "machine": facts,
        "command": command_line(argv),
        "n_rows": n_rows,
        "epochs": epochs,
        "results": {
            k: {m: v for m, v in r.items() if m != "codes"} for k, r in results.items()
        },
    }
    write_results(args.out, "gpu", args.quick, payload, md)


if __name__ == "__main__":
    main()
