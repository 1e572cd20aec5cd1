"""Tests for skae.persistence (save/load without pickle) and pickle/joblib."""

import hashlib
import json
import pickle
import shutil
import warnings
from pathlib import Path
from unittest.mock import patch

import joblib
import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from skae import AutoencoderTransformer
from skae._format import FORMAT_VERSION
from skae._nn.modules import Autoencoder
from skae.persistence import JSON_FILE, TRAINING_FILE, WEIGHTS_FILE, load, save

pd = pytest.importorskip("pandas")

DATA = Path(__file__).parent / "data"


def _fast(**params):
    defaults = dict(
        n_components=2,
        hidden_layer_sizes=(6,),
        max_iter=3,
        batch_size=8,
        random_state=0,
    )
    return AutoencoderTransformer(**{**defaults, **params})


def _data(dtype=np.float64, n=24, p=5, seed=0):
    return np.random.RandomState(seed).normal(size=(n, p)).astype(dtype)


def _outputs(estimator, X):
    Z = estimator.transform(X)
    return Z, estimator.inverse_transform(Z), estimator.score_samples(X)


def _assert_same_outputs(a, b, X):
    for left, right in zip(_outputs(a, X), _outputs(b, X), strict=True):
        assert left.dtype == right.dtype
        assert np.array_equal(left, right)


def _round_trip(estimator, path):
    save(estimator, path)
    return load(path)


@pytest.fixture(scope="module")
def fitted():
    return _fast().fit(_data())


@pytest.fixture
def saved(fitted, tmp_path):
    save(fitted, tmp_path)
    return tmp_path


def _save_tensors(path, name, tensors):
    """Write a tampered tensor file and record its SHA-256, as a forger would."""
    save_file(tensors, path / name)
    digest = hashlib.sha256((path / name).read_bytes()).hexdigest()
    _edit_json(path, lambda d: d["sha256"].update({name: digest}))


def _edit_json(path, edit):
    doc = json.loads((path / JSON_FILE).read_text())
    edit(doc)
    (path / JSON_FILE).write_text(json.dumps(doc))


# ------------------------------------------------------------------ round trip


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"normalization": "batch", "dropout": 0.2, "residual": True},
        {"normalization": "layer", "activation": "tanh", "hidden_layer_sizes": (6, 4)},
        {"early_stopping": True, "solver": "sgd", "lr_schedule": "cosine"},
        {"scaling": "standard", "solver": "adamw", "alpha": 0.1},
    ],
)
def test_round_trip_identical_outputs(dtype, params, tmp_path):
    X = _data(dtype)
    ae = _fast(**params).fit(X)
    loaded = _round_trip(ae, tmp_path)
    _assert_same_outputs(ae, loaded, X)
    assert loaded.get_params() == ae.get_params()
    assert not loaded.net_.module_.training


def test_round_trip_fitted_attributes(fitted, saved):
    loaded = load(saved)
    assert loaded.n_features_in_ == fitted.n_features_in_
    assert loaded.n_components_ == fitted.n_components_
    assert loaded.n_iter_ == fitted.n_iter_
    assert loaded.n_restarts_ == fitted.n_restarts_
    assert loaded.loss_curve_ == fitted.loss_curve_
    assert loaded.mean_.dtype == np.float64 and loaded.scale_.dtype == np.float64
    assert np.array_equal(loaded.mean_, fitted.mean_)
    assert np.array_equal(loaded.scale_, fitted.scale_)
    assert np.array_equal(loaded._scaling.mean_, fitted._scaling.mean_)
    assert len(loaded.history_) == len(fitted.history_)
    assert loaded.history_[:, "train_loss"] == fitted.history_[:, "train_loss"]
    assert loaded.history_[:, "lr"] == fitted.history_[:, "lr"]
    assert not hasattr(loaded, "feature_names_in_")


def test_loaded_has_the_attributes_of_a_fitted_estimator(fitted, saved):
    # Guards against drift: a new fitted attribute must be saved and loaded too.
    loaded = load(saved)
    assert sorted(vars(loaded)) == sorted(vars(fitted))
    assert type(loaded.net_) is type(fitted.net_)
    assert [name for name, _ in loaded.net_.callbacks_] == [
        name for name, _ in fitted.net_.callbacks_
    ]


