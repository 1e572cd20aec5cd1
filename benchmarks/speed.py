"""Training speed, transform throughput and reconstruction quality of skae.

In one run, on the same data and the same layer widths, this times

* :class:`sklearn.decomposition.PCA` (fit time only: it has no epochs),
* :class:`sklearn.neural_network.MLPRegressor` fitted ``X -> X`` on float32
  data (one ``partial_fit`` call per epoch),
* a hand-written PyTorch loop (one preloaded float32 tensor, a
  ``torch.randperm`` per epoch, batches ``X[idx[i:i + bs]]``, MSE, Adam with
  lr=1e-3), with PyTorch's default Adam (a for-loop on CPU) and with
  ``fused=True``; with the objective of skae's defaults (``weight_decay`` of
  ``alpha / n_train`` on a parameter group of the weight matrices, biases
  undecayed) and, for information, plain MSE,
* :class:`skae.AutoencoderTransformer` with the same architecture, run for all
  epochs (``tol=0``), with its default ``alpha`` and with ``alpha=0``,

and reports ms/epoch, samples/s and achieved GFLOP/s against a measured fp32
GEMM rate. Every method runs several times in a rotated order so that load
from other processes spreads over all of them; epoch times are measured both
on the wall clock and in process CPU time (less sensitive to other processes
on a shared machine). A tiny network then measures each training loop's
fixed cost per batch. Finally skae's ``transform`` is compared with a plain
batched ``inference_mode`` loop over its encoder, and the test reconstruction
error of skae's default hyperparameters is compared with PCA's on
``load_digits`` and on a generated nonlinear manifold.

Timing architecture: 256 -> 128 -> 8 -> 128 -> 256 (the issue's AE: ReLU,
linear code and output), batch 256, Adam, float32, 16 000 training rows of
the manifold (4 000 test rows).

Usage::

    python benchmarks/speed.py                 # full run, 1 thread
    python benchmarks/speed.py --threads 2
    python benchmarks/speed.py --quick --out /tmp/results   # smoke run

Results go to ``benchmarks/results/speed.json`` and ``speed.md``
(``speed-quick.*`` with ``--quick``).
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
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPRegressor
from skorch.callbacks import Callback
from torch import nn
from torch.nn import functional as F

from skae import AutoencoderTransformer
from skae._inference import batch_rows, float64_module

N_COMPONENTS = 8
HIDDEN = (128,)
BATCH_SIZE = 256
LR = 1e-3
#: The tiny network of the per-batch overhead measurement.
TINY = {"n_features": 16, "hidden": (16,), "n_components": 2, "batch_size": 32}

FULL = {
    "n_rows": 20_000,  # 16 000 train / 4 000 test
    "n_features": 256,
    "epochs": 12,  # per timed run; the first is a warm-up, left out of medians
    "rounds": 6,  # every method runs once per round, in a rotated order
    "gemm_size": 2048,
    "transform_repeats": 200,  # interleaved calls per candidate
    "transform_round": 40,  # calls per round, for the spread of the ratio
    "tiny_rows": 8192,
    "tiny_epochs": 5,
    "tiny_rounds": 3,
    "quality_max_iter": None,  # skae's default
}
QUICK = {
    "n_rows": 2_000,
    "n_features": 256,
    "epochs": 3,
    "rounds": 1,
    "gemm_size": 512,
    "transform_repeats": 3,
    "transform_round": 3,
    "tiny_rows": 1024,
    "tiny_epochs": 2,
    "tiny_rounds": 1,
    "quality_max_iter": 3,
}

TARGETS = {
    # skae (defaults) ms/epoch / hand loop with the same objective <= 1.0
    "epoch_ratio": 1.0,
    "transform_ratio": 0.9,  # skae transform rows/s / plain loop >= 0.9
    "float64_ratio": 0.6,  # skae float64 / float32 transform rows/s >= 0.6
    "digits": 0.5,  # skae test MSE / PCA test MSE <= 0.5
    "manifold": 0.2,  # skae test MSE / PCA test MSE <= 0.2
}

#: skae's default L2 penalty, read from the estimator so the labels stay true.
DEFAULT_ALPHA = AutoencoderTransformer().alpha
HAND = (
    "hand loop, Adam (PyTorch default: for-loop), weight_decay="
    f"{DEFAULT_ALPHA:g}/n_train on the weight matrices"
)
HAND_FUSED = "hand loop, Adam fused=True, the same weight decay"
HAND_PLAIN = "hand loop, Adam (default), plain MSE (no weight decay)"
SKAE = f"skae AutoencoderTransformer, defaults (alpha={DEFAULT_ALPHA:g})"
SKAE_PLAIN = "skae AutoencoderTransformer, alpha=0"
MLP = "sklearn MLPRegressor (float32, partial_fit/epoch)"


# --------------------------------------------------------------------- data


def make_manifold(n_samples, n_features=256, n_latent=8, n_hidden=64, seed=0):
    """Return a float64 sample of a smooth nonlinear 8-D manifold in 256-D.

    ``z ~ N(0, I_8)``, ``X = tanh(z A) B + sin(z C) + 0.01 * noise``, with
    ``A``, ``B``, ``C`` Gaussian with ``1 / sqrt(fan_in)`` scale, all drawn
    from ``np.random.default_rng(seed)`` (the maps do not depend on
    ``n_samples``).
    """
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n_latent, n_hidden)) / np.sqrt(n_latent)
    B = rng.standard_normal((n_hidden, n_features)) / np.sqrt(n_hidden)
    C = rng.standard_normal((n_latent, n_features)) / np.sqrt(n_latent)
    z = rng.standard_normal((n_samples, n_latent))
    X = np.tanh(z @ A) @ B + np.sin(z @ C)
    return X + 0.01 * rng.standard_normal(X.shape)


def global_scale(X_train, X):
    """skae's default scaling: centre, divide by the root mean feature variance."""
    mean = X_train.mean(axis=0, dtype=np.float64)
    scale = np.sqrt(X_train.var(axis=0, dtype=np.float64).mean())
    return ((X - mean) / scale).astype(np.float32)


