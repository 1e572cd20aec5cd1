"""init="pca": the model starts at PCA's solution and never ends worse than it."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.datasets import load_wine
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

from skae import AutoencoderTransformer, VariationalAutoencoderTransformer
from skae._checks import check_input
from skae._data.rows import load_rows
from skae._data.scaling import Scaling
from skae._nn.layers import ACTIVATIONS
from skae._nn.modules import Autoencoder
from skae._training.start import anchor_to_pca, pca_of_rows


def _pca_error(X_fit, X_test, k):
    pca = PCA(k).fit(X_fit)
    return np.mean((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2)


@pytest.fixture(scope="module")
def wine():
    """Raw wine: the proline column dominates, and PCA(2) leaves ~1e-4 of the
    variance, the hardest case for reproducing PCA in float32."""
    X = load_wine().data
    return X[:130], X[130:]


def _untrained(X, k, dtype=np.float64, **params):
    """Fit at a learning rate that leaves the weights where they started."""
    return AutoencoderTransformer(
        k, learning_rate_init=1e-12, max_iter=1, random_state=0, **params
    ).fit(X.astype(dtype))


# Every hidden activation, residual blocks, both normalizations, dropout and
# no hidden layer at all.
STRUCTURES = [
    *({"activation": a} for a in sorted(ACTIVATIONS)),
    {"residual": True, "normalization": "batch", "dropout": 0.3},
    {"normalization": "layer", "hidden_layer_sizes": (16, 8)},
    {"residual": True, "activation": "tanh", "hidden_layer_sizes": (8, 8, 8)},
    {"hidden_layer_sizes": ()},
]


@pytest.mark.parametrize("params", STRUCTURES, ids=str)
def test_held_out_error_starts_at_pcas(wine, params):
    X_fit, X_test = wine
    ae = _untrained(X_fit, 2, **{"hidden_layer_sizes": (16,), **params})
    expected = _pca_error(X_fit, X_test, 2)
    assert -ae.score(X_test) == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "params", [{"early_stopping": True}, {"early_stopping": False, "scaling": None}]
)
def test_codes_and_reconstructions_are_pcas(digits, dtype, params):
    X = digits.astype(dtype)
    ae = _untrained(X, 5, dtype, **params)
    pca = PCA(5).fit(digits)
    # The PCA of the scaled rows passed to fit, validation rows included:
    # the same components as PCA of X ("global" scaling is one factor; with
    # scaling=None the rows are not centred, and the PCA layers' biases are).
    codes = ae.transform(X).astype(np.float64) * ae.scale_[0]
    np.testing.assert_allclose(codes, pca.transform(digits), rtol=1e-4, atol=2e-3)
    X_hat = ae.inverse_transform(ae.transform(X))
    expected = pca.inverse_transform(pca.transform(digits))
    np.testing.assert_allclose(X_hat, expected, rtol=1e-4, atol=2e-3)


def test_module_is_pca_before_any_step(digits):
    scaling = Scaling("global")
    rows = load_rows(digits, scaling, torch.device("cpu"))  # fits the scaling
    module = Autoencoder(64, 3, (32, 16), init="pca", dropout=0.5, random_state=0)
    anchor_to_pca(module, rows)
    pca = PCA(3).fit(scaling.transform(digits))
    x = rows.preloaded()
    module.train()  # dropout on: the stacks' zero output layers still add 0
    with torch.no_grad():
        z, x_hat = module.encoder(x), module(x)
    np.testing.assert_allclose(z.numpy(), pca.transform(x.double().numpy()), atol=1e-5)
    expected = pca.inverse_transform(pca.transform(x.double().numpy()))
    np.testing.assert_allclose(x_hat.numpy(), expected, atol=1e-5)


def test_a_k_sparse_code_starts_at_pca_with_each_rows_largest_coordinates(digits):
    # PCA's coordinates are orthonormal: dropping a row's smallest ones is
    # the best k-entry reconstruction PCA's components give.
    X = digits.astype(np.float32)
    ae = _untrained(X, 5, np.float32, n_nonzero_coefs=2, hidden_layer_sizes=(16,))
    pca = PCA(5).fit(digits)
    coords = pca.transform(digits)
    kept = np.argsort(-np.abs(coords), axis=1)[:, :2]
    sparse = np.zeros_like(coords)
    np.put_along_axis(sparse, kept, np.take_along_axis(coords, kept, 1), axis=1)
    Z = ae.transform(X).astype(np.float64) * ae.scale_[0]
    np.testing.assert_allclose(Z, sparse, rtol=1e-4, atol=2e-3)
    X_hat = ae.inverse_transform(ae.transform(X))
    expected = pca.inverse_transform(sparse)
    np.testing.assert_allclose(X_hat, expected, rtol=1e-4, atol=2e-3)


def test_memory_mapped_and_sparse_rows_get_the_same_anchor(digits, tmp_path):
    X = np.lib.format.open_memmap(
        tmp_path / "X.npy", mode="w+", dtype=np.float64, shape=digits.shape
    )
    X[:] = digits
    X.flush()
    mapped, sparse, in_memory = (
        _untrained(data, 4, early_stopping=False)
        for data in (X, sp.csr_matrix(digits), digits)
    )
    # Read batch by batch or preloaded, the covariance is summed over the
    # same chunks: the same anchor, bit for bit.
    for name in ("encoder", "decoder"):
        b = getattr(in_memory.net_.module_, name)
        for model in (mapped, sparse):
            a = getattr(model.net_.module_, name)
            assert torch.equal(a.pca.weight, b.pca.weight)
            assert torch.equal(a.out.bias, b.out.bias)  # -P m, or m
    assert -mapped.score(digits) == pytest.approx(
        _pca_error(digits, digits, 4), rel=1e-4
    )


@pytest.mark.parametrize(
    "params, what",
    [
        ({"output_activation": "sigmoid"}, "output_activation='sigmoid'"),
        ({"output_activation": "relu"}, "output_activation='relu'"),
        ({"loss": "bce", "scaling": None}, r"loss='bce' \(a sigmoid output\)"),
    ],
)
def test_an_output_that_cannot_be_pcas_is_refused(digits, params, what):
    ae = AutoencoderTransformer(2, init="pca", max_iter=1, **params)
    with pytest.raises(ValueError, match=rf"init='pca'.*{what}.*init='auto'"):
        ae.fit(digits / 16)
    assert not hasattr(ae, "net_")
    # The default trains them from a random start.
    ae.set_params(init="auto").fit(digits / 16)
    assert ae.init_ == "random" and ae.net_.module_.encoder.pca is None


@pytest.mark.parametrize(
    "cls, params, start",
    [
        (AutoencoderTransformer, {}, "pca"),
        (AutoencoderTransformer, {"tied_weights": True, "residual": True}, "pca"),
        (AutoencoderTransformer, {"loss": "bce", "scaling": None}, "random"),
        (AutoencoderTransformer, {"output_activation": "sigmoid"}, "random"),
        (AutoencoderTransformer, {"output_activation": "tanh"}, "random"),
        (
            AutoencoderTransformer,
            {"tied_weights": True, "activation": "logistic"},
            "random",
        ),
        (
            AutoencoderTransformer,
            {"tied_weights": True, "residual": True, "hidden_layer_sizes": (2,)},
            "random",
        ),
        (VariationalAutoencoderTransformer, {}, "random"),
    ],
)
def test_the_default_init_starts_at_pca_where_it_can_and_trains_everywhere(
    digits, cls, params, start
):
    X = digits / 16  # in [0, 1], for loss="bce" too
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = cls(2, hidden_layer_sizes=(8,), max_iter=2, random_state=0)
        est.set_params(**params).fit(X)
    assert est.init_ == start
    assert (est.net_.module_.encoder.pca is not None) == (start == "pca")
    if start == "pca":  # the start itself: PCA's reconstruction
        est.set_params(max_iter=1, learning_rate_init=1e-12).fit(X)
        assert -est.score(X) == pytest.approx(_pca_error(X, X, 2), rel=1e-4)


def test_partial_fit_starts_at_the_pca_of_the_first_chunk(digits):
    first, second = digits[:150], digits[150:]
    ae = AutoencoderTransformer(4, learning_rate_init=1e-12, random_state=0)
    ae.partial_fit(first)
    assert -ae.score(digits) == pytest.approx(_pca_error(first, digits, 4), rel=1e-4)
    before = ae.net_.module_.encoder.pca.weight.detach().clone()
    ae.partial_fit(second)  # goes on from there: no new anchor
    torch.testing.assert_close(
        ae.net_.module_.encoder.pca.weight.detach(), before, atol=1e-8, rtol=0
    )


def test_alpha_leaves_the_encoders_hidden_layers_alone_with_init_pca(digits):
    # They get no gradient before the encoder's output layer, which starts at
    # zero, has moved; decayed meanwhile, Adam's normalized step would shrink
    # them to nothing.
    ae = AutoencoderTransformer(2, hidden_layer_sizes=(8, 4), max_iter=1).fit(digits)
    module, optimizer = ae.net_.module_, ae.net_.optimizer_
    decay = {
        id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]
    }
    hidden = {id(p) for p in module.encoder.blocks.parameters()}
    decayed = [m.weight for m in module.modules() if isinstance(m, torch.nn.Linear)]
    assert all(decay[pid] == 0.0 for pid in hidden)
    n_train = len(digits) - int(np.ceil(0.1 * len(digits)))
    for weight in decayed:
        if id(weight) not in hidden:
            assert decay[id(weight)] == pytest.approx(1.0 / n_train)


TIED = [
    {},
    {"activation": "tanh", "hidden_layer_sizes": (16, 8)},
    {"normalization": "batch", "dropout": 0.3},
    {"normalization": "layer"},
    {"residual": True, "normalization": "batch"},
    {"hidden_layer_sizes": ()},
]


@pytest.mark.parametrize("params", TIED, ids=str)
def test_tied_weights_start_at_pca_and_share_p(wine, params):
    X_fit, X_test = wine
    params = {"hidden_layer_sizes": (16,), **params}
    ae = _untrained(X_fit, 2, tied_weights=True, **params)
    assert -ae.score(X_test) == pytest.approx(_pca_error(X_fit, X_test, 2), rel=1e-4)
    module = ae.net_.module_
    # The decoder's P^T is the encoder's P: one parameter, trained once.
    assert module.decoder.pca.source is module.encoder.pca
    untied = AutoencoderTransformer(2, max_iter=1, random_state=0, **params)
    untied.fit(X_fit)
    n_params = sum(p.numel() for p in module.parameters())
    n_untied = sum(p.numel() for p in untied.net_.module_.parameters())
    tied_away = sum(w.numel() for w in untied.net_.module_.decoder.parameters())
    assert n_params < n_untied and n_untied - n_params < tied_away


@pytest.mark.parametrize(
    "params, what",
    [
        ({"residual": True, "hidden_layer_sizes": (2,)}, "residual=True"),
        ({"activation": "sigmoid"}, "sigmoid"),
    ],
)
def test_tied_weights_that_cannot_start_at_pca_are_refused(digits, params, what):
    ae = AutoencoderTransformer(2, tied_weights=True, max_iter=1, init="pca", **params)
    with pytest.raises(ValueError, match=rf"init='pca'.*tied_weights=True.*{what}"):
        ae.fit(digits)
    assert not hasattr(ae, "net_")
    ae.set_params(init="auto").fit(digits)  # tied from random weights
    assert ae.init_ == "random"


def test_covariance_anchor_holds_one_square_matrix():
    # The Gram matrix is updated in place and only the leading eigenvectors
    # are computed: beyond a chunk of rows (torch memory, not traced here),
    # about one n_features x n_features float64 matrix, not five.
    import tracemalloc

    p = 1000
    matrix = sp.random(2000, p, density=0.02, format="csr", random_state=0)
    scales = np.ones(p)
    scales[:3] = [8.0, 4.0, 2.0]  # three well-separated leading variances
    matrix = (matrix @ sp.diags(scales)).tocsr()
    X = check_input(AutoencoderTransformer(), matrix, reset=True)
    rows = load_rows(X, Scaling("global"), torch.device("cpu"))
    tracemalloc.start()
    try:
        _, components = pca_of_rows(rows, 3, random_state=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * p * p * 8
    dense = matrix.toarray()
    # The exact solver: "auto" picks the randomized one here, unseeded.
    pca = PCA(3, svd_solver="full").fit(Scaling("global").fit(dense).transform(dense))
    overlap = np.abs(components @ pca.components_.T)
    np.testing.assert_allclose(overlap, np.eye(3), atol=1e-4)  # float32 rows
