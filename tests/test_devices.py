"""One device setting: auto picks CUDA when present; asking for absent CUDA fails."""

import pytest
import torch

from xaiseg.devices import autocast, describe, resolve_device
from xaiseg.errors import XaisegError


def test_auto_follows_cuda_availability(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto").type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto").type == "cuda"


def test_cuda_requested_without_cuda_is_named(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(XaisegError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(XaisegError, match="choose one of"):
        resolve_device("tpu")


def test_cpu_results_unchanged_by_bf16_setting():
    cpu = resolve_device("cpu")
    assert describe(cpu) == "cpu"
    layer = torch.nn.Linear(4, 2)
    x = torch.randn(3, 4)
    with autocast(cpu, "bf16"):
        out = layer(x)
    assert out.dtype == torch.float32 and torch.equal(out, layer(x))
    with pytest.raises(XaisegError):
        autocast(cpu, "fp8")
