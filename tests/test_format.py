"""The persistence file format: JSON values and their checks."""

import numpy as np
import pytest

from skae import AutoencoderTransformer, _format
from skae.persistence import ESTIMATORS


def test_tuples_round_trip_through_json_values():
    value = {"sizes": (6, 4), "nested": [(1, 2), {"k": (3,)}]}
    assert _format.decode(_format.encode(value)) == value


def test_float64_arrays_round_trip_exactly():
    values = np.array([0.1, 1 / 3, 1e-300, -2.5e300])
    doc = {"mean_": [float(v).hex() for v in values]}
    assert np.array_equal(_format.float64_array(doc, "mean_", 4), values)


@pytest.mark.parametrize(
    "doc, match",
    [
        ({"mean_": [0.5]}, "must hold float.hex strings"),
        ({"mean_": ["0x1p+0", "0x1p+0"]}, "must be a list of 1 float.hex strings"),
        ({"mean_": [float("inf").hex()]}, "has non-finite values"),
    ],
)
def test_float64_array_errors(doc, match):
    with pytest.raises(ValueError, match=match):
        _format.float64_array(doc, "mean_", 1)


def test_check_keys_names_unknown_and_missing_keys():
    with pytest.raises(ValueError, match=r"unknown keys \['z'\] in part"):
        _format.check_keys({"a": 1, "z": 2}, {"a"}, "part")
    with pytest.raises(ValueError, match=r"missing keys \['b'\] in part"):
        _format.check_keys({"a": 1}, {"a", "b"}, "part")
    assert _format.check_keys({"a": 1}, {"a", "b"}, "part", optional={"b"}) == {"a": 1}
    with pytest.raises(ValueError, match="part must be a JSON object"):
        _format.check_keys([1], {"a"}, "part")


def _header(version, estimator="AutoencoderTransformer"):
    return {
        "format": "skae",
        "estimator": estimator,
        "format_version": version,
        "versions": {"skae": "9.0"},
    }


@pytest.mark.parametrize(
    "version, match",
    [
        ("one", r"format_version='one' is not 'major.minor'"),
        ("0.9", r"format_version='0.9' was written by a development version"),
        ("1.1", r"format_version='1.1' was written by a development version"),
        ("1.3", r"format_version='1.3' was written by a development version"),
        ("3.0", r"format_version='3.0' \(written by skae 9.0\).*Upgrade skae"),
    ],
)
def test_check_format_refuses_other_versions(version, match):
    with pytest.raises(ValueError, match=match):
        _format.check_format(_header(version), ESTIMATORS)


@pytest.mark.parametrize(
    "version, newer", [("2.0", False), ("2.1", True), ("2.10", True)]
)
def test_check_format_says_whether_a_minor_version_is_newer(version, newer):
    # A newer minor version loads, its unknown keys ignored with a warning.
    read = _format.check_format(_header(version), ESTIMATORS)
    assert read == tuple(int(part) for part in version.split("."))
    assert (read > _format.FORMAT_VERSION) is newer


def test_check_format_takes_the_estimators_it_is_given():
    header = _header("2.0", estimator="VariationalAutoencoderTransformer")
    assert _format.check_format(header, ESTIMATORS) == (2, 0)
    with pytest.raises(ValueError, match=r"estimator='Variational.*\['AutoencoderT"):
        _format.check_format(header, ["AutoencoderTransformer"])


def test_decode_params_refuses_or_records_unknown_parameters():
    doc = {"n_components": 3, "hidden_layer_sizes": {"__tuple__": [6]}, "zeta": 1}
    with pytest.raises(ValueError, match=r"unknown parameters \['zeta'\] for Autoenc"):
        _format.decode_params(doc, AutoencoderTransformer)
    ignored = []
    params = _format.decode_params(doc, AutoencoderTransformer, ignored)
    assert params == {"n_components": 3, "hidden_layer_sizes": (6,)}
    assert ignored == ["params.zeta"]


def test_int_checks():
    assert _format.positive_int({"n": 3}, "n") == 3
    with pytest.raises(ValueError, match="n must be >= 1; got 0"):
        _format.positive_int({"n": 0}, "n")
    with pytest.raises(ValueError, match="n must be an int >= 0; got True"):
        _format.non_negative_int({"n": True}, "n")
