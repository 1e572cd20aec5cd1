"""The file format of :mod:`skae.persistence`: JSON encoding and checked reading.

Everything here reads or writes plain data (JSON values, safetensors files)
and checks it; building an estimator from it is :mod:`skae.persistence`'s job.
"""

import hashlib
import json
import os
from numbers import Integral, Real

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes

#: (major, minor) of the format written by :func:`skae.save`. A new minor
#: version only adds optional content: an older reader loads such a file,
#: ignores what it does not know and warns. A new major version cannot be
#: read by older skae.
FORMAT_VERSION = (2, 0)

#: The oldest format read: earlier ones were written while skae was developed.
OLDEST_VERSION = (2, 0)

JSON_FILE = "skae.json"
WEIGHTS_FILE = "weights.safetensors"
TRAINING_FILE = "training.safetensors"
TUPLE_TAG = "__tuple__"


def encode_param(name, value):
    """Return ``value`` as JSON data; tuples are tagged to come back as tuples."""
    try:
        return encode(value)
    except TypeError:
        raise TypeError(
            f"Cannot save {name}={value!r}: skae.save writes parameters as JSON "
            "(None, bool, int, float, str, and lists, tuples and str-keyed dicts "
            f"of those). Call set_params({name}=...) with such a value before "
            "saving, or use pickle/joblib for this estimator."
        ) from None


