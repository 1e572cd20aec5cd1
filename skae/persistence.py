"""Save and load fitted skae estimators without pickle (JSON and safetensors)."""

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import sklearn
import torch
from safetensors.torch import save as save_bytes
from sklearn.utils.validation import check_is_fitted
from skorch.history import History

from . import _format, _restore
from ._data.scaling import Scaling
from ._estimator import AutoencoderTransformer
from ._format import FORMAT_VERSION, JSON_FILE, TRAINING_FILE, WEIGHTS_FILE
from ._training.loop import scheduler
from ._variational import VariationalAutoencoderTransformer
from ._version import __version__

__all__ = ["load", "save"]

#: The estimators a file can hold, by the name written in it.
ESTIMATORS = {
    cls.__name__: cls
    for cls in (AutoencoderTransformer, VariationalAutoencoderTransformer)
}

_TOP_KEYS = {
    "format",
    "format_version",
    "estimator",
    "versions",
    "params",
    "fitted",
    "net",
    "history",
    "optimizer",
    "tensors",
    "sha256",
    "scheduler",
    "output_config",  # written only when set_output was called
}


def save(estimator, path):
    """Save a fitted skae estimator to the directory ``path``.

    Files of a previous save there are replaced. Read more in the
    :ref:`User Guide <persistence>`.

    Parameters
    ----------
    estimator : AutoencoderTransformer or VariationalAutoencoderTransformer
        A fitted estimator whose parameters JSON can hold: ``callbacks`` None
        or empty, ``random_state`` an int or None. ``accelerator`` is not saved.
    path : str or os.PathLike
        Directory to write.

    Raises
    ------
    TypeError
        If ``estimator`` is not one of skae's estimators, or a parameter
        cannot be written as JSON (the message names it).

    See Also
    --------
    load : Read a saved estimator back.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from skae import AutoencoderTransformer
    >>> from skae.persistence import load, save
    >>> X = np.random.RandomState(0).normal(size=(20, 4))
    >>> ae = AutoencoderTransformer(2, hidden_layer_sizes=(8,), max_iter=2,
    ...                             random_state=0).fit(X)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     save(ae, tmp)
    ...     ae2 = load(tmp)
    >>> bool(np.array_equal(ae.transform(X), ae2.transform(X)))
    True
    """
    if type(estimator) not in ESTIMATORS.values():
        raise TypeError(
            f"save expects one of {sorted(ESTIMATORS)}; got {type(estimator).__name__}."
        )
    check_is_fitted(estimator)
    path = Path(path)
    net = estimator.net_
    params = _saved_params(estimator)
    fitted = {
        "n_features_in_": int(estimator.n_features_in_),
        "n_components_": int(estimator.n_components_),
        "n_iter_": int(estimator.n_iter_),
        "loss_curve_": [float(v) for v in estimator.loss_curve_],
        "n_restarts_": int(estimator.n_restarts_),
        "init_": str(estimator.init_),
        "stop_reason_": str(estimator.stop_reason_),
        "mean_": [float(v).hex() for v in np.asarray(estimator.mean_, np.float64)],
        "scale_": [float(v).hex() for v in np.asarray(estimator.scale_, np.float64)],
    }
    if hasattr(estimator, "feature_names_in_"):
        fitted["feature_names_in_"] = [str(n) for n in estimator.feature_names_in_]

    weights = _format.cpu_tensors(net.module_.state_dict())
    opt_state = net.optimizer_.state_dict()
    training, opt_scalars = {}, {}
    for index, state in opt_state["state"].items():
        for key, value in state.items():
            name = f"optimizer.{index}.{key}"
            if isinstance(value, torch.Tensor):
                training[name] = value
            else:
                opt_scalars[name] = _format.jsonable(value, name)
    for role, state in net.get_rng_states().items():
        training[f"rng.{role}"] = state
    training = _format.cpu_tensors(training)

    doc = {
        "format": "skae",
        "format_version": "{}.{}".format(*FORMAT_VERSION),
        "estimator": type(estimator).__name__,
        "versions": {
            "skae": __version__,
            "torch": torch.__version__,
            "sklearn": sklearn.__version__,
            "numpy": np.__version__,
        },
        "params": params,
        "fitted": fitted,
        "net": {
            "seed": int(net.seed),
            "validate": net.train_split is not None,
            "device": str(net.device),
        },
        "history": [_format.history_row(row) for row in net.history],
        "optimizer": {
            "param_groups": [
                _format.jsonable(
                    {k: v for k, v in group.items() if k != "params"},
                    "optimizer.param_groups",
                )
                for group in opt_state["param_groups"]
            ],
            "state": opt_scalars,
        },
        "tensors": {
            WEIGHTS_FILE: _format.manifest(weights),
            TRAINING_FILE: _format.manifest(training),
        },
        "scheduler": _scheduler_state(net),
    }
    # set_output's choice has no public getter; clone and Pipeline read this too.
    output = dict(getattr(estimator, "_sklearn_output_config", {}))
    if output:
        doc["output_config"] = output
    blobs = {WEIGHTS_FILE: save_bytes(weights), TRAINING_FILE: save_bytes(training)}
    # The JSON names each tensor file's SHA-256: a directory whose files come
    # from two different saves (an overwrite that failed half-way) is refused.
    doc["sha256"] = {
        name: hashlib.sha256(blob).hexdigest() for name, blob in blobs.items()
    }
    text = json.dumps(doc, indent=1)  # before any file is written

    accelerator = estimator.accelerator
    if accelerator is not None:
        # Data parallel: all processes call save; the main one writes, between barriers.
        accelerator.wait_for_everyone()
    if accelerator is None or accelerator.is_main_process:
        path.mkdir(parents=True, exist_ok=True)
        for name, blob in blobs.items():
            _format.replace(
                path / name, lambda tmp, blob=blob: Path(tmp).write_bytes(blob)
            )
        _format.replace(
            path / JSON_FILE, lambda tmp: Path(tmp).write_text(text, "utf-8")
        )
    if accelerator is not None:
        accelerator.wait_for_everyone()