# ------------------------------------------------------------------ helpers


def hand_module(n_features, hidden=HIDDEN, n_components=N_COMPONENTS):
    """The same network as skae's: ReLU hidden layers, linear code and output."""
    widths = [n_features, *hidden]
    layers = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    layers.append(nn.Linear(widths[-1], n_components))
    widths = [n_components, *hidden[::-1]]
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    layers.append(nn.Linear(widths[-1], n_features))
    return nn.Sequential(*layers)


def macs_per_row(module):
    """Multiply-accumulates of one forward pass (weights of the Linear layers)."""
    return sum(
        m.in_features * m.out_features
        for m in module.modules()
        if isinstance(m, nn.Linear)
    )


def gemm_rate(n, repeats=10):
    """Best GFLOP/s of an ``n x n @ n x n`` float32 ``torch.mm`` (a ceiling)."""
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    torch.mm(a, b)  # warm-up
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def small_gemm_rate(
    rows=BATCH_SIZE,
    width=256,
    out=HIDDEN[0],
    calls=100,
    repeats=10,
    dtype=torch.float32,
):
    """Best GFLOP/s of the training's largest per-batch GEMM (256 in, 128 out)."""
    a = torch.randn(rows, width, dtype=dtype)
    w = torch.randn(width, out, dtype=dtype)
    for _ in range(10):
        torch.mm(a, w)
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(calls):
            torch.mm(a, w)
        best = min(best, time.perf_counter() - t)
    return 2 * rows * width * out * calls / best / 1e9


class CpuEpochTimer(Callback):
    """Record the process CPU time of each epoch as ``cpu_dur`` in the history."""

    def on_epoch_begin(self, net, **kwargs):
        self.start_ = time.process_time()

    def on_epoch_end(self, net, **kwargs):
        net.history.record("cpu_dur", time.process_time() - self.start_)


# ------------------------------------------------------------------ methods


