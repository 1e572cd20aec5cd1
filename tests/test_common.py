"""scikit-learn's estimator checks, run on a fast configuration."""

import pytest
from sklearn.utils.estimator_checks import (
    check_dataframe_column_names_consistency,
    check_get_feature_names_out_error,
    check_param_validation,
    check_set_output_transform,
    check_set_output_transform_pandas,
    check_transformer_get_feature_names_out,
    check_transformer_get_feature_names_out_pandas,
    parametrize_with_checks,
)

from skae import AutoencoderTransformer, VariationalAutoencoderTransformer

ESTIMATORS = [AutoencoderTransformer, VariationalAutoencoderTransformer]


def _fast(cls=AutoencoderTransformer):
    return cls(n_components=1, hidden_layer_sizes=(4,), max_iter=3, batch_size=32)


@parametrize_with_checks(
    [_fast(cls) for cls in ESTIMATORS], expected_failed_checks=lambda est: {}
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize(
    "check",
    [
        check_set_output_transform,
        check_set_output_transform_pandas,
        check_transformer_get_feature_names_out,
        check_transformer_get_feature_names_out_pandas,
        check_get_feature_names_out_error,
        check_dataframe_column_names_consistency,
        check_param_validation,
    ],
)
def test_sklearn_suite_checks(check, cls):
    pytest.importorskip("pandas")
    check(cls.__name__, _fast(cls))
