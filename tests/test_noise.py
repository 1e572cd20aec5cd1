"""Denoising: the corruption layer, and what training with it sees."""

import warnings

import numpy as np
import pytest
import torch

from skae import AutoencoderTransformer
from skae._nn.layers import RandomSource
from skae._nn.modules import Autoencoder
from skae._nn.noise import Corruption
from tests.conftest import FAST


def _corruption(kind, level, seed=0):
    return Corruption(kind, level, RandomSource(seed))


def test_gaussian_noise_has_the_standard_deviation_asked():
    x = torch.zeros(200, 100)
    noisy = _corruption("gaussian", 0.3).train()(x)
    assert noisy.std().item() == pytest.approx(0.3, rel=0.02)
    assert noisy.mean().item() == pytest.approx(0.0, abs=0.01)


def test_mask_noise_drops_the_share_asked_and_keeps_the_rest():
    x = torch.rand(200, 100) + 1.0
    noisy = _corruption("mask", 0.25).train()(x)
    dropped = noisy == 0
    assert dropped.float().mean().item() == pytest.approx(0.25, abs=0.01)
    assert torch.equal(noisy[~dropped], x[~dropped])  # no rescaling


@pytest.mark.parametrize("kind", ["gaussian", "mask"])
def test_eval_mode_is_the_identity(kind):
    x = torch.rand(10, 4)
    assert _corruption(kind, 0.5).eval()(x) is x


def test_draws_come_from_the_source_not_the_global_generator():
    x = torch.zeros(5, 5)
    a = _corruption("gaussian", 1.0, seed=3).train()
    b = _corruption("gaussian", 1.0, seed=3).train()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        first = a(x)
        torch.manual_seed(1)
        assert torch.equal(b(x), first)  # the global seed plays no part
        expected = torch.rand(2)
        torch.manual_seed(1)
        b(x)
        torch.manual_seed(1)
        assert torch.equal(torch.rand(2), expected)  # nor does it move
    assert not torch.equal(a(x), first)  # a fresh draw each batch


def test_module_corrupts_the_encoder_input_in_training_only():
    module = Autoencoder(6, 2, (4,), noise="mask", noise_level=0.5, random_state=0)
    x = torch.rand(8, 6) + 1.0
    module.train()
    assert (module.corrupt(x) == 0).any()
    module.eval()
    assert module.corrupt(x) is x
    assert torch.equal(module(x), module.decoder(module.encoder(x)))


def _noisy_fit(X, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return AutoencoderTransformer(2, **{**FAST, **params}).fit(X)


def test_training_sees_noise_validation_and_transform_do_not(digits):
    # Noise of std 100 (standardized units) makes the training reconstruction
    # huge; the validation loss, computed on clean rows, stays of order 1.
    est = _noisy_fit(
        digits, noise="gaussian", noise_level=100.0, early_stopping=True, max_iter=1
    )
    (row,) = est.history_
    assert row["train_reconstruction"] > 100
    assert row["valid_loss"] < 10
    # transform and the scores are deterministic: clean input.
    assert np.array_equal(est.transform(digits), est.transform(digits))
    assert np.array_equal(est.score_samples(digits), est.score_samples(digits))


@pytest.mark.parametrize("noise", ["gaussian", "mask"])
def test_noise_is_reproducible_from_random_state(digits, noise):
    a = _noisy_fit(digits, noise=noise, noise_level=0.5)
    b = _noisy_fit(digits, noise=noise, noise_level=0.5)
    plain = _noisy_fit(digits)
    other = _noisy_fit(digits, noise=noise, noise_level=0.5, random_state=1)
    assert np.array_equal(a.transform(digits), b.transform(digits))
    assert not np.allclose(a.transform(digits), plain.transform(digits))
    assert not np.allclose(a.transform(digits), other.transform(digits))