def test_float64_statistics_round_trip_exactly(tmp_path):
    # Values whose decimal repr is long: the float.hex encoding must be exact.
    X = _data() * np.pi * 1e7 + 1 / 3
    ae = _fast().fit(X)
    save(ae, tmp_path)
    doc = json.loads((tmp_path / JSON_FILE).read_text())
    assert [float.fromhex(v) for v in doc["fitted"]["mean_"]] == ae.mean_.tolist()
    assert np.array_equal(load(tmp_path).scale_, ae.scale_)


def test_round_trip_dataframe_keeps_feature_names(tmp_path):
    X = pd.DataFrame(_data(), columns=[f"f{i}" for i in range(5)])
    ae = _fast().fit(X)
    loaded = _round_trip(ae, tmp_path)
    assert loaded.feature_names_in_.dtype == object
    assert np.array_equal(loaded.feature_names_in_, ae.feature_names_in_)
    _assert_same_outputs(ae, loaded, X)
    assert list(loaded.get_feature_names_out()) == list(ae.get_feature_names_out())
    out = loaded.set_output(transform="pandas").transform(X)
    assert list(out.columns) == ["autoencodertransformer0", "autoencodertransformer1"]
    with pytest.raises(ValueError, match="feature names should match"):
        loaded.transform(X.rename(columns={"f0": "g0"}))


def test_round_trip_of_partial_fit_model(tmp_path):
    X = _data()
    ae = _fast(early_stopping=True).partial_fit(X).partial_fit(X)
    loaded = _round_trip(ae, tmp_path)
    _assert_same_outputs(ae, loaded, X)


def test_loaded_estimator_clones_and_refits(saved, fitted):
    X = _data()
    loaded = load(saved)
    assert clone(loaded).get_params() == fitted.get_params()
    assert np.array_equal(loaded.fit(X).transform(X), clone(fitted).fit(X).transform(X))


@pytest.mark.parametrize(
    "params",
    [
        {"lr_schedule": "exponential"},
        {"normalization": "batch", "dropout": 0.3, "alpha": 0.1, "l1": 0.01},
        {"early_stopping": True, "solver": "sgd", "lr_schedule": "step"},
        {"solver": "rmsprop", "lr_schedule": "warm_restarts"},
    ],
)
def test_partial_fit_after_load_continues_exactly(params, tmp_path):
    # Optimizer state, learning rate and generator states are restored, so
    # training goes on exactly as it would have without the save.
    X = _data()
    ae = _fast(**params).fit(X)
    loaded = _round_trip(ae, tmp_path)
    for _ in range(2):
        ae.partial_fit(X)
        loaded.partial_fit(X)
    assert loaded.n_iter_ == ae.n_iter_ == 5
    assert loaded.loss_curve_ == ae.loss_curve_
    _assert_same_outputs(ae, loaded, X)


def test_weights_file_loads_into_a_bare_module(fitted, saved):
    module = Autoencoder(5, 2, (6,), init=fitted.init_)
    module.load_state_dict(load_file(saved / WEIGHTS_FILE), strict=True)
    module.eval()
    X = _data(np.float32)
    scaled = (X - fitted.mean_) / fitted.scale_
    with torch.inference_mode():
        Z = module.encoder(torch.from_numpy(scaled.astype(np.float32))).numpy()
    np.testing.assert_allclose(Z, fitted.transform(X), rtol=1e-5, atol=1e-6)


def test_save_writes_three_files_and_overwrites(fitted, tmp_path):
    target = tmp_path / "model" / "nested"
    save(fitted, target)
    other = _fast(n_components=3).fit(_data())
    save(other, target)  # a second save replaces the first
    assert sorted(p.name for p in target.iterdir()) == sorted(
        [JSON_FILE, WEIGHTS_FILE, TRAINING_FILE]
    )
    assert load(target).n_components_ == 3