def run_hand_loop(
    X_scaled,
    epochs,
    fused,
    hidden=HIDDEN,
    n_components=N_COMPONENTS,
    batch_size=BATCH_SIZE,
    alpha=DEFAULT_ALPHA,
):
    """Hand-written training loop; per-epoch wall and CPU seconds, wall total.

    ``alpha``: Adam's ``weight_decay`` is ``alpha / n_train`` on a parameter
    group of the weight matrices (skae's objective); 0 trains plain MSE.
    """
    start = time.perf_counter()
    torch.manual_seed(0)
    X = torch.from_numpy(np.ascontiguousarray(X_scaled, dtype=np.float32))
    model = hand_module(X.shape[1], hidden, n_components)
    n = X.shape[0]
    weights = [m.weight for m in model if isinstance(m, nn.Linear)]
    biases = [m.bias for m in model if isinstance(m, nn.Linear)]
    groups = [{"params": weights, "weight_decay": alpha / n}, {"params": biases}]
    opt = torch.optim.Adam(groups, lr=LR, **({"fused": True} if fused else {}))
    wall, cpu = [], []
    for _ in range(epochs):
        t, c = time.perf_counter(), time.process_time()
        idx = torch.randperm(n)
        for i in range(0, n, batch_size):
            xb = X[idx[i : i + batch_size]]
            opt.zero_grad(set_to_none=True)
            loss = F.mse_loss(model(xb), xb)
            loss.backward()
            opt.step()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return {
        "epoch_s": wall,
        "epoch_cpu_s": cpu,
        "wall_s": time.perf_counter() - start,
        "final_loss": loss.item(),
    }


def run_skae(
    X_train,
    epochs,
    threads,
    hidden=HIDDEN,
    n_components=N_COMPONENTS,
    batch_size=BATCH_SIZE,
    alpha=None,
):
    """skae with the timing architecture, running all ``epochs`` epochs.

    ``alpha=None`` keeps skae's default (weight decay, the hand loop's
    objective); ``alpha=0.0`` trains plain MSE.
    """
    penalty = {} if alpha is None else {"alpha": alpha}
    est = AutoencoderTransformer(
        n_components=n_components,
        hidden_layer_sizes=hidden,
        batch_size=batch_size,
        learning_rate_init=LR,
        max_iter=epochs,
        tol=0.0,
        n_iter_no_change=epochs + 1,
        lr_schedule="constant",
        # The hand loop's model and loop: no PCA anchor, no validation split.
        init="random",
        early_stopping=False,
        n_threads=threads,
        random_state=0,
        callbacks=[("cpu_timer", CpuEpochTimer())],
        **penalty,
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X_train)
    wall = time.perf_counter() - start
    assert est.n_iter_ == epochs, est.n_iter_
    return {
        "epoch_s": [float(d) for d in est.history_[:, "dur"]],
        "epoch_cpu_s": [float(d) for d in est.history_[:, "cpu_dur"]],
        "wall_s": wall,
        "final_loss": float(est.loss_curve_[-1]),
        "estimator": est,
    }


def run_mlp(X_scaled, epochs):
    """MLPRegressor fitted X -> X on float32, one partial_fit call per epoch."""
    start = time.perf_counter()
    mlp = MLPRegressor(
        hidden_layer_sizes=(*HIDDEN, N_COMPONENTS, *HIDDEN[::-1]),
        activation="relu",
        solver="adam",
        learning_rate_init=LR,
        batch_size=BATCH_SIZE,
        shuffle=True,
        random_state=0,
    )
    wall, cpu = [], []
    for _ in range(epochs):
        t, c = time.perf_counter(), time.process_time()
        mlp.partial_fit(X_scaled, X_scaled)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return {
        "epoch_s": wall,
        "epoch_cpu_s": cpu,
        "wall_s": time.perf_counter() - start,
        "final_loss": float(mlp.loss_),
        "dtype": str(mlp.coefs_[0].dtype),
    }


# ------------------------------------------------------------------- parts


def rotate(methods, rounds, label):
    """Run each method once per round, rotating the order; collect results."""
    names = list(methods)
    runs = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            result = methods[name]()
            runs[name].append(result)
            after = result["epoch_cpu_s"][1:] or result["epoch_cpu_s"]
            print(
                f"  {label} round {r + 1}: {name}: "
                f"{1e3 * np.median(after):.1f} CPU ms/epoch",
                flush=True,
            )
    return runs


def time_training(X_train, X_scaled, cfg, threads):
    epochs = cfg["epochs"]
    methods = {
        HAND: lambda: run_hand_loop(X_scaled, epochs, fused=False),
        HAND_FUSED: lambda: run_hand_loop(X_scaled, epochs, fused=True),
        SKAE: lambda: run_skae(X_train, epochs, threads),
        HAND_PLAIN: lambda: run_hand_loop(X_scaled, epochs, fused=False, alpha=0.0),
        SKAE_PLAIN: lambda: run_skae(X_train, epochs, threads, alpha=0.0),
        MLP: lambda: run_mlp(X_scaled, epochs),
    }
    # One-time costs (lazy initialization in torch, first-call allocations)
    # must not land in whichever method happens to run first.
    run_hand_loop(X_scaled[:1024], 1, fused=False)
    run_hand_loop(X_scaled[:1024], 1, fused=True)
    run_hand_loop(X_scaled[:1024], 1, fused=False, alpha=0.0)
    run_skae(X_train[:1024], 1, threads)
    run_skae(X_train[:1024], 1, threads, alpha=0.0)
    run_mlp(X_scaled[:1024], 1)
    return rotate(methods, cfg["rounds"], "training")


