"""The device parameter: accepted values, clear errors, loading elsewhere."""

import pickle
from unittest.mock import patch

import numpy as np
import pytest
import torch
from sklearn.base import clone

from skae import AutoencoderTransformer, VariationalAutoencoderTransformer
from skae._devices import float64_device, parse_device, resolve_device
from skae.persistence import load, save

HAS_CUDA = torch.cuda.is_available()
HAS_MPS = torch.backends.mps.is_available()


def _fast(**params):
    defaults = dict(n_components=2, hidden_layer_sizes=(4,), max_iter=2, batch_size=8)
    return AutoencoderTransformer(**{**defaults, "random_state": 0, **params})


def _data(dtype=np.float64):
    return np.random.RandomState(0).normal(size=(40, 5)).astype(dtype)


@pytest.mark.parametrize(
    "device, expected",
    [
        ("cpu", torch.device("cpu")),
        ("cuda", torch.device("cuda")),
        ("cuda:1", torch.device("cuda", 1)),
        ("mps", torch.device("mps")),
        ("xpu", torch.device("xpu")),
        ("xpu:2", torch.device("xpu", 2)),
        (torch.device("cuda", 3), torch.device("cuda", 3)),
    ],
)
def test_accepted_devices_parse(device, expected):
    assert parse_device(device) == expected


@pytest.mark.parametrize(
    "device", ["gpu", "tpu", "cuda:x", "meta", "", 0, None, "cpu:1", "mps:1"]
)
def test_unknown_devices_are_refused_before_training(device):
    ae = _fast(device=device)
    with pytest.raises(ValueError, match=r"device"):
        ae.fit(_data())
    assert not hasattr(ae, "net_")


def test_unknown_device_message_lists_the_accepted_values():
    with pytest.raises(ValueError, match=r"'cuda:N', 'mps', 'xpu'.*got device='gpu'"):
        parse_device("gpu")


@pytest.mark.parametrize(
    "device, backend",
    [
        ("cuda", "CUDA"),
        ("cuda:2", "CUDA"),
        ("mps", "MPS"),
        ("xpu", "XPU"),
        (torch.device("xpu", 1), "XPU"),
    ],
)
def test_missing_backend_names_the_device(device, backend):
    with (
        patch("torch.cuda.is_available", return_value=False),
        patch("torch.backends.mps.is_available", return_value=False),
        patch("torch.xpu.is_available", return_value=False),
    ):
        ae = _fast(device=device)
        with pytest.raises(
            ValueError,
            match=rf"device='{device}' but {backend} is not available on this machine",
        ):
            ae.fit(_data())
    assert not hasattr(ae, "net_")


def test_index_beyond_the_devices_is_a_clear_error():
    with (
        patch("torch.cuda.is_available", return_value=True),
        patch("torch.cuda.device_count", return_value=2),
    ):
        assert resolve_device("cuda:1") == torch.device("cuda", 1)
        with pytest.raises(
            ValueError,
            match=r"device='cuda:2' but CUDA device 2 is not available on this "
            r"machine, which has 2 \(cuda:0 to cuda:1\)",
        ):
            resolve_device(torch.device("cuda", 2))


def test_available_backends_resolve():
    with patch("torch.backends.mps.is_available", return_value=True):
        assert resolve_device("mps") == torch.device("mps")
    with (
        patch("torch.xpu.is_available", return_value=True),
        patch("torch.xpu.device_count", return_value=1),
    ):
        assert resolve_device("xpu:0") == torch.device("xpu", 0)


def test_float64_runs_on_cpu_for_mps_only():
    assert float64_device("mps") == torch.device("cpu")
    assert float64_device("cuda:1") == torch.device("cuda", 1)
    assert float64_device(torch.device("cpu")) == torch.device("cpu")


def test_torch_device_object_fits_like_its_string():
    X = _data()
    by_object = _fast(device=torch.device("cpu")).fit(X)
    assert np.array_equal(
        by_object.transform(X), _fast(device="cpu").fit(X).transform(X)
    )
    assert clone(by_object).device == torch.device("cpu")


def test_torch_device_object_saves_as_its_name(tmp_path):
    ae = _fast(device=torch.device("cpu")).fit(_data())
    save(ae, tmp_path)
    loaded = load(tmp_path)
    assert loaded.device == "cpu"
    assert np.array_equal(loaded.transform(_data()), ae.transform(_data()))