def test_json_is_readable_and_describes_the_model(fitted, saved):
    doc = json.loads((saved / JSON_FILE).read_text())
    assert doc["format_version"] == "{}.{}".format(*FORMAT_VERSION)
    assert set(doc["versions"]) == {"skae", "torch", "sklearn", "numpy"}
    assert doc["params"]["hidden_layer_sizes"] == {"__tuple__": [6]}
    state = fitted.net_.module_.state_dict()
    manifest = doc["tensors"][WEIGHTS_FILE]
    assert set(manifest) == set(state)
    for name, tensor in state.items():
        assert manifest[name] == {
            "dtype": str(tensor.dtype).removeprefix("torch."),
            "shape": list(tensor.shape),
        }


# ------------------------------------------------------------------ save errors


def test_save_unfitted_raises():
    with pytest.raises(NotFittedError):
        save(_fast(), "unused")


def test_save_rejects_other_objects(tmp_path):
    with pytest.raises(
        TypeError, match="save expects .*AutoencoderTransformer.*got object"
    ):
        save(object(), tmp_path)


def test_save_rejects_callbacks(tmp_path):
    from skae.callbacks import LearningRateMonitor

    ae = _fast(callbacks=[("extra", LearningRateMonitor())]).fit(_data())
    with pytest.raises(TypeError, match=r"Cannot save callbacks=\[\('extra'"):
        save(ae, tmp_path / "m")
    assert not (tmp_path / "m").exists()  # nothing written


def test_save_rejects_random_state_instance(tmp_path):
    ae = _fast(random_state=np.random.RandomState(0)).fit(_data())
    with pytest.raises(TypeError, match="Cannot save random_state=RandomState"):
        save(ae, tmp_path)


def test_save_accepts_numpy_scalars_and_lists(tmp_path):
    ae = _fast(
        n_components=np.int64(2),
        learning_rate_init=np.float64(0.01),
        hidden_layer_sizes=[6, 4],
        lr_schedule="exponential",
        lr_schedule_params={"gamma": 0.5},
    ).fit(_data())
    loaded = _round_trip(ae, tmp_path)
    assert loaded.get_params() == ae.get_params()
    assert loaded.hidden_layer_sizes == [6, 4]
    _assert_same_outputs(ae, loaded, _data())


# ------------------------------------------------------------------ load errors


def test_load_missing_directory(tmp_path):
    with pytest.raises(ValueError, match="not a directory written by skae.save"):
        load(tmp_path / "absent")


@pytest.mark.parametrize(
    "name, match",
    [
        (JSON_FILE, "skae.json is missing"),
        (WEIGHTS_FILE, "weights.safetensors is missing"),
        (TRAINING_FILE, "training.safetensors is missing"),
    ],
)
def test_load_missing_file(saved, name, match):
    (saved / name).unlink()
    with pytest.raises(ValueError, match=match):
        load(saved)


def test_load_corrupt_json(saved):
    (saved / JSON_FILE).write_text('{"format": ')
    with pytest.raises(ValueError, match="skae.json in .* is not valid JSON"):
        load(saved)


def test_load_truncated_weights(saved):
    data = (saved / WEIGHTS_FILE).read_bytes()
    (saved / WEIGHTS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="does not match the SHA-256"):
        load(saved)
    digest = hashlib.sha256(data[: len(data) // 2]).hexdigest()
    _edit_json(saved, lambda d: d["sha256"].update({WEIGHTS_FILE: digest}))
    with pytest.raises(ValueError, match="weights.safetensors in .* cannot be read"):
        load(saved)


def test_load_refuses_files_of_two_saves(saved, tmp_path):
    # An overwrite that failed before skae.json was replaced leaves new tensor
    # files next to the old JSON: refused, not loaded as a mix of two models.
    other = tmp_path / "other"
    save(_fast(n_components=2, random_state=1).fit(_data()), other)
    (saved / WEIGHTS_FILE).write_bytes((other / WEIGHTS_FILE).read_bytes())
    with pytest.raises(ValueError, match="incomplete or mixed save"):
        load(saved)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda d: d.update(extra=1), r"unknown keys \['extra'\] in skae.json"),
        (
            lambda d: d["fitted"].update(components_=[1]),
            r"unknown keys \['components_'\] in fitted",
        ),
        (
            lambda d: d["params"].update(n_neurons=3, zeta=1),
            r"unknown parameters \['n_neurons', 'zeta'\]",
        ),
        (lambda d: d.pop("history"), r"missing keys \['history'\]"),
        (lambda d: d["fitted"].pop("mean_"), r"missing keys \['mean_'\] in fitted"),
    ],
)
def test_load_refuses_unknown_or_missing_keys(saved, edit, match):
    _edit_json(saved, edit)
    with pytest.raises(ValueError, match=match):
        load(saved)


