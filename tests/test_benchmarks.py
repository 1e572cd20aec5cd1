"""The benchmark scripts run (``--quick``) and write their results."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _has_gpu():
    import torch

    return torch.cuda.is_available() or torch.backends.mps.is_available()


@pytest.mark.slow
@pytest.mark.parametrize(
    "script",
    [
        "speed",
        "strategies",
        "memory",
        "gpu",
        "family",
        "pca_time",
        "pca_start_cost",
        "downstream",
    ],
)
def test_benchmark_script_quick_run(script, tmp_path):
    if script == "gpu" and not _has_gpu():
        pytest.skip("no GPU")
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / f"{script}.py"),
            "--quick",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=BENCHMARKS,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    payload = json.loads((tmp_path / f"{script}-quick.json").read_text())
    assert payload["machine"]["torch_threads"] == 1
    assert (tmp_path / f"{script}-quick.md").read_text().count("|") > 10
    history = tmp_path / f"{script}-quick-history.jsonl"
    if payload.get("targets"):  # one line per run, with the target figures
        (line,) = history.read_text().splitlines()
        assert (
            json.loads(line)["targets"][0]["measure"]
            == (payload["targets"][0]["measure"])
        )
    else:
        assert not history.exists()


@pytest.mark.slow
def test_transform_memory_is_a_few_batches(tmp_path):
    subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "memory.py"),
            "--quick",
            "--out",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
        timeout=600,
        cwd=BENCHMARKS,
    )
    measured = json.loads((tmp_path / "memory-quick.json").read_text())["bytes"]
    # Beyond input and output, transform holds a few batches at a time.
    assert measured["extra"] < 16 * measured["batch"]


def test_gpu_script_says_no_gpu_cleanly(tmp_path):
    if _has_gpu():
        pytest.skip("this machine has a GPU: the slow quick-run test covers it")
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "gpu.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=BENCHMARKS,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("no GPU")
    assert not done.stderr
    assert not list(tmp_path.iterdir())  # nothing written