@pytest.mark.parametrize("device", ["mps", "cuda:3", "xpu"])
def test_pickle_from_a_missing_device_loads_on_cpu(device):
    X = _data()
    ae = _fast().fit(X)
    Z = ae.transform(X)
    # As if trained there: the net records the device it ran on.
    ae.net_.device = device
    blob = pickle.dumps(ae)
    ae.net_.device = "cpu"
    with pytest.warns(UserWarning, match=rf"saved with device='{device}' but"):
        loaded = pickle.loads(blob)
    assert str(loaded.net_.device) == "cpu"
    assert next(loaded.net_.module_.parameters()).device.type == "cpu"
    assert np.array_equal(loaded.transform(X), Z)
    loaded.partial_fit(X)  # training goes on, on CPU
    assert loaded.n_iter_ == ae.n_iter_ + 1


@pytest.mark.parametrize("device", ["mps", "cuda:3"])
def test_saved_model_from_a_missing_device_loads_on_cpu(tmp_path, device):
    import json

    X = _data()
    ae = _fast().fit(X)
    save(ae, tmp_path)
    doc = json.loads((tmp_path / "skae.json").read_text())
    doc["params"]["device"] = doc["net"]["device"] = device
    (tmp_path / "skae.json").write_text(json.dumps(doc))
    with pytest.warns(UserWarning, match=rf"device='{device}' but .* loaded on CPU"):
        loaded = load(tmp_path)
    assert loaded.device == device  # the parameter is kept as saved
    assert np.array_equal(loaded.transform(X), ae.transform(X))


# ------------------------------------------------------------ real devices


@pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", torch.device("cuda", 0)])
def test_cuda_fit_and_transform(device):
    X = _data(np.float32)
    ae = _fast(device=device).fit(X)
    assert next(ae.net_.module_.parameters()).is_cuda
    Z32, Z64 = ae.transform(X), ae.transform(X.astype(np.float64))
    assert Z32.dtype == np.float32 and Z64.dtype == np.float64
    np.testing.assert_allclose(Z32, Z64, rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")
def test_cuda_pickle_loads_on_cpu_without_cuda():
    X = _data(np.float32)
    ae = _fast(device="cuda").fit(X)
    blob = pickle.dumps(ae)
    with (
        patch("torch.cuda.is_available", return_value=False),
        pytest.warns(UserWarning, match="CUDA is not available"),
    ):
        loaded = pickle.loads(blob)
    np.testing.assert_allclose(
        loaded.transform(X), ae.transform(X), rtol=1e-4, atol=1e-5
    )


@pytest.mark.skipif(not HAS_MPS, reason="needs MPS")
def test_mps_float64_input_runs_the_float32_network():
    # MPS has no float64: the float64 work (standardizing, errors, the
    # inverse scaling) happens on the CPU around the network on the GPU.
    X = _data(np.float32)
    ae = _fast(device="mps").fit(X)
    X64 = X.astype(np.float64)
    Z64 = ae.transform(X64)
    assert Z64.dtype == np.float64
    np.testing.assert_allclose(ae.transform(X), Z64, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        ae.inverse_transform(Z64),
        ae.inverse_transform(Z64.astype(np.float32)),
        rtol=1e-4,
        atol=1e-4,
    )
    for rows in (X, X64):  # errors in float64, whatever the input's dtype
        assert ae.score_samples(rows).dtype == np.float64
    np.testing.assert_allclose(ae.score_samples(X), ae.score_samples(X64), rtol=1e-4)
    assert ae.encoder_jacobian(X64[:3]).dtype == np.float64  # float64 copy, CPU


@pytest.mark.skipif(not HAS_MPS, reason="needs MPS")
def test_mps_fit_of_float64_rows_and_the_elbo():
    # float64 rows are standardized on the CPU, then trained on MPS; the ELBO
    # runs the float64 copy on the CPU.
    X = _data()
    vae = VariationalAutoencoderTransformer(
        n_components=2, hidden_layer_sizes=(4,), max_iter=2, device="mps"
    ).fit(X)
    assert np.isfinite(vae.elbo(X, random_state=0)).all()


def test_float64_copy_is_built_on_the_float64_device(monkeypatch):
    from skae import _inference

    ae = _fast().fit(_data())
    monkeypatch.setattr(_inference, "float64_device", lambda d: torch.device("meta"))
    module64 = _inference.float64_module(ae.net_.module_)
    assert {p.device.type for p in module64.parameters()} == {"meta"}
    assert {p.dtype for p in module64.parameters()} == {torch.float64}
    # A copy: the fitted module stays where and what it was.
    assert {(p.device.type, p.dtype) for p in ae.net_.module_.parameters()} == {
        ("cpu", torch.float32)
    }