@pytest.mark.parametrize("version", ["3.0", "13.1"])
def test_load_refuses_newer_major_version(saved, version):
    _edit_json(saved, lambda d: d.update(format_version=version))
    with pytest.raises(ValueError, match=r"format_version='.*'.*Upgrade skae"):
        load(saved)


def _add_future_keys(doc):
    doc["format_version"] = "2.99"
    doc["calibration"] = {"kind": "isotonic"}  # optional content of 2.99
    doc["fitted"]["n_epochs_seen_"] = 3
    doc["net"]["compiled"] = False
    doc["params"]["calibration_bins"] = 10  # a parameter added in 2.99


def test_load_accepts_newer_minor_version(saved, fitted):
    _edit_json(saved, lambda d: d.update(format_version="2.7"))
    _assert_same_outputs(fitted, load(saved), _data())


def test_newer_minor_version_with_unknown_keys_loads_with_a_warning(saved, fitted):
    _edit_json(saved, _add_future_keys)
    with pytest.warns(UserWarning, match="format_version='2.99'") as record:
        loaded = load(saved)
    message = str(record[0].message)
    for key in (
        "calibration",
        "fitted.n_epochs_seen_",
        "net.compiled",
        "params.calibration_bins",
    ):
        assert key in message
    _assert_same_outputs(fitted, loaded, _data())


@pytest.mark.parametrize("version", [None])
def test_unknown_keys_of_this_or_an_older_version_are_refused(saved, version):
    def edit(doc):
        _add_future_keys(doc)
        doc["format_version"] = version or "{}.{}".format(*FORMAT_VERSION)

    _edit_json(saved, edit)
    with pytest.raises(ValueError, match=r"unknown keys \['calibration'\]"):
        load(saved)


@pytest.mark.parametrize("version", ["one", "1", "0.9", None])
def test_load_refuses_malformed_version(saved, version):
    _edit_json(saved, lambda d: d.update(format_version=version))
    with pytest.raises(ValueError, match="format_version"):
        load(saved)


def test_load_refuses_other_format(saved):
    _edit_json(saved, lambda d: d.update(estimator="PCA"))
    with pytest.raises(ValueError, match="estimator='PCA'"):
        load(saved)


def test_load_refuses_tensor_shape_not_in_manifest(saved):
    weights = load_file(saved / WEIGHTS_FILE)
    weights["encoder.out.weight"] = torch.zeros(3, 6)
    _save_tensors(saved, WEIGHTS_FILE, weights)
    with pytest.raises(
        ValueError,
        match=r"tensor 'encoder.out.weight' has dtype float32 and shape \(3, 6\), "
        r"but float32 and shape \(2, 6\) were expected",
    ):
        load(saved)


def test_load_refuses_tensor_shape_not_matching_architecture(saved):
    # File and manifest agree, but the parameters describe another network.
    weights = load_file(saved / WEIGHTS_FILE)
    weights["encoder.blocks.0.linear.weight"] = torch.zeros(6, 4)
    _save_tensors(saved, WEIGHTS_FILE, weights)
    _edit_json(
        saved,
        lambda d: d["tensors"][WEIGHTS_FILE].update(
            {"encoder.blocks.0.linear.weight": {"dtype": "float32", "shape": [6, 4]}}
        ),
    )
    with pytest.raises(
        ValueError,
        match=r"weights.safetensors: tensor 'encoder.blocks.0.linear.weight' has "
        r"dtype float32 and shape \(6, 4\), but float32 and shape \(6, 5\)",
    ):
        load(saved)


def test_load_refuses_wrong_dtype(saved):
    weights = load_file(saved / WEIGHTS_FILE)
    weights["encoder.out.bias"] = weights["encoder.out.bias"].double()
    _save_tensors(saved, WEIGHTS_FILE, weights)
    _edit_json(
        saved,
        lambda d: d["tensors"][WEIGHTS_FILE]["encoder.out.bias"].update(
            dtype="float64"
        ),
    )
    with pytest.raises(ValueError, match=r"'encoder.out.bias' has dtype float64"):
        load(saved)


