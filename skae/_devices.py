"""Devices: the ``device`` parameter, checked before training, and fallbacks."""

import functools
import warnings

import torch

#: Device types ``device`` accepts, with the name used in messages.
KINDS = {"cpu": "CPU", "cuda": "CUDA", "mps": "MPS", "xpu": "XPU"}

_ACCEPTED = "'cpu', 'cuda', 'cuda:N', 'mps', 'xpu', 'xpu:N', 'auto' or a torch.device"


def parse_device(device):
    """Return ``device`` as a :class:`torch.device` without checking availability."""
    if isinstance(device, torch.device):
        parsed = device
    elif isinstance(device, str):
        try:
            parsed = torch.device(device)
        except RuntimeError:
            parsed = None
    else:
        parsed = None
    if parsed is None or parsed.type not in KINDS:
        raise ValueError(f"device must be {_ACCEPTED}; got device={device!r}.")
    if parsed.type in ("cpu", "mps") and parsed.index not in (None, 0):
        raise ValueError(
            f"device={str(parsed)!r}: {KINDS[parsed.type]} has no device "
            f"{parsed.index}; use device={parsed.type!r}."
        )
    return parsed


def _count(kind):
    """Number of ``kind`` devices here (0 when the backend is missing)."""
    if kind == "cuda":
        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    if kind == "xpu":
        xpu = getattr(torch, "xpu", None)
        return xpu.device_count() if xpu is not None and xpu.is_available() else 0
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        return int(mps is not None and mps.is_available())
    return 1


def _unavailable(parsed):
    """Why ``parsed`` cannot be used here, or None when it can."""
    kind = parsed.type
    count = _count(kind)
    if count == 0:
        return f"{KINDS[kind]} is not available on this machine"
    if parsed.index is not None and parsed.index >= count:
        return (
            f"{KINDS[kind]} device {parsed.index} is not available on this "
            f"machine, which has {count} ({kind}:0 to {kind}:{count - 1})"
        )
    return None


def resolve_device(device):
    """Return the :class:`torch.device` for ``device``; ValueError if not available."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    parsed = parse_device(device)
    reason = _unavailable(parsed)
    if reason is not None:
        raise ValueError(
            f"device={str(parsed)!r} but {reason}; use device='cpu' or device='auto'."
        )
    return parsed


def loading_device(device):
    """Return the device to load a saved model on: CPU (warning) if missing."""
    try:
        parsed = resolve_device(device)
    except ValueError:
        parsed = parse_device(device)
    else:
        return parsed
    warnings.warn(
        f"The model was saved with device={str(parsed)!r} but "
        f"{_unavailable(parsed)}; it is loaded on CPU (its outputs are the "
        "same; further training draws its dropout masks afresh). Call "
        "set_params(device='cpu') before fitting it again here.",
        UserWarning,
        stacklevel=3,
    )
    return torch.device("cpu")


def move(t, device, dtype=None):
    """``t`` on ``device`` and in ``dtype`` (None: its own).

    To float64 after the move, other dtypes before: MPS holds no float64 and
    cannot convert dtype while copying.
    """
    device = torch.device(device)
    if dtype is None or t.dtype == dtype or t.device == device:
        return t.to(device=device, dtype=dtype)
    if dtype == torch.float64:
        return t.to(device).to(dtype)
    return t.to(dtype).to(device)


def copy_into(dst, src):
    """``dst.copy_(src)``, through :func:`move` when MPS is on either side."""
    if src.device != dst.device and "mps" in (src.device.type, dst.device.type):
        src = move(src, dst.device, dst.dtype)
    dst.copy_(src)


def float64_device(device):
    """Where float64 arithmetic runs for a model on ``device`` (CPU for MPS)."""
    device = torch.device(device)
    return torch.device("cpu") if device.type == "mps" else device


@functools.cache
def _fused(kind):
    try:
        weight = torch.zeros(1, device=kind, requires_grad=True)
        torch.optim.Adam([weight], fused=True)
    except (RuntimeError, ValueError):
        return False
    return True


def fused_supported(device):
    """True if torch's fused optimizers run on ``device`` (asked once per type)."""
    return _fused(torch.device(device).type)
