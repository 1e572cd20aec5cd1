"""Loading's checked steps: fitted attributes, net, weights, optimizer, generators.

Each checks what it reads before using it; a ValueError names file and entry.
"""

import numpy as np
import torch

from . import _devices, _format
from ._format import JSON_FILE, TRAINING_FILE, WEIGHTS_FILE
from ._nn.layers import INITS
from ._training.loop import STOP_REASONS

_FITTED_KEYS = {
    "n_features_in_",
    "feature_names_in_",
    "n_components_",
    "n_iter_",
    "loss_curve_",
    "n_restarts_",
    "mean_",
    "scale_",
    "stop_reason_",
    "init_",
}
_NET_KEYS = {"seed", "validate", "device"}
_OPTIMIZER_KEYS = {"param_groups", "state"}
# Settings of an optimizer that choose its implementation on this machine;
# they are taken from the optimizer built at load time, not from the file.
_IMPLEMENTATION_KEYS = {"fused", "foreach", "capturable", "differentiable"}


def read_fitted(doc, estimator, ignored):
    """Return the fitted attributes described by ``doc``, checked."""
    doc = _format.check_keys(
        doc,
        _FITTED_KEYS,
        "fitted",
        optional={"feature_names_in_"},
        ignored=ignored,
    )
    n_features = _format.positive_int(doc, "n_features_in_")
    n_components = _format.positive_int(doc, "n_components_")
    if n_components > n_features or n_components != estimator.n_components:
        raise ValueError(
            f"{JSON_FILE}: fitted n_components_={n_components} does not match "
            f"n_components={estimator.n_components} and "
            f"n_features_in_={n_features}."
        )
    fitted = {
        "n_features_in_": n_features,
        "n_components_": n_components,
        "n_iter_": _format.non_negative_int(doc, "n_iter_"),
        "loss_curve_": _format.float_list(doc, "loss_curve_"),
        "n_restarts_": _format.non_negative_int(doc, "n_restarts_"),
        "stop_reason_": _format.one_of(doc, "stop_reason_", STOP_REASONS),
        "init_": _format.one_of(doc, "init_", ("pca", *INITS)),
        "mean_": _format.float64_array(doc, "mean_", n_features),
        "scale_": _format.float64_array(doc, "scale_", n_features),
    }
    if "feature_names_in_" in doc:
        names = doc["feature_names_in_"]
        if (
            not isinstance(names, list)
            or len(names) != n_features
            or not all(isinstance(n, str) for n in names)
        ):
            raise ValueError(
                f"{JSON_FILE}: feature_names_in_ must be a list of "
                f"{n_features} strings."
            )
        fitted["feature_names_in_"] = np.asarray(names, dtype=object)
    return fitted


def rebuild_net(estimator, doc, n_features, init, ignored):
    """Build and initialize the net as ``fit`` did; the weights come later."""
    doc = _format.check_keys(doc, _NET_KEYS, "net", ignored=ignored)
    seed, validate = doc["seed"], doc["validate"]
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"{JSON_FILE}: net seed must be an int >= 0; got {seed!r}.")
    if not isinstance(validate, bool):
        raise ValueError(f"{JSON_FILE}: net validate must be a bool; got {validate!r}.")
    device = _devices.loading_device(estimator.device)
    return estimator._new_net(
        n_features, seed, device, validate, init=init
    ).initialize()


def load_module(module, weights):
    """Copy ``weights`` into ``module`` after checking names, dtypes and shapes."""
    own = module.state_dict()
    _format.check_tensor_names(
        WEIGHTS_FILE, set(weights), set(own), "the network its parameters describe"
    )
    for key, target in own.items():
        _format.check_tensor(
            WEIGHTS_FILE,
            key,
            weights[key],
            _format.dtype_name(target.dtype),
            target.shape,
        )
    module.load_state_dict(weights, strict=True)