def time_overhead(cfg, threads):
    """Per-batch cost of each training loop on a tiny net, where compute is small."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((cfg["tiny_rows"], TINY["n_features"]))
    X32 = X.astype(np.float32)
    X_scaled = global_scale(X, X)
    arch = {k: TINY[k] for k in ("hidden", "n_components", "batch_size")}
    epochs = cfg["tiny_epochs"]
    methods = {
        HAND: lambda: run_hand_loop(X_scaled, epochs, fused=False, **arch),
        HAND_FUSED: lambda: run_hand_loop(X_scaled, epochs, fused=True, **arch),
        SKAE: lambda: run_skae(X32, epochs, threads, **arch),
        SKAE_PLAIN: lambda: run_skae(X32, epochs, threads, alpha=0.0, **arch),
    }
    runs = rotate(methods, cfg["tiny_rounds"], "overhead")
    n_batches = -(-cfg["tiny_rows"] // TINY["batch_size"])
    rows = {}
    for name, results in runs.items():
        wall = _pooled(results, "epoch_s")
        cpu = _pooled(results, "epoch_cpu_s")
        rows[name] = {
            "us_per_batch": 1e6 * float(np.median(wall)) / n_batches,
            "cpu_us_per_batch": 1e6 * float(np.median(cpu)) / n_batches,
        }
    return rows, n_batches


def _pooled(results, key):
    """Pool the epochs of several runs, leaving out each run's warm-up epoch."""
    return [s for r in results for s in (r[key][1:] or r[key])]


def time_pca(X_train, repeats=3):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        pca = PCA(N_COMPONENTS).fit(X_train)
        times.append(time.perf_counter() - t)
    return pca, float(np.median(times))


def summarize_training(runs, n_train, flop_per_epoch, ceiling):
    rows = {}
    for name, results in runs.items():
        wall = _pooled(results, "epoch_s")
        cpu = _pooled(results, "epoch_cpu_s")
        med = float(np.median(wall))
        rows[name] = {
            "ms_per_epoch_median": 1e3 * med,
            "ms_per_epoch_p10": 1e3 * float(np.percentile(wall, 10)),
            "ms_per_epoch_p90": 1e3 * float(np.percentile(wall, 90)),
            "cpu_ms_per_epoch_median": 1e3 * float(np.median(cpu)),
            "wall_ms_per_epoch": 1e3
            * float(np.median([r["wall_s"] / len(r["epoch_s"]) for r in results])),
            "samples_per_s": n_train / med,
            "gflops": flop_per_epoch / med / 1e9,
            "pct_of_gemm": 100 * flop_per_epoch / med / 1e9 / ceiling,
            "epochs_pooled": len(wall),
            "runs": len(results),
            "final_loss": [r["final_loss"] for r in results],
            **({"dtype": results[0]["dtype"]} if "dtype" in results[0] else {}),
        }
    return rows