def load(path):
    """Load an estimator written by :func:`save`, without unpickling anything.

    Read more in the :ref:`User Guide <persistence>`.

    Parameters
    ----------
    path : str or os.PathLike
        Directory written by :func:`save`.

    Returns
    -------
    estimator : AutoencoderTransformer or VariationalAutoencoderTransformer
        The fitted estimator, of the class that was saved.

    Raises
    ------
    ValueError
        If a file is missing or unreadable, of a newer format version, or
        does not match what it describes (keys, types, tensors).

    See Also
    --------
    save : Write a fitted estimator.
    """
    path = Path(path)
    doc = _format.read_json(path)
    # Keys a newer minor version added: optional, ignored with a warning.
    version = _format.check_format(doc, ESTIMATORS)
    ignored = [] if version > FORMAT_VERSION else None
    doc = _format.check_keys(
        doc, _TOP_KEYS, JSON_FILE, optional={"output_config"}, ignored=ignored
    )
    cls = ESTIMATORS[doc["estimator"]]
    estimator = cls(**_format.decode_params(doc["params"], cls, ignored))
    estimator._validate_params()
    fitted = _restore.read_fitted(doc["fitted"], estimator, ignored)
    tensors = _format.check_keys(
        doc["tensors"], {WEIGHTS_FILE, TRAINING_FILE}, "tensors", ignored=ignored
    )
    sha256 = _format.check_keys(
        doc["sha256"], {WEIGHTS_FILE, TRAINING_FILE}, "sha256", ignored=ignored
    )
    weights = _format.read_tensors(path, WEIGHTS_FILE, tensors[WEIGHTS_FILE], sha256)
    training = _format.read_tensors(path, TRAINING_FILE, tensors[TRAINING_FILE], sha256)

    net = _restore.rebuild_net(
        estimator, doc["net"], fitted["n_features_in_"], fitted["init_"], ignored
    )
    _restore.load_module(net.module_, weights)
    history = History(_format.read_history(doc["history"], fitted["n_iter_"]))
    # Built as at training's start, before the history it would resume from
    # and the optimizer's state, which its constructor's step would change.
    scheduler = _restore.build_scheduler(net, doc["scheduler"])
    _restore.load_optimizer(net, doc["optimizer"], training, ignored)
    net.history_ = history
    if scheduler is not None:
        scheduler.load_state_dict(doc["scheduler"])
    _restore.load_generators(net, training, ignored, doc["net"]["device"])
    net.module_.eval()
    if ignored:
        warnings.warn(
            f"{JSON_FILE} has format_version={doc['format_version']!r}, newer "
            f"than this skae's {'{}.{}'.format(*FORMAT_VERSION)}; its optional "
            f"content {ignored} was ignored. Upgrade skae to read all of it.",
            UserWarning,
            stacklevel=2,
        )

    scaling = Scaling(estimator.scaling)
    scaling.mean_, scaling.scale_ = fitted.pop("mean_"), fitted.pop("scale_")
    scaling.baseline_loss_ = None  # not saved: unknown
    for name, value in fitted.items():
        setattr(estimator, name, value)
    estimator._scaling = scaling
    estimator.mean_, estimator.scale_ = scaling.mean_, scaling.scale_
    estimator.net_ = net
    estimator.history_ = net.history
    estimator._fit_params = estimator.get_params(deep=False)
    output = doc.get("output_config", {})
    if not isinstance(output, dict) or not all(
        isinstance(v, str) for v in output.values()
    ):
        raise ValueError(f"{JSON_FILE}: output_config must map method names to str.")
    if output.get("transform"):
        estimator.set_output(transform=output["transform"])
    return estimator