def load_optimizer(net, doc, training, ignored):
    """Restore the optimizer's state (moments, step counts, learning rate)."""
    doc = _format.check_keys(doc, _OPTIMIZER_KEYS, "optimizer", ignored=ignored)
    current = net.optimizer_.state_dict()
    groups = doc["param_groups"]
    if not isinstance(groups, list) or len(groups) != len(current["param_groups"]):
        raise ValueError(
            f"{JSON_FILE}: optimizer param_groups do not match the optimizer of "
            f"solver={net.optimizer.__name__!r}."
        )
    param_groups = []
    for saved, own in zip(groups, current["param_groups"], strict=True):
        if not isinstance(saved, dict):
            raise ValueError(f"{JSON_FILE}: optimizer param_groups must hold objects.")
        # Start from this torch's settings, so that a key added by another
        # torch version gets its default; the implementation flags stay ours.
        group = dict(own)
        for key in set(saved) - _IMPLEMENTATION_KEYS - {"params"}:
            value = saved[key]
            group[key] = tuple(value) if isinstance(value, list) else value
        param_groups.append(group)

    scalars = doc["state"]
    if not isinstance(scalars, dict):
        raise ValueError(f"{JSON_FILE}: optimizer state must be a JSON object.")
    shapes = [p.shape for group in net.optimizer_.param_groups for p in group["params"]]
    state = {}
    entries = [(k, v) for k, v in training.items() if k.startswith("optimizer.")]
    entries += list(scalars.items())
    for name, value in entries:
        parts = name.split(".")
        if len(parts) != 3 or parts[0] != "optimizer" or not parts[1].isdigit():
            raise ValueError(f"{TRAINING_FILE}: unexpected optimizer entry {name!r}.")
        index = int(parts[1])
        if index >= len(shapes):
            raise ValueError(
                f"{TRAINING_FILE}: optimizer entry {name!r} refers to parameter "
                f"{index}, but the network has {len(shapes)} parameters."
            )
        if (
            isinstance(value, torch.Tensor)
            and value.dim()
            and value.shape != shapes[index]
        ):
            raise ValueError(
                f"{TRAINING_FILE}: tensor {name!r} has shape {tuple(value.shape)}, "
                f"but its parameter has shape {tuple(shapes[index])}."
            )
        state.setdefault(index, {})[parts[2]] = value
    net.optimizer_.load_state_dict({"state": state, "param_groups": param_groups})


def build_scheduler(net, state):
    """Build the net's torch scheduler, or None (for its ``load_state_dict``)."""
    if state is None:
        return None
    if not isinstance(state, dict):
        raise ValueError(f"{JSON_FILE}: scheduler must be a JSON object or null.")
    callback = dict(net.callbacks_).get("lr_scheduler")
    if callback is None:
        raise ValueError(
            f"{JSON_FILE}: a scheduler state is saved, but the parameters "
            "say lr_schedule='constant'."
        )
    callback.on_train_begin(net)  # where skorch builds it, as training would
    return callback.lr_scheduler_


def load_generators(net, training, ignored, saved_device):
    """Restore the random generators' states (batch order, split, dropout)."""
    roles = set(net.get_rng_states())
    expected = {f"rng.{role}" for role in roles}
    found = {k for k in training if k.startswith("rng.")}
    # A CUDA generator's state means nothing on CPU: the masks start afresh.
    moved = torch.device(str(saved_device)).type != torch.device(net.device).type
    if moved:
        expected.discard("rng.module")
        roles.discard("module")
        found.discard("rng.module")
    if ignored is not None:  # a newer minor version may add generators
        ignored.extend(sorted(found - expected))
        found &= expected
    _format.check_tensor_names(TRAINING_FILE, found, expected, "the saved network")
    try:
        net.set_rng_states({role: training[f"rng.{role}"] for role in roles})
    except RuntimeError as exc:
        raise ValueError(f"{TRAINING_FILE}: invalid generator state: {exc}") from None
