"""What the PCA start costs: fit and transform with and without it.

The default ``init="auto"`` starts a model with a linear output at PCA's
reconstruction (``init_ == "pca"``): a covariance pass before training and a
linear skip in each stack. This script fits the defaults and the same hidden
stack from a random start (``init="random"``, every other parameter equal),
both for all ``--epochs`` epochs (``tol=0``), in interleaved rounds, and
reports per data set:

* fit time per epoch (the whole ``fit``, PCA start included, over the
  epochs run), wall and process CPU time, and the ratio PCA start / random;
* ``transform`` throughput of the two fitted models on the training rows,
  and its ratio (random / PCA start: above 1 means the start costs nothing).

Data: the 256-feature manifold of speed.py at ``hidden_layer_sizes=(128,)``
and ``batch_size=256``, and narrow data at the default network: a noisy
parabola (2 features), scikit-learn's S curve (3), and two nonlinear 2-D
manifolds in 10 and 12 features. Times: min over rounds (1 torch thread).

Usage::

    python benchmarks/pca_start_cost.py             # full run
    python benchmarks/pca_start_cost.py --quick --out /tmp/results

Results go to ``benchmarks/results/pca_start_cost.json`` and ``.md``.
"""

import os
import sys

from _common import thread_env

# The BLAS / OpenMP pools read these once, when numpy and torch are imported.
os.environ.update(thread_env(sys.argv[1:]))

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
from sklearn.datasets import make_s_curve
from sklearn.exceptions import ConvergenceWarning
from speed import make_manifold

from skae import AutoencoderTransformer

#: Fit per epoch, PCA start over random start, at most; transform at least.
FIT_TARGET, TRANSFORM_TARGET = 1.05, 0.95


def parabola(n, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.uniform(-1, 1, n)
    return np.c_[t, t**2 + 0.05 * rng.standard_normal(n)]


def cases(n):
    """(name, X, params): the data sets and their network."""
    wide = {"hidden_layer_sizes": (128,), "batch_size": 256}
    return [
        ("manifold 256 features", make_manifold(n).astype(np.float32), wide),
        ("parabola 2 features", parabola(n), {}),
        ("S curve 3 features", make_s_curve(n, noise=0.05, random_state=0)[0], {}),
        ("manifold 10 features", make_manifold(n, 10, 2, 16, seed=2), {}),
        ("manifold 12 features", make_manifold(n, 12, 2, 16, seed=3), {}),
    ]


def run(X, params, init, epochs):
    """Fit for ``epochs`` epochs, then transform; wall and CPU seconds."""
    est = AutoencoderTransformer(
        n_components=2,
        init=init,
        max_iter=epochs,
        tol=0.0,
        n_iter_no_change=epochs + 1,
        random_state=0,
        **params,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        wall, cpu = time.perf_counter(), time.process_time()
        est.fit(X)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert est.n_iter_ == epochs and est.init_ == ("pca" if init == "auto" else init)
    start = time.perf_counter()
    est.transform(X)
    return wall / epochs, cpu / epochs, time.perf_counter() - start


def measure(name, X, params, epochs, rounds):
    times = {"auto": [], "random": []}
    run(X[:512], params, "auto", 1)  # one-time costs land in neither
    run(X[:512], params, "random", 1)
    for r in range(rounds):
        for init in ("auto", "random") if r % 2 else ("random", "auto"):
            times[init].append(run(X, params, init, epochs))
    pca, rand = np.min(times["auto"], axis=0), np.min(times["random"], axis=0)
    row = {
        "data": name,
        "shape": list(X.shape),
        "params": params,
        "pca_epoch_ms": 1e3 * pca[0],
        "random_epoch_ms": 1e3 * rand[0],
        "fit_ratio": pca[0] / rand[0],
        "fit_cpu_ratio": pca[1] / rand[1],
        "pca_transform_rows_s": len(X) / pca[2],
        "random_transform_rows_s": len(X) / rand[2],
        "transform_ratio": rand[2] / pca[2],
    }
    print(
        f"{name}: fit/epoch {row['fit_ratio']:.3f} (CPU {row['fit_cpu_ratio']:.3f}), "
        f"transform {row['transform_ratio']:.3f}",
        flush=True,
    )
    return row


def main(argv=None):
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    n, rounds = (2_000, 2) if args.quick else (20_000, args.rounds)
    facts = machine_facts()
    print(f"machine: {machine_line(facts)}", flush=True)
    rows = [
        measure(name, X, params, args.epochs, rounds) for name, X, params in cases(n)
    ]
    facts["load_average_end"] = load()
    headers = [
        "data (rows x features)",
        "network",
        "ms/epoch, PCA start",
        "ms/epoch, random",
        "fit ratio (wall)",
        "fit ratio (CPU)",
        "transform rows/s, PCA start",
        "transform rows/s, random",
        "transform ratio",
    ]
    table = [
        [
            f"{r['data']} ({r['shape'][0]} x {r['shape'][1]})",
            ", ".join(f"{k}={v}" for k, v in r["params"].items()) or "defaults",
            r["pca_epoch_ms"],
            r["random_epoch_ms"],
            r["fit_ratio"],
            r["fit_cpu_ratio"],
            r["pca_transform_rows_s"],
            r["random_transform_rows_s"],
            r["transform_ratio"],
        ]
        for r in rows
    ]
    targets = [
        {
            "measure": "fit per epoch, PCA start / random start (worst data set, wall)",
            "value": max(r["fit_ratio"] for r in rows),
            "target": f"<= {FIT_TARGET}",
        },
        {
            "measure": "transform throughput, PCA start / random (worst data set)",
            "value": min(r["transform_ratio"] for r in rows),
            "target": f">= {TRANSFORM_TARGET}",
        },
    ]
    targets[0]["met"] = targets[0]["value"] <= FIT_TARGET
    targets[1]["met"] = targets[1]["value"] >= TRANSFORM_TARGET
    markdown = "\n\n".join(
        [
            f"Machine: {machine_line(facts)}.",
            f"Command: `{command_line(argv)}`.",
            markdown_table(
                ["measure", "value", "target", "met?"],
                [[t["measure"], t["value"], t["target"], t["met"]] for t in targets],
            ),
            markdown_table(headers, table),
            f"Both models: skae's defaults but `n_components=2`, {args.epochs} "
            'epochs (`tol=0`), `random_state=0`; `init="auto"` (which starts '
            'at PCA here) against `init="random"`. ms/epoch: whole fit over '
            f"epochs, min of {rounds} interleaved rounds. Transform ratio: "
            "random's time over the PCA start's (above 1: the start costs nothing).",
        ]
    )
    payload = {
        "command": command_line(argv),
        "machine": facts,
        "epochs": args.epochs,
        "rounds": rounds,
        "rows": rows,
        "targets": targets,
    }
    json_path, _ = write_results(
        args.out, "pca_start_cost", args.quick, payload, markdown
    )
    print(markdown)
    print(f"wrote {json_path}")


if __name__ == "__main__":
    main()