# ------------------------------------------------------------------ save helpers

# Parameters that steer calls or the next fit but are not part of the fitted
# model (the generator states are saved apart): saved as they are now.
_RUNTIME_PARAMS = {"n_threads", "verbose", "callbacks", "random_state"}
# Parameters never saved (a live object of this run): loaded at their default.
_UNSAVED_PARAMS = {"accelerator"}


def _saved_params(estimator):
    """The parameters the fitted net was built with, encoded for JSON.

    Values changed by ``set_params`` since ``fit`` are not saved; a warning names them.
    """
    current = estimator.get_params(deep=False)
    for name in _UNSAVED_PARAMS:
        current.pop(name, None)
    fitted = estimator._fit_params
    # Unchanged values are saved as they are now: equal, maybe in a type JSON
    # can hold (a tuple set in place of the array the model was fitted with).
    params = {
        name: value
        if name in _RUNTIME_PARAMS or _same(value, fitted[name])
        else fitted[name]
        for name, value in current.items()
    }
    changed = sorted(name for name in current if params[name] is not current[name])
    if changed:
        warnings.warn(
            f"set_params changed {changed} since the model was fitted; the saved "
            "file describes the fitted model and keeps the values it was fitted "
            f"with ({ {n: fitted[n] for n in changed} }). Fit again first to save "
            "a model with the new values.",
            UserWarning,
            stacklevel=3,
        )
    return {
        name: _format.encode_param(name, value)
        for name, value in params.items()
        if name not in _UNSAVED_PARAMS
    }


def _same(a, b):
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # arrays compare elementwise
        try:
            return bool(np.array_equal(a, b))
        except (TypeError, ValueError):
            return False  # treated as changed: the fitted value is saved


def _scheduler_state(net):
    """The torch scheduler's state (plain numbers), or None without one."""
    schedule = scheduler(net)
    if schedule is None:
        return None
    return _format.jsonable(schedule.state_dict(), "scheduler")
