"""Downstream parity with PCA: codes as classifier features, errors as anomaly scores.

Two uses of a reducer, each with skae's defaults beside PCA at the same
``n_components`` (split ``test_size=0.25, random_state=0``; skae with
``random_state`` 0, 1, 2):

* **Classification**: ``StandardScaler -> reducer -> StandardScaler ->
  LogisticRegression(max_iter=1000)``, test accuracy, on ``load_wine``,
  ``load_iris``, ``load_digits`` and ``load_breast_cancer``, with a very
  small code (k=2) and a larger one. Target: every seed's accuracy at least
  PCA's minus 0.01.
* **Classification over repeated splits**: one split cannot resolve a
  difference of 0.01 (on ``load_breast_cancer`` one of its 143 test rows is
  0.007 of accuracy, and the binomial standard error of one split's accuracy
  there is 0.017 at PCA's 0.958, 0.018 at 0.95), so the same pipeline,
  cases and ``k`` are also run over ``RepeatedStratifiedKFold(n_splits=4,
  n_repeats=5, random_state=0)``: 20 splits, PCA with its default solver, skae with
  ``random_state`` = the split's index. Per case: PCA's and skae's mean
  accuracy, the mean paired difference (skae - PCA on the same split), its
  standard error (standard deviation of the 20 differences, ``ddof=1``, over
  sqrt(20)), the worst split's difference and the number of splits whose
  difference is below -0.01. Target: skae's mean accuracy over the 20 splits
  at least PCA's minus 0.01. The single-split table and its target stay as
  they are.
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
(``downstream-quick.*`` with ``--quick``, which runs one case with
``max_iter=3`` and ``n_repeats=1``, i.e. 4 repeated splits); each full or
quick run appends its headline figures to ``downstream[-quick]-history.jsonl``.
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
from _datasets import load as load_data
from _datasets import split
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold
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
    # RepeatedStratifiedKFold for the classification cases; skae's
    # random_state is the split's index, PCA runs with its default solver.
    "repeated": {"n_splits": 4, "n_repeats": 5, "random_state": 0},
}
QUICK = {
    "seeds": (0,),
    "classification": [("iris", 2)],
    "anomaly": [("iris", 2, (0,))],
    "max_iter": 3,
    "repeated": {"n_splits": 4, "n_repeats": 1, "random_state": 0},
}


def reducer(kind, k, seed, max_iter):
    if kind == "PCA":
        return PCA(k)
    extra = {} if max_iter is None else {"max_iter": max_iter}
    return AutoencoderTransformer(k, random_state=seed, **extra)


def accuracy(reduce, X_train, X_test, y_train, y_test):
    """Test accuracy of ``LogisticRegression`` on the codes of ``reduce``."""
    model = make_pipeline(
        StandardScaler(), reduce, StandardScaler(), LogisticRegression(max_iter=1000)
    )
    return float(model.fit(X_train, y_train).score(X_test, y_test))


def classification(name, k, seeds, max_iter):
    data = split(name)
    pca = accuracy(reducer("PCA", k, None, max_iter), *data)
    return pca, [accuracy(reducer("skae", k, s, max_iter), *data) for s in seeds]


def repeated_classification(name, k, cv, max_iter):
    """Accuracies of PCA and skae on each split of ``RepeatedStratifiedKFold``.

    Both are fitted on the same training rows and scored on the same test
    rows; skae's ``random_state`` is the split's index.
    """
    X, y = load_data(name)
    pca, skae, test_rows = [], [], []
    for i, (train, test) in enumerate(RepeatedStratifiedKFold(**cv).split(X, y)):
        data = X[train], X[test], y[train], y[test]
        pca.append(accuracy(reducer("PCA", k, None, max_iter), *data))
        skae.append(accuracy(reducer("skae", k, i, max_iter), *data))
        test_rows.append(len(test))
    difference = np.subtract(skae, pca)
    return {
        "data": name,
        "n_components": k,
        "n_splits": len(difference),
        "test_rows": test_rows,
        "pca": pca,
        "skae": skae,
        "pca_mean": float(np.mean(pca)),
        "skae_mean": float(np.mean(skae)),
        "mean_difference": float(np.mean(difference)),
        "standard_error": float(np.std(difference, ddof=1) / np.sqrt(len(difference))),
        "worst_difference": float(np.min(difference)),
        "splits_below_slack": int(np.sum(difference < -ACCURACY_SLACK)),
        "met": bool(np.mean(difference) >= -ACCURACY_SLACK),
    }


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
        repeated_rows = []
        for name, k in cfg["classification"]:
            tic = time.perf_counter()
            row = repeated_classification(name, k, cfg["repeated"], cfg["max_iter"])
            row["seconds"] = time.perf_counter() - tic
            repeated_rows.append(row)
            print(
                f"  classification {name} k={k}, {row['n_splits']} splits: "
                f"PCA {row['pca_mean']:.4f} skae {row['skae_mean']:.4f} "
                f"difference {row['mean_difference']:+.4f} "
                f"(SE {row['standard_error']:.4f}, worst "
                f"{row['worst_difference']:+.4f}, "
                f"{row['splits_below_slack']} below -{ACCURACY_SLACK}) "
                f"{row['seconds']:.0f} s",
                flush=True,
            )
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
    n_splits = cfg["repeated"]["n_splits"] * cfg["repeated"]["n_repeats"]
    repeated_summary = {
        "cases": len(repeated_rows),
        "cases_missed": sum(not r["met"] for r in repeated_rows),
        "n_splits": n_splits,
        "mean_difference": float(
            np.mean([r["mean_difference"] for r in repeated_rows])
        ),
        "lowest_mean_difference": float(
            min(r["mean_difference"] for r in repeated_rows)
        ),
        "worst_split_difference": float(
            min(r["worst_difference"] for r in repeated_rows)
        ),
        "splits_below_slack": sum(r["splits_below_slack"] for r in repeated_rows),
        "slack": ACCURACY_SLACK,
    }
    targets = [
        {
            "measure": "classification: cases where a seed's accuracy is more "
            f"than {ACCURACY_SLACK} below PCA's",
            "value": clf_summary["cases_missed"],
            "target": "0",
            "met": clf_summary["cases_missed"] == 0,
        },
        {
            "measure": f"classification, {n_splits} repeated splits: cases whose "
            f"mean accuracy is more than {ACCURACY_SLACK} below PCA's",
            "value": repeated_summary["cases_missed"],
            "target": "0",
            "met": repeated_summary["cases_missed"] == 0,
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

    # How finely the single split can tell accuracies apart, on the case
    # closest to (or beyond) the tolerance.
    closest = min(clf_rows, key=lambda r: min(r["skae"]) - r["pca"])
    n_test = len(split(closest["data"])[1])
    p = closest["pca"]
    resolution = (
        f"One split cannot resolve a difference of {ACCURACY_SLACK}: on "
        f"{closest['data']} one of the {n_test} test rows is "
        f"1/{n_test} = {1 / n_test:.4f} of accuracy, and the binomial standard "
        f"error of one split's accuracy is sqrt(p (1 - p) / {n_test}) = "
        f"{np.sqrt(p * (1 - p) / n_test):.3f} at PCA's {p:.3f} "
        f"(k={closest['n_components']}) and "
        f"{np.sqrt(0.95 * 0.05 / n_test):.3f} at 0.95. The same cases over "
        f"{n_splits} repeated splits are in the next table."
    )
    cv = cfg["repeated"]
    repeated_text = (
        f"The same classification cases over `RepeatedStratifiedKFold("
        f"n_splits={cv['n_splits']}, n_repeats={cv['n_repeats']}, "
        f"random_state={cv['random_state']})` ({n_splits} splits; skae's "
        "`random_state` is the split's index, PCA with its default solver). "
        "Difference: skae's accuracy minus PCA's on the same split; standard "
        f"error: standard deviation of the {n_splits} differences (ddof=1) over "
        f"sqrt({n_splits}). Target: mean over {n_splits} splits at least PCA's "
        f"minus {ACCURACY_SLACK}."
    )
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
            resolution,
            repeated_text,
            markdown_table(
                [
                    "data",
                    "k",
                    "PCA (mean)",
                    "skae (mean)",
                    "mean difference (skae - PCA)",
                    "standard error",
                    "worst split",
                    f"splits below -{ACCURACY_SLACK}",
                    "met?",
                ],
                [
                    [
                        r["data"],
                        r["n_components"],
                        r["pca_mean"],
                        r["skae_mean"],
                        r["mean_difference"],
                        r["standard_error"],
                        r["worst_difference"],
                        f"{r['splits_below_slack']} of {r['n_splits']}",
                        r["met"],
                    ]
                    for r in repeated_rows
                ],
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
        "classification_repeated": repeated_rows,
        "anomaly": anomaly_rows,
        "summary": {
            "classification": clf_summary,
            "classification_repeated": repeated_summary,
            "anomaly": anomaly_summary,
        },
        "warnings": caught_names,
        "targets": targets,
    }
    json_path, _ = write_results(args.out, "downstream", args.quick, payload, markdown)
    print(markdown)
    print(f"wrote {json_path}")


if __name__ == "__main__":
    main()
