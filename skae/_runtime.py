"""Torch runtime settings scoped to one call: threads, random state, device."""

import contextlib

import torch


@contextlib.contextmanager
def num_threads(n):
    """Set torch's intra-op threads to ``n`` inside the block (None: unchanged)."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def seeded(seed, device):
    """Seed torch's RNG of ``device`` inside the block, restoring it afterwards.

    Weight initialization and dropout draw from the global generator; forking
    it keeps the caller's random state untouched.
    """
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.random.default_generator.manual_seed(seed)
        if cuda:
            torch.cuda.manual_seed(seed)
        yield


def resolve_device(device):
    """Return the torch.device for the estimator's ``device`` parameter."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={str(device)!r} but CUDA is not available on this machine; "
            "use device='cpu' or device='auto'."
        )
    return device
