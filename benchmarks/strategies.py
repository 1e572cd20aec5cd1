"""Remedies for vanishing and exploding gradients in a deep sigmoid autoencoder.

Trains :class:`skae.AutoencoderTransformer` on ``load_digits``
(StandardScaler'd) with 10 hidden sigmoid layers of width 32 per side, in each
configuration:

* plain (Adam, lr=3e-3, alpha=1, from a random start: ``init="random"``, no
  validation split, constant learning rate, batches of 256),
* ``residual=True``,
* ``normalization="batch"``,
* ``residual=True, normalization="batch"``,
* ``solver="sgd"`` with a learning rate that makes the plain net diverge
  (the smallest of 1, 3, 10, ... 1000 that needs a restart or raises
  :class:`~skae.TrainingDivergedError`),
* the case gradient clipping exists for: ``residual=True,
  normalization="batch"`` with ``solver="sgd"`` at a rate of 0.05, at which
  the plain SGD run explodes, without and with ``max_grad_norm=1.0``,

all with ``max_iter=100`` and ``random_state=0``, and reports the final
training loss, epochs, the ratio of the first to the last layer's gradient
norm (``"encoder.0"`` / ``"decoder.output"``, median over the last 10 epochs),
``n_restarts_`` and the warnings (and error) raised. The loss is in skae's
standardized units, where predicting the mean of every feature costs 1.0.

Usage::

    python benchmarks/strategies.py                 # full run, 1 thread
    python benchmarks/strategies.py --quick --out /tmp/results   # smoke run

Results go to ``benchmarks/results/strategies.json`` and ``strategies.md``
(``strategies-quick.*`` with ``--quick``).
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
from sklearn.preprocessing import StandardScaler

from skae import AutoencoderTransformer, TrainingDivergedError
from skae.callbacks import GradientMonitor

BASE = {
    "n_components": 8,
    "hidden_layer_sizes": (32,) * 10,
    "activation": "sigmoid",
    "random_state": 0,
    # Training from a random start, on every row, at a constant rate, in
    # batches of 256 (skae's defaults before init="pca"): the remedies are
    # compared on the gradients' own merits (init="pca" would start at PCA
    # and early stopping would keep it).
    "init": "random",
    "early_stopping": False,
    "lr_schedule": "constant",
    "batch_size": 256,
}
FULL = {"max_iter": 100}
QUICK = {"max_iter": 5}
LR_GRID = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
#: A rate at which SGD explodes on the residual batch-normalized net, and
#: gradient clipping at norm 1.0 lets it converge.
CLIP_LR = 0.05
CLIPPED = {
    "residual": True,
    "normalization": "batch",
    "solver": "sgd",
    "learning_rate_init": CLIP_LR,
}
FIRST, LAST = "encoder.0", "decoder.output"


def fit(X, params):
    """Fit one configuration; return what the table needs."""
    est = AutoencoderTransformer(**params)
    start = time.perf_counter()
    error = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            est.fit(X)
        except TrainingDivergedError as exc:
            error = exc
    seconds = time.perf_counter() - start
    fired = sorted({w.category.__name__ for w in caught})
    if error is not None:
        # A failed fit leaves the estimator unfitted: nothing else to read.
        return {
            "fit_s": seconds,
            "warnings": [*fired, "TrainingDivergedError (raised)"],
            "error": str(error),
        }
    history = est.history_
    norms = [row["grad_norms"] for row in history if "grad_norms" in row]
    first = np.array([n[FIRST] for n in norms])
    last = np.array([n[LAST] for n in norms])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = float(np.median(first[-10:] / last[-10:]))
    peak = float(max(max(n.values()) for n in norms))
    losses = est.loss_curve_
    mid = losses[len(losses) // 2]
    return {
        "fit_s": seconds,
        "warnings": fired,
        "error": None,
        "final_train_loss": float(losses[-1]),
        "best_train_loss": float(np.min(losses)),
        "n_iter": est.n_iter_,
        "grad_ratio_first_last": ratio,
        "grad_first_last_median": [
            float(np.median(first[-10:])),
            float(np.median(last[-10:])),
        ],
        "peak_grad_norm": peak,
        "loss_improvement_second_half": float((mid - losses[-1]) / abs(mid)),
        "n_restarts": est.n_restarts_,
        "final_lr": float(history[-1]["lr"]),
        "loss_curve": [float(x) for x in losses],
        "train_mse_input_units": float(-est.score(X)),
        # Reconstruction error alone (no penalty), in the training's units:
        "reconstruction_mse": float(
            np.mean(((est.inverse_transform(est.transform(X)) - X) / est.scale_) ** 2)
        ),
        # Training loss of predicting every feature's mean, same units:
        "baseline_loss": float(np.mean(X.var(axis=0) / est.scale_**2)),
    }


def diverges(result):
    return result.get("error") is not None or result.get("n_restarts", 0) > 0


def main(argv=None):
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = QUICK if args.quick else FULL
    started = time.perf_counter()
    facts = machine_facts()
    print(f"machine: {machine_line(facts)}", flush=True)

    X = StandardScaler().fit_transform(load_digits().data)
    base = {**BASE, **cfg}

    print("learning-rate scan for solver='sgd' (plain net) ...", flush=True)
    scan = []
    sgd_lr = None
    for lr in LR_GRID:
        result = fit(X, {**base, "solver": "sgd", "learning_rate_init": lr})
        scan.append({"learning_rate_init": lr, **result})
        print(
            f"  lr={lr:g}: restarts={result.get('n_restarts')}, "
            f"final loss={result.get('final_train_loss')}, {result['warnings']}",
            flush=True,
        )
        if diverges(result):
            sgd_lr = lr
            break
    sgd_found = sgd_lr is not None
    if not sgd_found:
        sgd_lr = LR_GRID[-1]

    configs = [
        ("plain", {}),
        ("residual=True", {"residual": True}),
        ("normalization='batch'", {"normalization": "batch"}),
        (
            "residual=True, normalization='batch'",
            {"residual": True, "normalization": "batch"},
        ),
        (
            f"solver='sgd', learning_rate_init={sgd_lr:g}",
            {"solver": "sgd", "learning_rate_init": sgd_lr},
        ),
        (
            "residual=True, normalization='batch', solver='sgd', "
            f"learning_rate_init={CLIP_LR:g}",
            CLIPPED,
        ),
        (
            "residual=True, normalization='batch', solver='sgd', "
            f"learning_rate_init={CLIP_LR:g}, max_grad_norm=1.0",
            {**CLIPPED, "max_grad_norm": 1.0},
        ),
    ]
    rows = []
    for label, extra in configs:
        print(f"{label} ...", flush=True)
        result = fit(X, {**base, **extra})
        rows.append({"configuration": label, "params": extra, **result})

    baseline = next(r["baseline_loss"] for r in rows if "baseline_loss" in r)
    elapsed = time.perf_counter() - started
    facts["load_average_end"] = load()
    facts["elapsed_s"] = round(elapsed, 1)
    monitor = GradientMonitor()

    table = markdown_table(
        [
            "configuration",
            "final train loss",
            "best train loss",
            "reconstruction MSE",
            "epochs",
            f"grad ratio {FIRST} / {LAST}",
            "peak grad norm",
            "loss gain, 2nd half",
            "n_restarts_",
            "final lr",
            "warnings / error",
            "fit s",
        ],
        [
            [
                r["configuration"],
                r.get("final_train_loss"),
                r.get("best_train_loss"),
                r.get("reconstruction_mse"),
                r.get("n_iter"),
                r.get("grad_ratio_first_last"),
                r.get("peak_grad_norm"),
                (
                    f"{100 * r['loss_improvement_second_half']:.1f} %"
                    if "loss_improvement_second_half" in r
                    else None
                ),
                r.get("n_restarts"),
                r.get("final_lr"),
                ", ".join(r["warnings"]) or "-",
                r["fit_s"],
            ]
            for r in rows
        ],
    )
    scan_table = markdown_table(
        [
            "learning_rate_init",
            "n_restarts_",
            "final lr",
            "final train loss",
            "peak grad norm",
            "warnings / error",
        ],
        [
            [
                s["learning_rate_init"],
                s.get("n_restarts"),
                s.get("final_lr"),
                s.get("final_train_loss"),
                s.get("peak_grad_norm"),
                ", ".join(s["warnings"]) or "-",
            ]
            for s in scan
        ],
    )
    quick_note = (
        " **Quick smoke run: numbers are not meaningful.**" if args.quick else ""
    )
    ref = AutoencoderTransformer()
    pinned = ", ".join(
        f"`{name}={value!r}`"
        for name, value in BASE.items()
        if name
        not in ("n_components", "hidden_layer_sizes", "activation", "random_state")
    )
    defaults = ", ".join(
        f"`{name}={getattr(ref, name)!r}`"
        for name in (
            "solver",
            "learning_rate_init",
            "alpha",
            "n_iter_no_change",
            "tol",
            "scaling",
        )
    )
    found_note = (
        f"the smallest rate of {list(LR_GRID)} that diverged (restart or error)"
        if sgd_found
        else f"no rate of {list(LR_GRID)} diverged; the largest is used"
    )
    markdown = f"""\
