"""init="pca": the model starts at PCA's solution and never ends worse than it."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_wine
from sklearn.decomposition import PCA

from skae import AutoencoderTransformer
from skae._anchor import anchor_to_pca
from skae._data import prepare_rows
from skae._modules import ACTIVATIONS, Autoencoder
from skae._scaling import Scaling


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
    scaling = Scaling("global").fit(digits)
    rows = prepare_rows(digits, scaling, torch.device("cpu"))
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


def test_memory_mapped_rows_get_the_same_anchor(digits, tmp_path):
    X = np.lib.format.open_memmap(
        tmp_path / "X.npy", mode="w+", dtype=np.float64, shape=digits.shape
    )
    X[:] = digits
    X.flush()
    mapped, in_memory = (
        _untrained(data, 4, early_stopping=False) for data in (X, digits)
    )
    for name in ("encoder", "decoder"):
        a = getattr(mapped.net_.module_, name).pca.weight.detach()
        b = getattr(in_memory.net_.module_, name).pca.weight.detach()
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
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
    with pytest.raises(ValueError, match=rf"init='pca'.*{what}.*'identity'"):
        ae.fit(digits / 16)
    assert not hasattr(ae, "net_")
    # Another init trains them.
    ae.set_params(init="auto").fit(digits / 16)


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
