"""Per-call torch settings: threads, random state, device."""

import pytest
import torch

from skae._runtime import num_threads, resolve_device, seeded


def test_seeded_restores_the_global_generator():
    state = torch.get_rng_state()
    with seeded(123, torch.device("cpu")):
        a = torch.rand(3)
    with seeded(123, torch.device("cpu")):
        b = torch.rand(3)
    assert torch.equal(a, b)
    assert torch.equal(torch.get_rng_state(), state)


def test_num_threads_restores_the_setting():
    before = torch.get_num_threads()
    with num_threads(2):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == before
    with num_threads(None):
        assert torch.get_num_threads() == before


def test_cuda_without_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="device='cuda' but CUDA is not available"):
        resolve_device("cuda")
    assert resolve_device("auto") == torch.device("cpu")
