"""Shared fixtures: small data sets and fast estimator settings."""

import threading

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits


@pytest.fixture(autouse=True)
def _one_thread():
    """Tests run with one torch thread: faster than two on a loaded 2-core box."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def digits():
    """The first 300 digits (64 features), float64."""
    return load_digits().data[:300].astype(np.float64)


@pytest.fixture(scope="session")
def low_rank():
    """500 x 10 centred data with decreasing variances along random axes."""
    rng = np.random.RandomState(0)
    rotation = np.linalg.qr(rng.randn(10, 10))[0]
    scales = np.array([5, 4, 3, 2, 1, 0.5, 0.4, 0.3, 0.2, 0.1])
    return rng.randn(500, 10) * scales @ rotation


FAST = dict(hidden_layer_sizes=(8,), max_iter=3, batch_size=64, random_state=0)


def run_in_threads(calls, repeat, timeout=None):
    """Run each ``(key, fn)`` of ``calls`` ``repeat`` times, all in threads at once.

    Returns the ``(key, fn())`` results; re-raises the first error a thread
    met. Waits ``timeout`` seconds at most for each thread.
    """
    errors, results = [], []

    def work(key, fn):
        try:
            for _ in range(repeat):
                results.append((key, fn()))
        except Exception as exc:  # noqa: BLE001 - any error fails the caller
            errors.append(exc)

    threads = [threading.Thread(target=work, args=call) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    if errors:
        raise errors[0]
    assert not any(thread.is_alive() for thread in threads), "a thread is still running"
    return results


#: Training as it was before ``init="pca"`` became the default: from random
#: weights, on every row, at a constant rate. For tests of the training
#: mechanics that need a run to learn from scratch (gradients that flow from
#: the first step, restarts, schedules).
PLAIN = dict(init="random", early_stopping=False, lr_schedule="constant")