def time_transform(est, X_test32, X_test64, pca, repeats, round_size):
    """skae.transform vs a plain inference_mode loop over its encoder.

    Every candidate's median rows/s over ``repeats`` interleaved calls, and
    its ratio to the plain loop in each round of ``round_size`` calls (min and
    max over the rounds: how much the ratio moves with the host's load).
    """
    n = X_test32.shape[0]
    batch = batch_rows(X_test32.shape[1])  # skae's inference batch size

    encoder = est.net_.module_.encoder
    T = torch.from_numpy(
        ((X_test32.astype(np.float64) - est.mean_) / est.scale_).astype(np.float32)
    )

    def plain():
        out = torch.empty(n, est.n_components_)
        with torch.inference_mode():
            for i in range(0, n, batch):
                out[i : i + batch] = encoder(T[i : i + batch])
        return out

    mean = torch.as_tensor(est.mean_, dtype=torch.float32)
    scale = torch.as_tensor(est.scale_, dtype=torch.float32)
    raw = torch.from_numpy(X_test32)

    encoder64 = float64_module(est.net_.module_).encoder
    T64 = torch.from_numpy((X_test64 - est.mean_) / est.scale_)

    def plain64():
        out = torch.empty(n, est.n_components_, dtype=torch.float64)
        with torch.inference_mode():
            for i in range(0, n, batch):
                out[i : i + batch] = encoder64(T64[i : i + batch])
        return out

    def plain_standardizing():
        out = torch.empty(n, est.n_components_)
        with torch.inference_mode():
            for i in range(0, n, batch):
                out[i : i + batch] = encoder((raw[i : i + batch] - mean) / scale)
        return out

    Z_plain = plain().numpy()
    Z_skae = est.transform(X_test32)
    candidates = {
        f"plain loop: encoder on a preloaded float32 tensor, batches of {batch}": plain,
        "plain loop with the same standardization per batch (info)": (
            plain_standardizing
        ),
        "skae transform, float32 input": lambda: est.transform(X_test32),
        "skae transform, float64 input": lambda: est.transform(X_test64),
        "plain loop: float64 copy of the encoder on a preloaded float64 tensor "
        "(info)": plain64,
        "PCA transform, float64 input": lambda: pca.transform(X_test64),
    }
    for fn in candidates.values():  # warm-up
        fn()
    wall = {name: [] for name in candidates}
    cpu = {name: [] for name in candidates}
    # Interleaved, so that load from other processes hits every candidate.
    for _ in range(repeats):
        for name, fn in candidates.items():
            t, c = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    baseline = np.asarray(wall[next(iter(candidates))])
    rounds = range(0, repeats, round_size)
    rows = {}
    for name in candidates:
        times = np.asarray(wall[name])
        per_round = [
            np.median(baseline[i : i + round_size])
            / np.median(times[i : i + round_size])
            for i in rounds
        ]
        rows[name] = {
            "rows_per_s": n / float(np.median(times)),
            "cpu_rows_per_s": n / float(np.median(cpu[name])),
            "ratio_per_round": [float(r) for r in per_round],
        }
    return rows, float(np.max(np.abs(Z_plain - Z_skae)))


def quality(name, X, quick_max_iter):
    """Test MSE (input units) of skae's defaults and of PCA, 80/20 split."""
    X_train, X_test = train_test_split(X, test_size=0.2, random_state=0)
    pca = PCA(N_COMPONENTS).fit(X_train)
    pca_recon = pca.inverse_transform(pca.transform(X_test))
    pca_mse = float(np.mean((pca_recon - X_test) ** 2))
    params = {"n_components": N_COMPONENTS, "random_state": 0}
    if quick_max_iter is not None:
        params["max_iter"] = quick_max_iter
    est = AutoencoderTransformer(**params)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X_train)
    fit_s = time.perf_counter() - start
    recon = est.inverse_transform(est.transform(X_test))
    ae_mse = float(np.mean((recon - X_test) ** 2))
    return {
        "data": name,
        "shape_train": list(X_train.shape),
        "params": params,
        "pca_test_mse": pca_mse,
        "skae_test_mse": ae_mse,
        "ratio": ae_mse / pca_mse,
        "n_iter": est.n_iter_,
        "final_train_loss": float(est.loss_curve_[-1]),
        "fit_s": fit_s,
        "warnings": sorted({w.category.__name__ for w in caught}),
    }


# --------------------------------------------------------------------- main