def test_load_refuses_missing_and_extra_tensors(saved):
    weights = load_file(saved / WEIGHTS_FILE)
    weights["encoder.extra"] = weights.pop("decoder.out.bias")
    _save_tensors(saved, WEIGHTS_FILE, weights)
    with pytest.raises(
        ValueError,
        match=r"missing tensors \['decoder.out.bias'\], "
        r"unexpected tensors \['encoder.extra'\]",
    ):
        load(saved)


def test_load_refuses_architecture_change(saved):
    _edit_json(saved, lambda d: d["params"].update(hidden_layer_sizes=[7]))
    with pytest.raises(ValueError, match="'encoder.blocks.0.linear.weight'"):
        load(saved)


def test_load_validates_parameters(saved):
    _edit_json(saved, lambda d: d["params"].update(activation="swish"))
    with pytest.raises(InvalidParameterError, match="'activation' parameter"):
        load(saved)


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("mean_", ["0x1p-1"], "mean_ must be a list of 5 float.hex strings"),
        ("scale_", [0.5] * 5, "scale_ must hold float.hex strings"),
        ("scale_", ["inf"] * 5, "scale_ has non-finite values"),
        ("n_features_in_", "5", "n_features_in_ must be an int"),
        ("n_components_", 3, "n_components_=3 does not match n_components=2"),
        ("loss_curve_", ["a"], "loss_curve_ must be a list of numbers"),
        ("feature_names_in_", ["a"], "feature_names_in_ must be a list of 5 strings"),
    ],
)
def test_load_validates_fitted_values(saved, key, value, match):
    _edit_json(saved, lambda d: d["fitted"].update({key: value}))
    with pytest.raises(ValueError, match=match):
        load(saved)


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["history"].pop(),
        lambda d: d["history"][0].pop("train_loss"),
        lambda d: d["history"][1].update(train_loss="low"),
        lambda d: d.update(history={}),
    ],
)
def test_load_validates_history(saved, edit):
    _edit_json(saved, edit)
    with pytest.raises(ValueError, match="history must be a list of n_iter_=3"):
        load(saved)


def test_load_validates_optimizer_entries(saved):
    training = load_file(saved / TRAINING_FILE)
    training["optimizer.99.exp_avg"] = torch.zeros(2)
    _save_tensors(saved, TRAINING_FILE, training)
    _edit_json(
        saved,
        lambda d: d["tensors"][TRAINING_FILE].update(
            {"optimizer.99.exp_avg": {"dtype": "float32", "shape": [2]}}
        ),
    )
    with pytest.raises(ValueError, match="refers to parameter 99"):
        load(saved)


def test_load_never_unpickles(saved, fitted):
    forbidden = AssertionError("load must not unpickle")
    with (
        patch("pickle.loads", side_effect=forbidden),
        patch("pickle.load", side_effect=forbidden),
        patch("pickle.Unpickler", side_effect=forbidden),
        patch("torch.load", side_effect=forbidden),
        patch("numpy.load", side_effect=forbidden),
        patch("joblib.load", side_effect=forbidden),
    ):
        loaded = load(saved)
        _assert_same_outputs(fitted, loaded, _data())


# ------------------------------------------------------------------ devices


