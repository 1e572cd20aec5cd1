"""Helpers shared by the benchmark scripts: threads, machine facts, output files.

This module imports only the standard library at import time, so a script can
call :func:`thread_env` and set the thread variables before numpy and torch
are imported (their thread pools read the environment once, on import).
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

#: Environment variables read by the BLAS / OpenMP thread pools.
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

RESULTS = Path(__file__).resolve().parent / "results"


def parser(description):
    """Return the command-line parser every benchmark script shares."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads and OMP/MKL/OpenBLAS threads (default: 1)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="fast smoke run on small data; results go to NAME-quick.json/.md",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=RESULTS,
        help=f"directory for the JSON and markdown results (default: {RESULTS})",
    )
    return p


def thread_env(argv):
    """Return the thread environment variables for ``--threads`` in ``argv``."""
    if "-h" in argv or "--help" in argv:
        return {}  # the script's own parser prints the help
    known, _ = parser("").parse_known_args(argv)
    if known.threads < 1:
        raise SystemExit(f"--threads must be >= 1; got --threads={known.threads}.")
    return dict.fromkeys(THREAD_VARS, str(known.threads))


def cpu_model():
    """Return the CPU model name from /proc/cpuinfo (or platform's guess)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load():
    """Return the 1, 5 and 15 minute load averages (None where unsupported)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_facts():
    """Return versions, threads, CPU and date, as a JSON-ready dict."""
    import numpy
    import sklearn
    import skorch
    import torch

    import skae

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "thread_env": {k: os.environ.get(k) for k in THREAD_VARS},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "sklearn": sklearn.__version__,
        "skorch": skorch.__version__,
        "numpy": numpy.__version__,
        "skae": skae.__version__,
        "git": git_state(),
        "load_average_start": load(),
    }


def git_state():
    """Return the repository's commit and whether the work tree differs from it."""
    root = Path(__file__).resolve().parent.parent

    def git(*args):
        try:
            done = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "--short", "HEAD")
    changed = git("status", "--porcelain", "--untracked-files=no", "--", "skae")
    return {"commit": commit, "skae_modified": bool(changed) if commit else None}


def machine_line(facts):
    """One markdown line describing the machine, for the top of a table."""
    return (
        f"{facts['cpu_model']}, {facts['torch_threads']} torch thread(s) "
        f"({facts['logical_cpus']} logical CPUs); torch {facts['torch']}, "
        f"scikit-learn {facts['sklearn']}, skorch {facts['skorch']}, "
        f"numpy {facts['numpy']}, skae {facts['skae']} (git {_git_label(facts)}); "
        f"{facts['date']}; "
        f"load average at start / end: {facts['load_average_start']} / "
        f"{facts.get('load_average_end')}"
    )


def _git_label(facts):
    state = facts.get("git") or {}
    if not state.get("commit"):
        return "unknown"
    dirty = " + uncommitted changes in skae/" if state["skae_modified"] else ""
    return f"{state['commit']}{dirty}"


def markdown_table(headers, rows):
    """Return a markdown table; cells are formatted with :func:`fmt`."""
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
        for i, h in enumerate(headers)
    ]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells
    ]
    return "\n".join([line, rule, *body])


def fmt(value):
    """Format a table cell: floats with 3-4 significant digits, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        if value != value:  # NaN
            return "nan"
        if value == 0:
            return "0"
        if abs(value) >= 1e5 or abs(value) < 1e-3:
            return f"{value:.3g}"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.4g}"
    return str(value)


def write_results(out, name, quick, payload, markdown):
    """Write ``payload`` as JSON and ``markdown`` to ``out/NAME[-quick].{json,md}``.

    Returns the two paths.
    """
    stem = f"{name}-quick" if quick else name
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    json_path.write_text(json.dumps(payload, indent=2, default=_json_default) + "\n")
    md_path.write_text(markdown.rstrip() + "\n")
    if payload.get("targets"):
        append_history(out / f"{stem}-history.jsonl", payload)
    return json_path, md_path


def append_history(path, payload):
    """Append one JSON line with the run's date, commit, load and targets.

    The results files hold the latest run only; this file keeps every run's
    headline figures, so that how they move between runs can be checked.
    """
    machine = payload.get("machine", {})
    line = {
        "date": machine.get("date"),
        "git": machine.get("git"),
        "load_average_start": machine.get("load_average_start"),
        "load_average_end": machine.get("load_average_end"),
        "command": payload.get("command"),
        "targets": [
            {k: t[k] for k in ("measure", "value", "met")} for t in payload["targets"]
        ],
    }
    with open(path, "a") as f:
        f.write(json.dumps(line, default=_json_default) + "\n")


def _json_default(value):
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialize {type(value).__name__}")


def command_line(argv=None):
    """The command that reproduces this run, for the results' header."""
    args = sys.argv[1:] if argv is None else argv
    return " ".join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *args])
