"""VariationalAutoencoderTransformer: posterior, KL term, sampling, ELBO."""

import copy
import math
import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from skae import VariationalAutoencoderTransformer
from skae._nn.variational import VariationalAutoencoder, kl_divergence
from skae._training.objective import Objective
from tests.conftest import FAST, run_in_threads
from tests.test_determinism import _assert_states_equal, _global_states


def _fit(X, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return VariationalAutoencoderTransformer(2, **{**FAST, **params}).fit(X)


@pytest.fixture(scope="module")
def vae(digits):
    return _fit(digits, max_iter=10)


def test_transform_is_the_posterior_mean_and_deterministic(vae, digits):
    module = vae.net_.module_
    u = torch.as_tensor((digits - vae.mean_) / vae.scale_, dtype=torch.float32)
    with torch.no_grad():
        mean, log_var = module.posterior(u)
    Z = vae.transform(digits.astype(np.float32))
    assert_allclose(Z, mean.numpy(), rtol=1e-5, atol=1e-5)
    assert np.array_equal(vae.transform(digits), vae.transform(digits))
    assert not np.allclose(log_var.numpy(), 0)  # the variance head learned


def test_score_samples_is_minus_the_error_of_the_posterior_mean(vae, digits):
    X_hat = vae.inverse_transform(vae.transform(digits))
    expected = np.mean((digits - X_hat) ** 2, axis=1)
    assert_allclose(vae.reconstruction_error(digits), expected, rtol=1e-9)
    assert np.array_equal(vae.score_samples(digits), -vae.reconstruction_error(digits))


def test_training_decodes_draws_and_eval_decodes_the_mean():
    module = VariationalAutoencoder(6, 2, (5,), random_state=0)
    x = torch.rand(8, 6)
    module.eval()
    mean_logits = module.parts(x).logits
    assert torch.equal(mean_logits, module.decoder.pre_activation(module.encoder(x)))
    module.train()
    drawn = module.parts(x).logits
    assert not torch.allclose(drawn, mean_logits)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        expected = torch.rand(2)
        torch.manual_seed(0)
        module.parts(x)  # draws from the module's generator only
        assert torch.equal(torch.rand(2), expected)


def test_kl_is_that_of_torch_distributions_weighed_by_beta_over_features():
    mean, log_var = torch.randn(10, 3), torch.randn(10, 3)
    reference = torch.distributions.kl_divergence(
        torch.distributions.Normal(mean, torch.exp(0.5 * log_var)),
        torch.distributions.Normal(0.0, 1.0),
    )
    torch.testing.assert_close(kl_divergence(mean, log_var), reference)
    module = VariationalAutoencoder(6, 3, (5,), random_state=0).train()
    x = torch.rand(10, 6)
    output = module.parts(x)
    loss, values = Objective(beta=2.0)(x, output, module, training=True)
    expected = 2.0 * kl_divergence(output.code, output.log_var).sum(dim=1).mean() / 6
    torch.testing.assert_close(values["kl"], expected)
    torch.testing.assert_close(loss, values["reconstruction"] + expected)


def test_larger_beta_pulls_posteriors_towards_the_prior(digits):
    # Without early stopping the last epoch's KL is the fitted model's.
    loose = _fit(digits, beta=0.01, max_iter=10, early_stopping=False)
    tight = _fit(digits, beta=1.0, max_iter=10, early_stopping=False)
    kl_loose = loose.history_[-1, "train_kl"] / 0.01
    kl_tight = tight.history_[-1, "train_kl"] / 1.0
    assert kl_tight < 0.5 * kl_loose
    assert tight.score(digits) < loose.score(digits)  # blurrier


def test_sample_draws_rows_in_input_units():
    rng = np.random.RandomState(0)
    X = 1000.0 + 50.0 * rng.normal(size=(200, 6))
    est = _fit(X, max_iter=20)
    samples = est.sample(500, random_state=0)
    assert samples.shape == (500, 6) and samples.dtype == np.float64
    assert np.all(np.abs(samples.mean(axis=0) - 1000.0) < 25.0)
    assert np.array_equal(samples, est.sample(500, random_state=0))
    assert not np.array_equal(samples, est.sample(500, random_state=1))


def test_sample_and_elbo_leave_the_models_generator_alone(vae, digits):
    generator = vae.net_.module_.random.get(torch.device("cpu"))
    before = generator.get_state()
    global_before = _global_states()
    vae.sample(5)
    vae.elbo(digits[:5])
    assert torch.equal(generator.get_state(), before)
    _assert_states_equal(global_before, _global_states())


def test_elbo_of_a_linear_model_matches_its_closed_form():
    # A linear Gaussian decoder: E_q ||u - W z - b||^2 is known exactly.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(100, 4)) @ rng.normal(size=(4, 4)) + 3.0
    est = _fit(X, hidden_layer_sizes=(), activation="identity", max_iter=20)
    module = copy.deepcopy(est.net_.module_).double().eval()
    u = torch.as_tensor((X[:10] - est.mean_) / est.scale_)
    with torch.no_grad():
        mean, log_var = module.posterior(u)
        W, b = module.decoder.out.weight, module.decoder.out.bias
        error = (u - mean @ W.T - b).square().sum(dim=1)
        error += (W.square().sum(dim=0) * log_var.exp()).sum(dim=1)
        kl = kl_divergence(mean, log_var).sum(dim=1)
    closed = -error - 2 * math.log(math.pi) - kl - np.log(est.scale_).sum()
    estimate = est.elbo(X[:10], n_draws=20000, random_state=0)
    assert_allclose(estimate, closed.numpy(), rtol=5e-3)


def test_elbo_follows_weights_changed_in_place(digits):
    # No float64 copy outlives a call: after a change of the fitted weights
    # (here, in PyTorch after fit) the ELBO is that of the changed model, as
    # computed by a model that never ran before.
    vae = _fit(digits)
    twin = copy.deepcopy(vae)
    X = digits[:20]
    before = vae.elbo(X, random_state=0)
    with torch.no_grad():
        for module in (vae.net_.module_, twin.net_.module_):
            module.decoder.out.weight.mul_(2.0)
    after = vae.elbo(X, random_state=0)
    assert np.all(np.abs(after - before) > 1e-3 * np.abs(before))
    np.testing.assert_array_equal(after, twin.elbo(X, random_state=0))


def test_elbo_from_many_threads_at_once(vae, digits):
    # Each call makes its own float64 copy: concurrent calls on one model all
    # give the serial result.
    X = digits[:100]
    expected = vae.elbo(X, random_state=0)
    calls = [(None, lambda: vae.elbo(X, random_state=0))] * 4
    for _, elbo in run_in_threads(calls, repeat=5):
        np.testing.assert_array_equal(elbo, expected)


def test_elbo_ranks_outliers_below_training_rows(vae, digits):
    outliers = digits[:20] + 8.0 * np.random.RandomState(0).normal(size=(20, 64))
    assert vae.elbo(outliers, random_state=0).max() < (
        vae.elbo(digits[:20], random_state=0).min()
    )


def test_log_variance_head_is_monitored(vae):
    assert "encoder.log_var" in vae.history_[-1, "grad_norms"]


def test_bad_input_is_refused(vae):
    with pytest.raises(NotFittedError):
        VariationalAutoencoderTransformer().sample(3)
    for n in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n_samples must be a positive integer"):
            vae.sample(n)
    with pytest.raises(ValueError, match="n_draws must be a positive integer"):
        vae.elbo(np.zeros((2, 64)), n_draws=0)
    with pytest.raises(ValueError, match="X has 3 features.*expecting 64"):
        vae.elbo(np.zeros((2, 3)))
    for bad in (np.nan, np.inf):
        X = np.zeros((2, 64))
        X[1, 5] = bad
        with pytest.raises(ValueError, match="Input X contains (NaN|infinity)"):
            vae.elbo(X)
    with pytest.raises(InvalidParameterError, match=r"'beta' parameter .*\[0"):
        VariationalAutoencoderTransformer(beta=-1.0).fit(np.zeros((4, 3)))


def test_init_pca_is_refused_before_training(digits):
    vae = VariationalAutoencoderTransformer(2, init="pca", max_iter=1)
    with pytest.raises(ValueError, match="init='pca'.*Variational.*posterior"):
        vae.fit(digits)
    assert not hasattr(vae, "net_")


def test_elbo_of_sparse_and_out_of_core_rows_is_that_of_the_dense_rows(vae, digits):
    # The inputs transform takes, read a batch at a time.
    import scipy.sparse as sp

    X = digits[:50]
    expected = vae.elbo(X, random_state=0)
    for rows in (sp.csr_matrix(X), sp.csc_array(X), X.astype(np.float32)):
        np.testing.assert_array_equal(vae.elbo(rows, random_state=0), expected)
    dask_array = pytest.importorskip("dask.array")
    rows = dask_array.from_array(X, chunks=(16, 64))
    np.testing.assert_array_equal(vae.elbo(rows, random_state=0), expected)