def test_cuda_model_loads_on_cpu_without_cuda(tmp_path):
    X = _data()
    ae = _fast().fit(X)
    save(ae, tmp_path)

    # As if trained on a GPU: the saved weights are on CPU either way, but the
    # dropout generator's state is a CUDA generator's (16 bytes, Philox).
    def on_gpu(doc):
        doc["params"]["device"] = "cuda"
        doc["net"]["device"] = "cuda:0"
        doc["tensors"][TRAINING_FILE]["rng.module"]["shape"] = [16]

    training = load_file(tmp_path / TRAINING_FILE)
    training["rng.module"] = torch.zeros(16, dtype=torch.uint8)
    _save_tensors(tmp_path, TRAINING_FILE, training)
    _edit_json(tmp_path, on_gpu)
    with (
        patch("torch.cuda.is_available", return_value=False),
        pytest.warns(UserWarning, match="device='cuda' but CUDA is not available"),
    ):
        loaded = load(tmp_path)
    assert str(loaded.net_.device) == "cpu"
    assert loaded.device == "cuda"  # the parameter is kept as saved
    assert next(loaded.net_.module_.parameters()).device.type == "cpu"
    _assert_same_outputs(ae, loaded, X)
    loaded.set_params(device="cpu").partial_fit(X)  # trains on, on the CPU
    assert loaded.n_iter_ == ae.n_iter_ + 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_real_cuda_model_round_trip(tmp_path):
    X = _data(np.float32)
    ae = _fast(device="cuda").fit(X)
    save(ae, tmp_path)
    _assert_same_outputs(ae, load(tmp_path), X)
    with (
        patch("torch.cuda.is_available", return_value=False),
        pytest.warns(UserWarning, match="CUDA is not available"),
    ):
        on_cpu = load(tmp_path)
    assert str(on_cpu.net_.device) == "cpu"
    for left, right in zip(_outputs(ae, X), _outputs(on_cpu, X), strict=True):
        np.testing.assert_allclose(left, right, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ pickle / joblib


def test_pickle_round_trip(fitted):
    X = _data()
    _assert_same_outputs(fitted, pickle.loads(pickle.dumps(fitted)), X)


@pytest.mark.parametrize("mmap_mode", [None, "r"])
def test_joblib_round_trip(fitted, tmp_path, mmap_mode):
    X = _data()
    joblib.dump(fitted, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib", mmap_mode=mmap_mode)
    _assert_same_outputs(fitted, loaded, X)
    _assert_same_outputs(fitted, loaded, X.astype(np.float32))


def test_partial_fit_after_pickle_applies_penalty():
    X = _data()
    ae = _fast(alpha=1.0).fit(X)
    copy = pickle.loads(pickle.dumps(ae))
    ae.partial_fit(X)
    copy.partial_fit(X)
    _assert_same_outputs(ae, copy, X)


def test_pickle_then_save(fitted, tmp_path):
    unpickled = pickle.loads(pickle.dumps(fitted))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = _round_trip(unpickled, tmp_path)
    _assert_same_outputs(fitted, loaded, _data())


def test_load_refuses_scheduler_state_without_schedule(tmp_path):
    save(_fast(lr_schedule="exponential").fit(_data()), tmp_path)
    _edit_json(tmp_path, lambda d: d["params"].update(lr_schedule="constant"))
    with pytest.raises(ValueError, match="scheduler state is saved, but"):
        load(tmp_path)
    _edit_json(tmp_path, lambda d: d.update(scheduler=[1]))
    with pytest.raises(ValueError, match="scheduler must be a JSON object"):
        load(tmp_path)


def test_load_refuses_bad_generator_states(tmp_path):
    save(_fast(early_stopping=True).fit(_data()), tmp_path)
    training = load_file(tmp_path / TRAINING_FILE)
    training["rng.validation_split"] = torch.zeros(3, dtype=torch.uint8)
    _save_tensors(tmp_path, TRAINING_FILE, training)
    _edit_json(
        tmp_path,
        lambda d: d["tensors"][TRAINING_FILE]["rng.validation_split"].update(shape=[3]),
    )
    with pytest.raises(ValueError, match="invalid generator state"):
        load(tmp_path)
    del training["rng.validation_split"]
    _save_tensors(tmp_path, TRAINING_FILE, training)
    with pytest.raises(ValueError, match=r"missing tensors \['rng.validation_split'\]"):
        load(tmp_path)


def test_save_describes_the_fitted_model_after_set_params(tmp_path):
    # set_params after fit does not change the fitted model (partial_fit keeps
    # training it as built): the file keeps the fitted values and says so.
    X = _data()
    ae = _fast(lr_schedule="exponential").fit(X)
    ae.set_params(hidden_layer_sizes=(3,), lr_schedule="constant", verbose=0)
    with pytest.warns(UserWarning, match=r"changed \['hidden_layer_sizes', 'lr_sch"):
        save(ae, tmp_path)
    loaded = load(tmp_path)
    assert loaded.hidden_layer_sizes == (6,)
    assert loaded.lr_schedule == "exponential"
    _assert_same_outputs(ae, loaded, X)
    ae.partial_fit(X)
    loaded.partial_fit(X)
    _assert_same_outputs(ae, loaded, X)
    # Runtime-only parameters are saved as they are now, without a warning.
    ae.set_params(hidden_layer_sizes=(6,), lr_schedule="exponential", n_threads=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        save(ae, tmp_path)
    assert load(tmp_path).n_threads == 1


def test_output_container_round_trips(tmp_path):
    X = pd.DataFrame(_data(), columns=list("abcde"))
    ae = _fast().set_output(transform="pandas").fit(X)
    loaded = _round_trip(ae, tmp_path)
    Z = loaded.transform(X)
    assert isinstance(Z, pd.DataFrame)
    assert list(Z.columns) == list(ae.get_feature_names_out())
    pd.testing.assert_frame_equal(Z, ae.transform(X))
    _edit_json(tmp_path, lambda d: d.update(output_config={"transform": 1}))
    with pytest.raises(ValueError, match="output_config must map"):
        load(tmp_path)


def test_save_takes_equal_or_runtime_values_as_they_are_now(tmp_path):
    # The documented way out of a value JSON cannot hold still works: set an
    # equal value (or, for callbacks and random_state, any value) and save.
    from skorch.callbacks import Callback

    X = _data()
    ae = _fast(
        hidden_layer_sizes=np.array([6]),
        callbacks=[("mine", Callback())],
        random_state=np.random.RandomState(0),
    ).fit(X)
    with pytest.raises(TypeError, match="Cannot save callbacks"):
        save(ae, tmp_path)
    ae.set_params(hidden_layer_sizes=(6,), callbacks=None, random_state=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        save(ae, tmp_path)
    loaded = load(tmp_path)
    assert loaded.hidden_layer_sizes == (6,) and loaded.random_state == 3
    _assert_same_outputs(ae, loaded, X)
    assert "output_config" not in json.loads((tmp_path / JSON_FILE).read_text())


@pytest.mark.parametrize("name, key", [("format-2.0", ""), ("format-2.0-vae", "vae_")])
def test_a_saved_file_loads_and_trains_on_exactly(tmp_path, name, key):
    # Written by skae at commit 7c84df4 (the parent of the one adding them): an
    # AutoencoderTransformer started at PCA, with dropout and an exponential
    # schedule, and a VariationalAutoencoderTransformer, each fitted on these
    # rows. Codes after loading and after one more epoch are those that code
    # computed, bit for bit: a change of layout or arithmetic shows here.
    shutil.copytree(DATA / name, tmp_path / "model")
    X = load_digits().data[:300]
    expected = np.load(DATA / "format-2.0-expected.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ae = load(tmp_path / "model")
    assert np.array_equal(ae.transform(X[:50]), expected[f"{key}codes"])
    saved = json.loads((tmp_path / "model" / JSON_FILE).read_text())
    assert ae.init_ == saved["fitted"]["init_"] == ("random" if key else "pca")
    assert ae.loss_curve_ == saved["fitted"]["loss_curve_"]
    n_iter = ae.n_iter_
    ae.partial_fit(X)
    assert ae.n_iter_ == n_iter + 1
    assert np.array_equal(ae.transform(X[:50]), expected[f"{key}after"])
    if ae.lr_schedule == "exponential":  # goes on from where it was
        last_lr = saved["history"][-1]["lr"]
        assert ae.history_[-1, "lr"] == pytest.approx(last_lr * 0.97, rel=1e-12)


@pytest.mark.parametrize("version", ["1.1", "1.3"])
def test_a_development_format_is_refused(tmp_path, version):
    # Written by skae before its first release; not read any more.
    shutil.copytree(DATA / f"format-{version}", tmp_path / "model")
    with pytest.raises(
        ValueError, match=rf"format_version='{version}' was written by a development"
    ):
        load(tmp_path / "model")


def test_stop_reason_round_trips(tmp_path):
    X = _data()
    ae = _fast(max_iter=100, tol=10.0, n_iter_no_change=2, early_stopping=False)
    ae.fit(X)
    assert ae.stop_reason_ == "tol"
    save(ae, tmp_path)
    assert load(tmp_path).stop_reason_ == "tol"
