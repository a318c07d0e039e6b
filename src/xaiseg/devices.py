"""One device setting for every stage that runs a network.

``auto`` takes CUDA when it is there, else the CPU. Data moves to the device once per
batch; bf16 autocast is used only on CUDA (on the CPU it would change results that
must stay identical across machines).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from xaiseg.errors import XaisegError

CHOICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "bf16")


def resolve_device(setting: str = "auto") -> torch.device:
    """The device a stage runs on; asking for CUDA where there is none is an error."""
    name = setting.split(":")[0]
    if name not in CHOICES:
        raise XaisegError(f"device {setting!r}: choose one of {list(CHOICES)} (or cuda:N)")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise XaisegError(f"device {setting!r}: CUDA is not available on this machine")
    return torch.device(setting)


def autocast(device: torch.device, precision: str = "fp32") -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when asked; a no-op otherwise."""
    if precision not in PRECISIONS:
        raise XaisegError(f"precision {precision!r}: choose one of {list(PRECISIONS)}")
    if precision == "bf16" and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def describe(device: torch.device) -> str:
    """What provenance records: the device type and, on CUDA, the card's name."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return device.type


def batches(tensor: torch.Tensor, size: int) -> Iterator[torch.Tensor]:
    for start in range(0, len(tensor), size):
        yield tensor[start : start + size]