def main(argv=None):
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = QUICK if args.quick else FULL
    started = time.perf_counter()
    facts = machine_facts()
    print(f"machine: {machine_line(facts)}", flush=True)

    X = make_manifold(cfg["n_rows"], cfg["n_features"])
    X_train, X_test = train_test_split(X, test_size=0.2, random_state=0)
    X_train32 = X_train.astype(np.float32)
    X_test32 = X_test.astype(np.float32)
    X_scaled = global_scale(X_train, X_train)
    n_train = X_train.shape[0]
    macs = macs_per_row(hand_module(cfg["n_features"]))
    flop_per_epoch = 6 * macs * n_train

    print("GEMM ceiling ...", flush=True)
    # A ceiling: the best of a measurement at the start and one at the end.
    ceilings = [gemm_rate(cfg["gemm_size"])]
    small = small_gemm_rate()

    print("training speed ...", flush=True)
    runs = time_training(X_train32, X_scaled, cfg, args.threads)
    pca, pca_fit_s = time_pca(X_train32)
    ceilings.append(gemm_rate(cfg["gemm_size"]))
    ceiling = max(ceilings)
    train_rows = summarize_training(runs, n_train, flop_per_epoch, ceiling)
    ratios = {
        key: train_rows[SKAE][key] / train_rows[other][key]
        for key, other in [
            ("ms_per_epoch_median", HAND),
            ("cpu_ms_per_epoch_median", HAND),
            ("wall_ms_per_epoch", HAND),
        ]
    }
    ratio_fused = (
        train_rows[SKAE]["cpu_ms_per_epoch_median"]
        / train_rows[HAND_FUSED]["cpu_ms_per_epoch_median"]
    )
    ratio_plain = (
        train_rows[SKAE_PLAIN]["cpu_ms_per_epoch_median"]
        / train_rows[HAND_PLAIN]["cpu_ms_per_epoch_median"]
    )

    print("per-batch overhead ...", flush=True)
    overhead, tiny_batches = time_overhead(cfg, args.threads)

    print("transform throughput ...", flush=True)
    # What a float64 network would cost (info): the BLAS's float64 / float32
    # rate for the encoder's first layer on one inference batch.
    rows64 = batch_rows(cfg["n_features"])
    gemm64_ratio = small_gemm_rate(
        rows64, calls=10, dtype=torch.float64
    ) / small_gemm_rate(rows64, calls=10)
    est = runs[SKAE][-1]["estimator"]
    transform_rows, max_diff = time_transform(
        est,
        X_test32,
        X_test,
        pca,
        cfg["transform_repeats"],
        cfg["transform_round"],
    )
    plain = next(iter(transform_rows.values()))
    skae32 = transform_rows["skae transform, float32 input"]
    transform_ratio = skae32["rows_per_s"] / plain["rows_per_s"]
    transform_ratio_cpu = skae32["cpu_rows_per_s"] / plain["cpu_rows_per_s"]
    skae64 = transform_rows["skae transform, float64 input"]
    float64_ratio = skae64["rows_per_s"] / skae32["rows_per_s"]
    float64_ratio_cpu = skae64["cpu_rows_per_s"] / skae32["cpu_rows_per_s"]

    print("quality with skae's default hyperparameters ...", flush=True)
    quality_rows = [
        quality("load_digits (1797 x 64)", load_digits().data, cfg["quality_max_iter"]),
        quality(
            f"manifold ({cfg['n_rows']} x {cfg['n_features']}, 8 latent dims)",
            X,
            cfg["quality_max_iter"],
        ),
    ]

    def target(measure, value, goal, met):
        return {"measure": measure, "value": value, "target": goal, "met": met}

    le, ge = TARGETS["epoch_ratio"], TARGETS["transform_ratio"]
    targets = [
        target(
            "skae defaults / hand loop, same objective, median wall ms/epoch",
            ratios["ms_per_epoch_median"],
            f"<= {le}",
            ratios["ms_per_epoch_median"] <= le,
        ),
        target(
            "skae defaults / hand loop, same objective, median CPU ms/epoch",
            ratios["cpu_ms_per_epoch_median"],
            f"<= {le}",
            ratios["cpu_ms_per_epoch_median"] <= le,
        ),
        target(
            "skae defaults / hand loop, same objective, fit / epochs (info)",
            ratios["wall_ms_per_epoch"],
            "-",
            None,
        ),
        target(
            "skae defaults / hand loop with fused Adam, CPU ms/epoch (info)",
            ratio_fused,
            "-",
            None,
        ),
        target(
            "skae alpha=0 / hand loop plain MSE, CPU ms/epoch (info)",
            ratio_plain,
            "-",
            None,
        ),
        target(
            "skae transform / plain encoder loop, float32 rows/s (wall)",
            transform_ratio,
            f">= {ge}",
            transform_ratio >= ge,
        ),
        target(
            "skae transform / plain encoder loop, float32 rows/s (CPU)",
            transform_ratio_cpu,
            f">= {ge}",
            transform_ratio_cpu >= ge,
        ),
        target(
            "skae transform float64 / float32 input, rows/s (wall)",
            float64_ratio,
            f">= {TARGETS['float64_ratio']}",
            float64_ratio >= TARGETS["float64_ratio"],
        ),
        target(
            "skae transform float64 / float32 input, rows/s (CPU)",
            float64_ratio_cpu,
            f">= {TARGETS['float64_ratio']}",
            float64_ratio_cpu >= TARGETS["float64_ratio"],
        ),
        target(
            "digits: skae default test MSE / PCA test MSE",
            quality_rows[0]["ratio"],
            f"<= {TARGETS['digits']}",
            quality_rows[0]["ratio"] <= TARGETS["digits"],
        ),
        target(
            "manifold: skae default test MSE / PCA test MSE",
            quality_rows[1]["ratio"],
            f"<= {TARGETS['manifold']}",
            quality_rows[1]["ratio"] <= TARGETS["manifold"],
        ),
    ]

    elapsed = time.perf_counter() - started
    facts["load_average_end"] = load()
    facts["elapsed_s"] = round(elapsed, 1)

    # ----------------------------------------------------------- report
    train_table = markdown_table(
        [
            "method",
            "ms/epoch (median)",
            "p10-p90 ms",
            "CPU ms/epoch",
            "fit ms / epochs",
            "samples/s",
            "GFLOP/s",
            "% of GEMM",
        ],
        [
            [
                name,
                r["ms_per_epoch_median"],
                f"{r['ms_per_epoch_p10']:.0f}-{r['ms_per_epoch_p90']:.0f}",
                r["cpu_ms_per_epoch_median"],
                r["wall_ms_per_epoch"],
                r["samples_per_s"],
                r["gflops"],
                r["pct_of_gemm"],
            ]
            for name, r in train_rows.items()
        ]
        + [
            [
                f"PCA(8).fit (svd_solver='auto' chose {pca._fit_svd_solver!r})",
                None,
                None,
                None,
                1e3 * pca_fit_s,
                n_train / pca_fit_s,
                None,
                None,
            ]
        ],
    )
    overhead_table = markdown_table(
        ["method", "µs/batch (wall)", "µs/batch (CPU)"],
        [
            [name, r["us_per_batch"], r["cpu_us_per_batch"]]
            for name, r in overhead.items()
        ],
    )
    transform_table = markdown_table(
        [
            "method",
            "rows/s (wall)",
            "rows/s (CPU)",
            "/ plain loop, wall",
            f"per {cfg['transform_round']} calls: min-max",
        ],
        [
            [
                name,
                r["rows_per_s"],
                r["cpu_rows_per_s"],
                r["rows_per_s"] / plain["rows_per_s"],
                "{:.3f}-{:.3f}".format(
                    min(r["ratio_per_round"]), max(r["ratio_per_round"])
                ),
            ]
            for name, r in transform_rows.items()
        ],
    )
    quality_table = markdown_table(
        [
            "data",
            "PCA test MSE",
            "skae test MSE",
            "skae / PCA",
            "epochs",
            "fit s",
            "warnings",
        ],
        [
            [
                q["data"],
                q["pca_test_mse"],
                q["skae_test_mse"],
                q["ratio"],
                q["n_iter"],
                q["fit_s"],
                ", ".join(q["warnings"]) or "-",
            ]
            for q in quality_rows
        ],
    )
    target_table = markdown_table(
        ["measure", "value", "target", "met?"],
        [[t["measure"], t["value"], t["target"], t["met"]] for t in targets],
    )
    quick_note = " **Quick smoke run: numbers mean nothing.**" if args.quick else ""
    quick_iter = f" plus max_iter={cfg['quality_max_iter']}" if args.quick else ""
    g = cfg["gemm_size"]
    tiny = TINY
    markdown = f"""\
Machine: {machine_line(facts)}.
Command: `{command_line(argv)}`; run time {elapsed:.0f} s.{quick_note}

### Training speed

Autoencoder {
        "-".join(
            map(
                str,
                (
                    cfg["n_features"],
                    *HIDDEN,
                    N_COMPONENTS,
                    *HIDDEN[::-1],
                    cfg["n_features"],
                ),
            )
        )
    } (ReLU; linear code and output),
batch {BATCH_SIZE}, Adam lr={LR}, float32, {n_train} training rows. skae
runs with its default `alpha={DEFAULT_ALPHA:g}`, weight decay of
`alpha / n_train` on the weight matrices inside Adam's step, and the hand
loop trains the same objective (a parameter group of the weight matrices
with that `weight_decay`); the targets compare these two. For information,
both also run with plain MSE (`alpha=0`, no weight decay).
{cfg["rounds"]} runs of {cfg["epochs"]} epochs per method, in rotated order;
the first epoch of each run is a warm-up, left out of the medians. "ms/epoch"
is wall-clock time (skae: `history_[:, "dur"]`); "CPU ms/epoch" is process
CPU time, less sensitive to other processes on a shared machine; "fit ms /
epochs" is the whole `fit` (or loop with its setup) divided by the epochs.
samples/s and GFLOP/s use the median wall ms/epoch; GFLOP/s counts
6 x {macs:,} MACs x {n_train} rows = {flop_per_epoch / 1e9:.2f} GFLOP per
epoch. Measured fp32 GEMM ceiling: {ceiling:.1f} GFLOP/s for {g}x{g} @
{g}x{g} (the "% of GEMM" column; best of 10 calls before and 10 after the
training runs: {ceilings[0]:.1f} and {ceilings[1]:.1f}); {small:.1f} GFLOP/s for the
training's {BATCH_SIZE}x256 @ 256x{HIDDEN[0]} batch GEMM. MLPRegressor's code layer
is ReLU (sklearn applies one activation to all hidden layers); same widths,
same FLOPs.

{train_table}

### Fixed cost per batch

A tiny net ({tiny["n_features"]}-{tiny["hidden"][0]}-{tiny["n_components"]}-\
{tiny["hidden"][0]}-{tiny["n_features"]}, batch {tiny["batch_size"]},
{tiny_batches} batches per epoch, {cfg["tiny_rounds"]} runs of
{cfg["tiny_epochs"]} epochs) where compute is negligible, so the time per
batch is the training loop's own cost (Python, autograd, optimizer,
callbacks).

{overhead_table}

### Transform throughput

skae `transform` (input validation, standardization, batches of
{batch_rows(X_test.shape[1])} rows, about 2 MB) against a plain
`torch.inference_mode` loop of
`net_.module_.encoder` in batches of the same size over a preloaded float32
tensor, standardized beforehand (the target's baseline), and, for
information, the same loop standardizing each batch as skae must
({X_test.shape[0]} test rows, median of {cfg["transform_repeats"]} calls per
method, interleaved; the last column shows how the ratio to the plain loop
moves between rounds of {cfg["transform_round"]} calls).
Largest |difference| between the two codes: {max_diff:.2g}.
float64 input is standardized in float64 and runs the float32 network (its
training dtype; batches padded to at least 16 rows make a row's result the
same bits in any batch with 1 or 2 threads), then comes back as float64. The float64 plain-loop
row shows, for information, what running a float64 copy of the network
instead would cost: the float64 / float32 GEMM rate of the first layer
({batch_rows(X_test.shape[1])}x256 @ 256x{HIDDEN[0]}) measured
{gemm64_ratio:.3f} here.

{transform_table}

### Reconstruction quality

Test MSE in input units, 80/20 split (`random_state=0`), `n_components=8`;
skae with its defaults: `AutoencoderTransformer(n_components=8,
random_state=0)`{quick_iter}.

{quality_table}

### Targets

{target_table}
"""
    print()
    print(markdown)
    for results in runs.values():
        for r in results:
            r.pop("estimator", None)
    payload = {
        "benchmark": "speed",
        "quick": args.quick,
        "command": command_line(argv),
        "machine": facts,
        "config": {
            **cfg,
            "hidden_layer_sizes": HIDDEN,
            "n_components": N_COMPONENTS,
            "batch_size": BATCH_SIZE,
            "learning_rate": LR,
            "n_train": n_train,
            "macs_per_row": macs,
            "gflop_per_epoch": flop_per_epoch / 1e9,
            "tiny": TINY,
        },
        "gemm_gflops": ceiling,
        "gemm_gflops_before_after": ceilings,
        "small_gemm_gflops": small,
        "training": train_rows,
        "training_runs": runs,
        "pca_fit_s": pca_fit_s,
        "overhead_per_batch": overhead,
        "transform": transform_rows,
        "transform_max_abs_diff": max_diff,
        "gemm_float64_over_float32": gemm64_ratio,
        "quality": quality_rows,
        "targets": targets,
    }
    json_path, md_path = write_results(args.out, "speed", args.quick, payload, markdown)
    print(f"wrote {json_path} and {md_path}; run time {elapsed:.0f} s")
    return payload


if __name__ == "__main__":
    main()
