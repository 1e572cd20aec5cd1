"""Downstream parity with PCA: codes as classifier features, errors as anomaly scores.

Two uses of a reducer, each with skae's defaults beside PCA at the same
``n_components`` (split ``test_size=0.25, random_state=0``; skae with
``random_state`` 0, 1, 2):

* **Classification**: ``StandardScaler -> reducer -> StandardScaler ->
  LogisticRegression(max_iter=1000)``, test accuracy, on ``load_wine``,
  ``load_iris``, ``load_digits`` and ``load_breast_cancer``, with a very
  small code (k=2) and a larger one. Target: every seed's accuracy at least
  PCA's minus 0.01.
* **Anomaly detection**: ``StandardScaler -> reducer`` fitted on the training
  rows of one class (the "normal" one); the score of a held-out row is its
  squared reconstruction error (for PCA through ``inverse_transform``, not
  ``PCA.score_samples``, a Gaussian log-likelihood); ROC AUC of telling the
  other classes' held-out rows from the normal class's. Target: every seed's
  AUC at least PCA's minus 0.005.

Usage::

    python benchmarks/downstream.py                   # full run, 1 thread
    python benchmarks/downstream.py --quick --out /tmp/results   # smoke run

Results go to ``benchmarks/results/downstream.json`` and ``downstream.md``
(``downstream-quick.*`` with ``--quick``).
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
from _datasets import split
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import AutoencoderTransformer

ACCURACY_SLACK = 0.01
AUC_SLACK = 0.005

FULL = {
    "seeds": (0, 1, 2),
    "classification": [
        ("wine", 2),
        ("wine", 5),
        ("iris", 2),
        ("iris", 3),
        ("digits", 2),
        ("digits", 8),
        ("breast_cancer", 2),
        ("breast_cancer", 5),
    ],
    # (data set, k, normal classes)
    "anomaly": [
        ("breast_cancer", 2, (1,)),
        ("breast_cancer", 5, (1,)),
        ("wine", 2, (0, 1, 2)),
        ("iris", 2, (0, 1, 2)),
        ("digits", 8, tuple(range(10))),
    ],
    "max_iter": None,
}
QUICK = {
    "seeds": (0,),
    "classification": [("iris", 2)],
    "anomaly": [("iris", 2, (0,))],
    "max_iter": 3,
}


def reducer(kind, k, seed, max_iter):
    if kind == "PCA":
        return PCA(k)
    extra = {} if max_iter is None else {"max_iter": max_iter}
    return AutoencoderTransformer(k, random_state=seed, **extra)


def classification(name, k, seeds, max_iter):
    X_train, X_test, y_train, y_test = split(name)

    def accuracy(kind, seed=None):
        model = make_pipeline(
            StandardScaler(),
            reducer(kind, k, seed, max_iter),
            StandardScaler(),
            LogisticRegression(max_iter=1000),
        )
        return float(model.fit(X_train, y_train).score(X_test, y_test))

    return accuracy("PCA"), [accuracy("skae", s) for s in seeds]


def reconstruction_error(model, X):
    scaler, reduce = model
    Z = scaler.transform(X)
    return np.mean((reduce.inverse_transform(reduce.transform(Z)) - Z) ** 2, axis=1)


def anomaly(name, k, normal, seeds, max_iter):
    X_train, X_test, y_train, y_test = split(name)
    X_fit = X_train[y_train == normal]
    outlier = (y_test != normal).astype(int)

    def auc(kind, seed=None):
        scaler = StandardScaler().fit(X_fit)
        reduce = reducer(kind, k, seed, max_iter).fit(scaler.transform(X_fit))
        return float(
            roc_auc_score(outlier, reconstruction_error((scaler, reduce), X_test))
        )

    return len(X_fit), auc("PCA"), [auc("skae", s) for s in seeds]


def main(argv=None):
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = QUICK if args.quick else FULL
    facts = machine_facts()
    print(f"machine: {machine_line(facts)}", flush=True)
    started = time.perf_counter()
    caught_names = set()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf_rows = []
        for name, k in cfg["classification"]:
            pca, skae = classification(name, k, cfg["seeds"], cfg["max_iter"])
            clf_rows.append(
                {
                    "data": name,
                    "n_components": k,
                    "pca": pca,
                    "skae": skae,
                    "met": min(skae) >= pca - ACCURACY_SLACK,
                }
            )
            print(f"  classification {name} k={k}: PCA {pca:.4f} skae {skae}")
        anomaly_rows = []
        for name, k, classes in cfg["anomaly"]:
            for normal in classes:
                n, pca, skae = anomaly(name, k, normal, cfg["seeds"], cfg["max_iter"])
                anomaly_rows.append(
                    {
                        "data": name,
                        "n_components": k,
                        "normal_class": normal,
                        "n_train": n,
                        "pca": pca,
                        "skae": skae,
                        "met": min(skae) >= pca - AUC_SLACK,
                    }
                )
                print(f"  anomaly {name} k={k} normal={normal}: PCA {pca:.4f} {skae}")
        caught_names = sorted({w.category.__name__ for w in caught})
    facts["load_average_end"] = load()

    def summary(rows, slack):
        deltas = [np.mean(r["skae"]) - r["pca"] for r in rows]
        return {
            "cases": len(rows),
            "cases_missed": sum(not r["met"] for r in rows),
            "mean_delta": float(np.mean(deltas)),
            "worst_delta": float(min(min(r["skae"]) - r["pca"] for r in rows)),
            "slack": slack,
        }

    clf_summary = summary(clf_rows, ACCURACY_SLACK)
    anomaly_summary = summary(anomaly_rows, AUC_SLACK)
    targets = [
        {
            "measure": "classification: cases where a seed's accuracy is more "
            f"than {ACCURACY_SLACK} below PCA's",
            "value": clf_summary["cases_missed"],
            "target": "0",
            "met": clf_summary["cases_missed"] == 0,
        },
        {
            "measure": "anomaly detection: cases where a seed's ROC AUC is more "
            f"than {AUC_SLACK} below PCA's",
            "value": anomaly_summary["cases_missed"],
            "target": "0",
            "met": anomaly_summary["cases_missed"] == 0,
        },
    ]

    def cells(r):
        return [
            r["pca"],
            float(np.mean(r["skae"])),
            float(min(r["skae"])),
            float(np.mean(r["skae"]) - r["pca"]),
            r["met"],
        ]

    value_headers = ["PCA", "skae (mean)", "skae (worst seed)", "mean - PCA", "met?"]
    markdown = "\n\n".join(
        [
            f"Machine: {machine_line(facts)}.",
            f"Command: `{command_line(argv)}`.",
            markdown_table(
                ["measure", "value", "target", "met?"],
                [[t["measure"], t["value"], t["target"], t["met"]] for t in targets],
            ),
            "Test accuracy of `LogisticRegression` on the codes:",
            markdown_table(
                ["data", "k", *value_headers],
                [[r["data"], r["n_components"], *cells(r)] for r in clf_rows],
            ),
            "ROC AUC of the reconstruction error, trained on one class:",
            markdown_table(
                ["data", "k", "normal class", "training rows", *value_headers],
                [
                    [r["data"], r["n_components"], r["normal_class"], r["n_train"]]
                    + cells(r)
                    for r in anomaly_rows
                ],
            ),
            f"skae: defaults, seeds {', '.join(map(str, cfg['seeds']))}. "
            f"Warnings raised during the run: {', '.join(caught_names) or 'none'}. "
            f"Total time {time.perf_counter() - started:.0f} s.",
        ]
    )
    payload = {
        "command": command_line(argv),
        "machine": facts,
        "config": cfg,
        "classification": clf_rows,
        "anomaly": anomaly_rows,
        "summary": {"classification": clf_summary, "anomaly": anomaly_summary},
        "warnings": caught_names,
        "targets": targets,
    }
    json_path, _ = write_results(args.out, "downstream", args.quick, payload, markdown)
    print(markdown)
    print(f"wrote {json_path}")


if __name__ == "__main__":
    main()
