"""The nn.Modules: stacks, blocks, residual paths, normalization, init."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from skae._nn.layers import ACTIVATIONS, BatchNorm1d, Dropout, LayerNorm, TopK
from skae._nn.modules import Autoencoder, Block, layer_parameter_groups


def test_mirrored_architecture_and_layer_names():
    ae = Autoencoder(10, 3, (16, 8), activation="tanh")
    names = [name for name, _ in ae.named_layers()]
    assert names == [
        "encoder.0",
        "encoder.1",
        "encoder.code",
        "decoder.0",
        "decoder.1",
        "decoder.output",
    ]
    widths = [m.weight.shape for m in ae.modules() if isinstance(m, nn.Linear)]
    assert widths == [(16, 10), (8, 16), (3, 8), (8, 3), (16, 8), (10, 16)]
    assert ae(torch.zeros(5, 10)).shape == (5, 10)
    assert ae.encoder(torch.zeros(5, 10)).shape == (5, 3)


def test_no_hidden_layers_is_a_linear_pair():
    ae = Autoencoder(6, 2, (), activation="identity")
    assert len(ae.encoder.blocks) == 0 and len(ae.decoder.blocks) == 0
    x = torch.randn(4, 6)
    W1, b1 = ae.encoder.out.weight, ae.encoder.out.bias
    W2, b2 = ae.decoder.out.weight, ae.decoder.out.bias
    expected = (x @ W1.T + b1) @ W2.T + b2
    torch.testing.assert_close(ae(x), expected)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_builds_and_runs(activation):
    ae = Autoencoder(5, 2, (4,), activation=activation)
    assert isinstance(ae.encoder.blocks[0].activation, ACTIVATIONS[activation])
    assert torch.isfinite(ae(torch.randn(3, 5))).all()


def test_top_k_keeps_each_rows_largest_magnitudes_and_their_gradients():
    z = torch.tensor([[0.5, -3.0, 1.0, 2.0], [4.0, 0.1, -0.2, 0.3]], requires_grad=True)
    out = TopK(2)(z)
    expected = torch.tensor([[0.0, -3.0, 0.0, 2.0], [4.0, 0.0, 0.0, 0.3]])
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    out.sum().backward()
    torch.testing.assert_close(z.grad, (expected != 0).float(), rtol=0, atol=0)


def test_the_code_is_k_sparse_only_with_n_nonzero_coefs():
    x = torch.randn(16, 6, generator=torch.Generator().manual_seed(0))
    dense = Autoencoder(6, 4, (8,), random_state=0)
    sparse = Autoencoder(6, 4, (8,), n_nonzero_coefs=1, random_state=0)
    assert isinstance(dense.encoder.out_activation, nn.Identity)
    with torch.no_grad():
        z, z_sparse = dense.encoder(x), sparse.encoder(x)
    # The same weights; each row keeps its largest-magnitude entry, signed.
    rows = torch.arange(len(x))
    top = z.abs().argmax(dim=1)
    assert torch.equal((z_sparse != 0).sum(dim=1), torch.ones(len(x), dtype=int))
    torch.testing.assert_close(z_sparse[rows, top], z[rows, top], rtol=0, atol=0)
    assert (z_sparse < 0).any()


def test_deep_stack_of_20_layers_runs_and_backpropagates():
    ae = Autoencoder(8, 2, (16,) * 20, activation="relu", residual=True)
    x = torch.randn(32, 8)
    loss = ((ae(x) - x) ** 2).mean()
    loss.backward()
    assert len(ae.encoder.blocks) == 20 and len(ae.decoder.blocks) == 20
    assert ae.encoder.blocks[0].linear.weight.grad.abs().sum() > 0


def test_residual_block_adds_the_input_or_its_projection():
    torch.manual_seed(0)
    same = Block(4, 4, activation="relu", residual=True)
    assert same.proj is None
    x = torch.randn(3, 4)
    torch.testing.assert_close(same(x), x + same.linear(torch.relu(x)))
    wider = Block(4, 6, activation="relu", residual=True)
    assert wider.proj is not None and wider.proj.bias is None
    torch.testing.assert_close(wider(x), wider.proj(x) + wider.linear(torch.relu(x)))


def test_plain_block_order_linear_norm_activation_dropout():
    block = Block(4, 3, activation="tanh", normalization="layer", dropout=0.5)
    block.eval()
    x = torch.randn(5, 4)
    expected = torch.tanh(F.layer_norm(block.linear(x), (3,), eps=1e-5))
    torch.testing.assert_close(block(x), expected)
    block.train()  # dropout after the activation: whole units zeroed or doubled
    y, z = block(x), torch.tanh(F.layer_norm(block.linear(x), (3,), eps=1e-5))
    kept = y != 0
    torch.testing.assert_close(y[kept], 2 * z[kept])
    assert 0 < kept.float().mean() < 1


@pytest.mark.parametrize(
    "normalization, cls", [("batch", nn.BatchNorm1d), ("layer", nn.LayerNorm)]
)
def test_normalization_layers(normalization, cls):
    ae = Autoencoder(6, 2, (8, 4), normalization=normalization)
    norms = [m for m in ae.modules() if isinstance(m, cls)]
    assert len(norms) == 4


def test_dropout_only_in_training_mode():
    ae = Autoencoder(6, 2, (32,), dropout=0.5)
    x = torch.randn(8, 6)
    ae.eval()
    torch.testing.assert_close(ae(x), ae(x))
    ae.train()
    assert not torch.equal(ae(x), ae(x))


def test_auto_init_matches_activation():
    torch.manual_seed(0)
    fan_in = 400
    relu = Block(fan_in, 400, activation="relu").linear.weight
    tanh = Block(fan_in, 400, activation="tanh").linear.weight
    selu = Block(fan_in, 400, activation="selu").linear.weight
    # Kaiming: std sqrt(2 / fan_in); Xavier with tanh gain 5/3:
    # (5/3) sqrt(2 / (fan_in + fan_out)); LeCun: sqrt(1 / fan_in).
    assert relu.std().item() == pytest.approx(np.sqrt(2 / fan_in), rel=0.05)
    assert tanh.std().item() == pytest.approx(5 / 3 * np.sqrt(2 / 800), rel=0.05)
    assert selu.std().item() == pytest.approx(np.sqrt(1 / fan_in), rel=0.05)


def test_init_override_and_zero_bias():
    torch.manual_seed(0)
    block = Block(50, 50, activation="relu", init="orthogonal")
    w = block.linear.weight.detach()
    gain = nn.init.calculate_gain("relu")
    torch.testing.assert_close(w @ w.T, gain**2 * torch.eye(50), atol=1e-4, rtol=0)
    assert torch.count_nonzero(block.linear.bias) == 0


def test_layer_parameter_groups_cover_all_parameters():
    ae = Autoencoder(6, 2, (8,), normalization="batch", residual=True)
    names, params, index = layer_parameter_groups(ae)
    assert names[0] == "encoder.0" and names[-1] == "decoder.output"
    assert {id(p) for p in params} == {id(p) for p in ae.parameters()}
    assert index.tolist() == sorted(index.tolist())


def test_seeded_module_draws_nothing_from_the_global_generator():
    state = torch.get_rng_state()
    a = Autoencoder(6, 2, (16,), dropout=0.5, init="default", random_state=3)
    b = Autoencoder(6, 2, (16,), dropout=0.5, init="default", random_state=3)
    x = torch.randn(8, 6, generator=torch.Generator().manual_seed(0))
    a.train(), b.train()
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)  # same masks
    assert torch.equal(torch.get_rng_state(), state)
    c = Autoencoder(6, 2, (16,), dropout=0.5, init="default", random_state=4)
    assert not torch.equal(a.encoder.out.weight, c.encoder.out.weight)


def test_dropout_scales_the_kept_units():
    source = Autoencoder(1, 1, random_state=0).random
    drop = Dropout(0.25, source).train()
    y = drop(torch.ones(1000, 10))
    assert set(y.unique().tolist()) == {0.0, np.float32(1 / 0.75)}
    assert (y == 0).float().mean().item() == pytest.approx(0.25, abs=0.02)


@pytest.mark.parametrize(
    "cls, ref", [(BatchNorm1d, nn.BatchNorm1d), (LayerNorm, nn.LayerNorm)]
)
def test_normalization_matches_torch_and_not_the_thread_count(cls, ref):
    x = torch.randn(256, 64, generator=torch.Generator().manual_seed(0))
    x.requires_grad_(True)
    outputs = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        ours = cls(64)
        y = ours(x)
        (y * torch.arange(64)).square().sum().backward()
        outputs.append([y.detach(), x.grad.clone(), ours.weight.grad, *ours.buffers()])
        x.grad = None
    torch.set_num_threads(1)
    for a, b in zip(*outputs):
        assert torch.equal(a, b)
    theirs = ref(64)
    torch.testing.assert_close(outputs[0][0], theirs(x).detach(), rtol=1e-5, atol=1e-5)
    if cls is BatchNorm1d:
        torch.testing.assert_close(outputs[0][-3], theirs.running_mean)
        torch.testing.assert_close(outputs[0][-2], theirs.running_var)
