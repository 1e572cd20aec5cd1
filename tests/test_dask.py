"""A grid search on a Dask cluster gives the serial search's scores."""

import warnings

import joblib
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import AutoencoderTransformer

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")


def _search(n_jobs):
    pipe = make_pipeline(
        StandardScaler(),
        AutoencoderTransformer(
            hidden_layer_sizes=(8,), max_iter=4, batch_size=32, random_state=0
        ),
    )
    grid = {"autoencodertransformer__n_components": [2, 3]}
    return GridSearchCV(pipe, grid, cv=KFold(3), n_jobs=n_jobs, return_train_score=True)


def _scores(search):
    return {
        key: value
        for key, value in search.cv_results_.items()
        if key.endswith(("test_score", "train_score"))
    }


def _torch_threads():
    import torch

    return torch.get_num_threads()


def test_grid_search_on_dask_equals_serial(tmp_path):
    X = np.random.RandomState(0).normal(size=(150, 8))
    serial = _search(n_jobs=None).fit(X)
    scratch = tmp_path / "dask"
    with (
        warnings.catch_warnings(),
        dask.config.set({"temporary-directory": str(scratch)}),
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            # The scheduler's HTTP server (health checks) on a free port,
            # not on 8787, which another cluster may hold.
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            local_directory=str(scratch),
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        warnings.simplefilter("error", ResourceWarning)
        client.wait_for_workers(2, timeout=120)
        threads = client.run(_torch_threads)
        with joblib.parallel_config(backend="dask"):
            on_dask = _search(n_jobs=-1).fit(X)
        # Both workers trained candidates.
        assert len(threads) == 2
    assert set(threads.values()) == {1}  # the nanny sets OMP_NUM_THREADS=1
    expected, got = _scores(serial), _scores(on_dask)
    assert expected.keys() == got.keys() and len(expected) == 11
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    assert on_dask.best_params_ == serial.best_params_
    # The workers' and the scheduler's files went under the test's directory.
    assert (scratch / "dask-scratch-space").is_dir()
