"""Tied weights: shared matrices, parameter count, optimizer, monitor, copies."""

import copy
import pickle
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from skae import AutoencoderTransformer
from skae._nn.modules import Autoencoder, layer_parameter_groups
from skae._nn.tying import TiedLinear, mirrored_pairs
from tests.conftest import FAST

LAYOUTS = [
    {},
    {"residual": True},
    {"normalization": "batch"},
    {"residual": True, "normalization": "layer"},
]


def _pair(**params):
    kwargs = dict(hidden_layer_sizes=(8, 5), activation="tanh", random_state=0)
    kwargs.update(params)
    return (
        Autoencoder(10, 3, tied_weights=False, **kwargs),
        Autoencoder(10, 3, tied_weights=True, **kwargs),
    )


def _count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("params", LAYOUTS)
def test_parameter_count_falls_by_the_tied_matrices(params):
    untied, tied = _pair(**params)
    shared = sum(
        getattr(owner, attribute).weight.numel()
        for owner, attribute, _ in mirrored_pairs(untied.encoder, untied.decoder)
    )
    assert shared > 0
    assert _count(tied) == _count(untied) - shared
    # Every decoder matrix that remains is a residual projection without a
    # mirror: that of the first decoder block, when its widths differ.
    own = [m for m in tied.decoder.modules() if isinstance(m, nn.Linear)]
    assert own == ([tied.decoder.blocks[0].proj] if params.get("residual") else [])


@pytest.mark.parametrize("params", LAYOUTS)
def test_decoder_computes_with_the_transposed_encoder_weights(params):
    _, tied = _pair(**params)
    tied.eval()
    code = torch.randn(4, 3)
    # Rebuild the decoder's first layer by hand: code layer's weight, transposed.
    first = tied.decoder.blocks[0].linear
    torch.testing.assert_close(
        first(code), code @ tied.encoder.out.weight + first.bias, rtol=0, atol=0
    )
    out, source = tied.decoder.out, tied.encoder.blocks[0].linear.weight
    assert out.weight.data_ptr() == source.data_ptr()
    # Training the encoder's weight moves the decoder's output layer too.
    with torch.no_grad():
        source.add_(1.0)
    assert torch.equal(out.weight, source.t())


def test_state_dict_holds_each_matrix_once_with_the_decoder_biases():
    _, tied = _pair(residual=True)
    keys = set(tied.state_dict())
    assert "decoder.out.bias" in keys and "decoder.out.weight" not in keys
    assert "decoder.blocks.1.proj.weight" not in keys  # tied to encoder.blocks.1
    assert "decoder.blocks.0.proj.weight" in keys  # its mirror has no projection
    params = list(tied.parameters())
    assert len({id(p) for p in params}) == len(params)


@pytest.mark.parametrize(
    "make", [copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))]
)
def test_copies_stay_tied_to_their_own_encoder(make):
    _, tied = _pair(residual=True)
    twin = make(tied).double()
    assert twin.decoder.out.source is twin.encoder.blocks[0].linear
    assert twin.decoder.out.weight.dtype == torch.float64
    assert twin.decoder.out.weight.data_ptr() != tied.decoder.out.weight.data_ptr()


def test_monitor_groups_a_shared_weight_with_its_encoder_layer():
    _, tied = _pair()
    names, params, index = layer_parameter_groups(tied)
    assert len(params) == len({id(p) for p in params}) == len(list(tied.parameters()))
    layer_of = {id(p): names[i] for p, i in zip(params, index.tolist(), strict=True)}
    assert layer_of[id(tied.encoder.blocks[0].linear.weight)] == "encoder.0"
    assert layer_of[id(tied.decoder.out.bias)] == "decoder.output"
    assert isinstance(tied.decoder.out, TiedLinear)


def _fit(X, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return AutoencoderTransformer(3, **{**FAST, **params}).fit(X)


@pytest.mark.parametrize("params", LAYOUTS)
def test_tied_model_trains_and_its_optimizer_holds_each_weight_once(digits, params):
    est = _fit(digits, tied_weights=True, max_iter=5, **params)
    module, optimizer = est.net_.module_, est.net_.optimizer_
    in_optimizer = [p for g in optimizer.param_groups for p in g["params"]]
    assert len(in_optimizer) == len({id(p) for p in in_optimizer})
    assert {id(p) for p in in_optimizer} == {id(p) for p in module.parameters()}
    decayed = {
        id(p) for g in optimizer.param_groups if g.get("decay") for p in g["params"]
    }
    assert id(module.encoder.out.weight) in decayed
    assert id(module.decoder.blocks[0].linear.bias) not in decayed
    assert est.loss_curve_[-1] < est.loss_curve_[0]
    norms = est.history_[-1, "grad_norms"]
    assert all(np.isfinite(v) and v > 0 for v in norms.values())


def test_tied_model_has_fewer_parameters_than_the_untied_one(digits):
    # init="pca" ties P too: tests/test_anchor.py counts that layout.
    tied = _fit(digits, tied_weights=True, init="random").net_.module_
    untied = _fit(digits, init="random").net_.module_
    assert _count(tied) == _count(untied) - 64 * 8 - 8 * 3