Machine: {machine_line(facts)}.
Command: `{command_line(argv)}`; run time {elapsed:.0f} s.{quick_note}

### Deep sigmoid autoencoder on `load_digits`

`AutoencoderTransformer(n_components=8, hidden_layer_sizes=(32,) * 10,
activation="sigmoid", max_iter={cfg["max_iter"]}, random_state=0)` on
`StandardScaler().fit_transform(load_digits().data)` (1797 x 64), with
{pinned} (training from a random start on every row, as before `init="pca"`
became the default: the remedies are compared on the gradients' own merits),
other parameters at their defaults ({defaults}). Losses are in skae's
standardized units: predicting the mean of every feature costs {baseline:.3g}.
The training loss curve is the reconstruction term (`loss_curve_`; `alpha`
acts as weight decay in the optimizer and is not part of it); "reconstruction
MSE" is the final model's error on the training data in eval mode, same units.
Gradient ratio: median over the last 10 epochs of `grad_norms["{FIRST}"] /
grad_norms["{LAST}"]`. The last two rows show what gradient clipping is for:
SGD at {CLIP_LR:g} on the residual batch-normalized net explodes (a restart at
a tenth of the rate), while `max_grad_norm=1.0` bounds every step and the same
run converges. Clipping cannot rescue a rate far too high (the scan below):
the clipped steps are then still too long. "Loss gain, 2nd half" is the
relative drop of the training loss from the middle epoch to the last.
GradientMonitor's thresholds: `vanishing_ratio={monitor.vanishing_ratio:g}`,
`exploding_norm={monitor.exploding_norm:g}`. SGD learning rate {sgd_lr:g}:
{found_note}.

{table}

### Learning-rate scan, `solver="sgd"`, plain net

{scan_table}
"""
    print()
    print(markdown)
    payload = {
        "benchmark": "strategies",
        "quick": args.quick,
        "command": command_line(argv),
        "machine": facts,
        "config": {**base, "hidden_layer_sizes": list(base["hidden_layer_sizes"])},
        "baseline_loss": baseline,
        "thresholds": {
            "vanishing_ratio": monitor.vanishing_ratio,
            "exploding_norm": monitor.exploding_norm,
        },
        "sgd_learning_rate": sgd_lr,
        "sgd_learning_rate_diverged": sgd_found,
        "results": rows,
        "sgd_scan": scan,
    }
    json_path, md_path = write_results(
        args.out, "strategies", args.quick, payload, markdown
    )
    print(f"wrote {json_path} and {md_path}; run time {elapsed:.0f} s")
    return payload


if __name__ == "__main__":
    main()
