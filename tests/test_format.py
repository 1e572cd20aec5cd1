"""The persistence file format: JSON values and their checks."""

import numpy as np
import pytest

from skae import _format


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


@pytest.mark.parametrize(
    "version, match",
    [
        ("one", r"format_version='one' is not 'major.minor'"),
        ("0.9", r"unsupported format_version='0.9'"),
        ("2.0", r"Upgrade skae"),
    ],
)
def test_check_format_versions(version, match):
    doc = {
        "format": "skae",
        "estimator": "AutoencoderTransformer",
        "format_version": version,
        "versions": {"skae": "9.0"},
    }
    with pytest.raises(ValueError, match=match):
        _format.check_format(doc)


def test_int_checks():
    assert _format.positive_int({"n": 3}, "n") == 3
    with pytest.raises(ValueError, match="n must be >= 1; got 0"):
        _format.positive_int({"n": 0}, "n")
    with pytest.raises(ValueError, match="n must be an int >= 0; got True"):
        _format.non_negative_int({"n": True}, "n")