def encode(value):
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, torch.device):  # the device parameter
        return str(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        return float(value)
    if isinstance(value, tuple):
        return {TUPLE_TAG: [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict) and all(
        isinstance(k, str) and k != TUPLE_TAG for k in value
    ):
        return {k: encode(v) for k, v in value.items()}
    raise TypeError(type(value).__name__)


def jsonable(value, where):
    """Return ``value`` as plain JSON data (tuples become lists)."""
    try:
        return json.loads(json.dumps(value, default=numpy_scalar))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"Cannot save {where}: {exc}") from None


def numpy_scalar(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def history_row(row):
    """Return a history row as JSON data, without the per-batch details."""
    return jsonable(
        {k: v for k, v in row.items() if k != "batches"}, "the training history"
    )


def cpu_tensors(tensors):
    """Return detached, contiguous CPU copies (safetensors refuses shared storage)."""
    return {
        name: t.detach().to("cpu", copy=True).contiguous()
        for name, t in tensors.items()
    }


def manifest(tensors):
    return {
        name: {"dtype": dtype_name(t.dtype), "shape": list(t.shape)}
        for name, t in tensors.items()
    }


def dtype_name(dtype):
    return str(dtype).removeprefix("torch.")


def replace(target, write):
    """Write ``target`` through a temporary file renamed over it."""
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        write(str(tmp))
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


# ------------------------------------------------------------------ load helpers


def read_json(path):
    file = path / JSON_FILE
    if not path.is_dir():
        raise ValueError(
            f"{str(path)!r} is not a directory written by skae.save: it does not "
            "exist or is a file."
        )
    if not file.is_file():
        raise ValueError(
            f"{str(path)!r} is not a directory written by skae.save: {JSON_FILE} "
            "is missing."
        )
    try:
        doc = json.loads(file.read_text("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(
            f"{JSON_FILE} in {str(path)!r} is not valid JSON: {exc}"
        ) from None
    if not isinstance(doc, dict):
        raise ValueError(
            f"{JSON_FILE} must hold a JSON object; got {type(doc).__name__}."
        )
    return doc


def check_keys(doc, allowed, where, optional=(), ignored=None):
    """Return ``doc`` after checking it has exactly the keys ``allowed``.

    Keys in ``optional`` may be missing. Unknown keys raise, unless ``ignored``
    is a list (a newer minor version): then they are noted there and dropped.
    """
    if not isinstance(doc, dict):
        raise ValueError(f"{JSON_FILE}: {where} must be a JSON object.")
    unknown = sorted(set(doc) - set(allowed))
    if unknown and ignored is None:
        raise ValueError(
            f"{JSON_FILE}: unknown keys {unknown} in {where}; this skae reads "
            f"{sorted(allowed)}. Was the file written by a newer skae?"
        )
    if unknown:
        ignored.extend(f"{where}.{key}" for key in unknown)
        doc = {key: value for key, value in doc.items() if key in allowed}
    missing = sorted(set(allowed) - set(optional) - set(doc))
    if missing:
        raise ValueError(f"{JSON_FILE}: missing keys {missing} in {where}.")
    return doc


def check_format(doc, estimators):
    """Check the format fields; return the file's ``(major, minor)`` version.

    A newer minor version is readable: its unknown keys are optional content,
    ignored with a warning. ``estimators``: the names a file may hold.
    """
    missing = sorted({"format", "estimator", "format_version", "versions"} - set(doc))
    if missing:
        raise ValueError(f"{JSON_FILE}: missing keys {missing} in {JSON_FILE}.")
    if doc["format"] != "skae" or doc["estimator"] not in estimators:
        raise ValueError(
            f"{JSON_FILE}: format={doc['format']!r}, estimator={doc['estimator']!r}; "
            f"expected format='skae' and an estimator among {sorted(estimators)}."
        )
    version = doc["format_version"]
    try:
        major, minor = (int(part) for part in str(version).split("."))
    except ValueError:
        raise ValueError(
            f"{JSON_FILE}: format_version={version!r} is not 'major.minor'."
        ) from None
    versions = doc["versions"]
    if not isinstance(versions, dict):
        raise ValueError(f"{JSON_FILE}: versions must be a JSON object.")
    if major > FORMAT_VERSION[0]:
        saved_by = versions.get("skae", "unknown")
        raise ValueError(
            f"{JSON_FILE} has format_version={version!r} (written by skae "
            f"{saved_by}); this skae reads format versions up to "
            f"{FORMAT_VERSION[0]}.x. Upgrade skae to load it."
        )
    if (major, minor) < OLDEST_VERSION:
        raise ValueError(
            f"{JSON_FILE}: format_version={version!r} was written by a development "
            "version of skae; this skae reads format versions from "
            "{}.{} on. Fit the model again and save it.".format(*OLDEST_VERSION)
        )
    return major, minor


def decode_params(doc, cls, ignored=None):
    """Return the estimator's parameters from ``doc``.

    An unknown parameter is refused, unless ``ignored`` is a list (a newer
    minor version): then it is recorded there and left out. So a parameter
    that changes inference beyond the tensors' shapes needs a new major version.
    """
    if not isinstance(doc, dict):
        raise ValueError(f"{JSON_FILE}: params must be a JSON object.")
    known = set(cls().get_params(deep=False))
    unknown = sorted(set(doc) - known)
    if unknown and ignored is None:
        raise ValueError(
            f"{JSON_FILE}: unknown parameters {unknown} for {cls.__name__}. "
            "Was the file written by a newer skae?"
        )
    if unknown:
        ignored.extend(f"params.{name}" for name in unknown)
        doc = {name: value for name, value in doc.items() if name in known}
    # A parameter added after the file was written keeps its default.
    return {name: decode(value) for name, value in doc.items()}


def decode(value):
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {TUPLE_TAG} and isinstance(value[TUPLE_TAG], list):
            return tuple(decode(v) for v in value[TUPLE_TAG])
        return {k: decode(v) for k, v in value.items()}
    return value


def positive_int(doc, key):
    value = non_negative_int(doc, key)
    if value < 1:
        raise ValueError(f"{JSON_FILE}: {key} must be >= 1; got {value}.")
    return value


def non_negative_int(doc, key):
    value = doc[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{JSON_FILE}: {key} must be an int >= 0; got {value!r}.")
    return value


def one_of(doc, key, allowed):
    """Return ``doc[key]``, one of ``allowed``."""
    value = doc[key]
    if value not in allowed:
        raise ValueError(
            f"{JSON_FILE}: {key} must be one of {list(allowed)}; got {value!r}."
        )
    return value


def float_list(doc, key):
    value = doc[key]
    if not isinstance(value, list) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    ):
        raise ValueError(f"{JSON_FILE}: {key} must be a list of numbers.")
    return [float(v) for v in value]


def float64_array(doc, key, n):
    value = doc[key]
    if not isinstance(value, list) or len(value) != n:
        raise ValueError(
            f"{JSON_FILE}: {key} must be a list of {n} float.hex strings "
            "(one per feature)."
        )
    try:
        array = np.array([float.fromhex(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{JSON_FILE}: {key} must hold float.hex strings such as {(0.5).hex()!r}."
        ) from None
    if not np.isfinite(array).all():
        raise ValueError(f"{JSON_FILE}: {key} has non-finite values.")
    return array


def read_history(rows, n_iter):
    """Return the history rows after checking that each has an epoch's loss."""
    if (
        not isinstance(rows, list)
        or len(rows) != n_iter
        or not all(
            isinstance(row, dict)
            and isinstance(row.get("train_loss"), (int, float))
            and not isinstance(row.get("train_loss"), bool)
            for row in rows
        )
    ):
        raise ValueError(
            f"{JSON_FILE}: history must be a list of n_iter_={n_iter} objects, "
            "each with a numeric 'train_loss'."
        )
    return rows


def read_tensors(path, name, manifest, sha256):
    """Read ``name`` and check it holds exactly the tensors ``manifest`` lists."""
    if not isinstance(manifest, dict):
        raise ValueError(f"{JSON_FILE}: tensors[{name!r}] must be a JSON object.")
    file = path / name
    if not file.is_file():
        raise ValueError(f"{str(path)!r} is incomplete: {name} is missing.")
    blob = file.read_bytes()
    if hashlib.sha256(blob).hexdigest() != sha256[name]:
        raise ValueError(
            f"{name} in {str(path)!r} does not match the SHA-256 recorded in "
            f"{JSON_FILE}: the directory holds an incomplete or mixed save. "
            "Save the model again."
        )
    try:
        tensors = load_bytes(blob)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{name} in {str(path)!r} cannot be read: {exc}") from None
    expected = {}
    for key, spec in manifest.items():
        if not isinstance(spec, dict) or set(spec) != {"dtype", "shape"}:
            raise ValueError(
                f"{JSON_FILE}: tensor {key!r} must be described by 'dtype' and 'shape'."
            )
        expected[key] = spec
    check_tensor_names(
        name, set(tensors), set(expected), f"the manifest in {JSON_FILE}"
    )
    for key, tensor in tensors.items():
        check_tensor(name, key, tensor, expected[key]["dtype"], expected[key]["shape"])
    return tensors


def check_tensor_names(file, found, expected, what):
    missing, unexpected = sorted(expected - found), sorted(found - expected)
    if missing or unexpected:
        raise ValueError(
            f"{file} does not match {what}: missing tensors {missing}, "
            f"unexpected tensors {unexpected}."
        )


def check_tensor(file, key, tensor, dtype, shape):
    if dtype_name(tensor.dtype) != dtype or list(tensor.shape) != list(shape):
        raise ValueError(
            f"{file}: tensor {key!r} has dtype {dtype_name(tensor.dtype)} and "
            f"shape {tuple(tensor.shape)}, but {dtype} and shape {tuple(shape)} "
            "were expected."
        )
