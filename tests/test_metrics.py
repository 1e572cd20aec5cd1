"""skae.metrics: one reconstruction scale for PCA, KernelPCA and autoencoders."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.decomposition import PCA, KernelPCA, TruncatedSVD
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

from skae import AutoencoderTransformer
from skae.metrics import neg_reconstruction_error
from tests.conftest import FAST, PLAIN

RNG = np.random.RandomState(0)
T = RNG.uniform(-2, 2, 200)
#: A parabola: one nonlinear degree of freedom that PCA(1) cannot follow.
PARABOLA = np.c_[T, T**2]


def _manual(estimator, X):
    X_hat = estimator.inverse_transform(estimator.transform(X))
    return -np.mean((X - X_hat) ** 2)


def test_pca_score_is_minus_its_mean_squared_error(low_rank):
    pca = PCA(3).fit(low_rank)
    assert neg_reconstruction_error(pca, low_rank) == pytest.approx(
        _manual(pca, low_rank), rel=1e-12
    )
    assert neg_reconstruction_error(PCA(10).fit(low_rank), low_rank) == (
        pytest.approx(0.0, abs=1e-20)
    )


def test_skae_score_equals_its_own_score(digits):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ae = AutoencoderTransformer(4, **FAST).fit(digits)
    assert neg_reconstruction_error(ae, digits) == pytest.approx(
        ae.score(digits), rel=1e-6
    )
    assert neg_reconstruction_error(ae, digits.astype(np.float32)) == pytest.approx(
        ae.score(digits), rel=1e-5
    )


def test_kernel_pca_and_pipelines_and_sparse_input(low_rank):
    kpca = KernelPCA(3, kernel="rbf", fit_inverse_transform=True).fit(low_rank)
    assert neg_reconstruction_error(kpca, low_rank) == pytest.approx(
        _manual(kpca, low_rank), rel=1e-12
    )
    pipe = make_pipeline(StandardScaler(), PCA(3)).fit(low_rank)
    assert neg_reconstruction_error(pipe, low_rank) == pytest.approx(
        _manual(pipe, low_rank), rel=1e-12
    )
    X = sp.random(50, 8, density=0.3, format="csr", random_state=0)
    svd = TruncatedSVD(3, random_state=0).fit(X)
    assert neg_reconstruction_error(svd, X) == pytest.approx(
        _manual(svd, X.toarray()), rel=1e-12
    )


def test_transformers_without_an_inverse_are_refused(low_rank):
    poly = PolynomialFeatures().fit(low_rank)
    with pytest.raises(TypeError, match="PolynomialFeatures has no inverse_transform"):
        neg_reconstruction_error(poly, low_rank)


def test_cross_validate_accepts_it_as_scoring(low_rank):
    scores = cross_validate(PCA(2), low_rank, scoring=neg_reconstruction_error, cv=3)[
        "test_score"
    ]
    assert scores.shape == (3,) and np.all(scores < 0)


def test_a_search_chooses_between_pca_and_an_autoencoder():
    ae = AutoencoderTransformer(
        1,
        hidden_layer_sizes=(32,),
        activation="tanh",
        max_iter=30,
        batch_size=100,
        learning_rate_init=0.05,
        alpha=0.0,
        # From PCA's solution the code stays PCA's (mostly t**2, which loses
        # t's sign): only a random start (PLAIN) finds the bend.
        random_state=0,
        **PLAIN,
    )
    search = GridSearchCV(
        Pipeline([("reduce", PCA())]),
        {"reduce": [PCA(1), ae]},
        scoring=neg_reconstruction_error,
        cv=2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search.fit(PARABOLA)
    pca_score, ae_score = search.cv_results_["mean_test_score"]
    assert isinstance(search.best_params_["reduce"], AutoencoderTransformer)
    assert ae_score > pca_score / 4  # PCA(1) misses the parabola's bend
    # On linear data the same search prefers PCA, which is exact there.
    line = np.c_[T, 2 * T + 1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search.fit(line)
    assert isinstance(search.best_params_["reduce"], PCA)
