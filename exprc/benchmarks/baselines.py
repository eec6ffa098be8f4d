"""The implementations exprc is measured against: LayerNorm and DyT, eager, Liger's and torch.compile'd.

`DynamicTanh` is written exactly as the DyT repository writes it (channels-last case). Liger's modules are Triton
GPU kernels: their rows skip without CUDA or without the `liger-kernel` package (`pip install exprc[bench]`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .cases import Skip

LN_EPS = 1e-6  # timm's ViT LayerNorm


class DynamicTanh(nn.Module):
    """DyT (Zhu et al. 2025), `forward` as in the paper's repository: tanh(alpha*x) * weight + bias."""

    def __init__(self, normalized_shape: int, alpha_init_value: float = 0.5):
        super().__init__()
        self.normalized_shape = normalized_shape
        self.alpha_init_value = alpha_init_value
        self.alpha = nn.Parameter(torch.ones(1) * alpha_init_value)
        self.weight = nn.Parameter(torch.ones(normalized_shape))
        self.bias = nn.Parameter(torch.zeros(normalized_shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.tanh(self.alpha * x)
        return x * self.weight + self.bias


def layer_norm(d: int) -> nn.LayerNorm:
    return nn.LayerNorm(d, eps=LN_EPS)


def with_affine(module: nn.Module, weight: torch.Tensor, bias: torch.Tensor,
                names: tuple[str, str] = ("weight", "bias")) -> nn.Module:
    """`module` with its per-channel scale and shift set to copies of `weight` and `bias` (same device/dtype)."""
    with torch.no_grad():
        for name, value in zip(names, (weight, bias), strict=True):
            setattr(module, name, nn.Parameter(value.detach().clone(), requires_grad=False))
    return module


def _liger() -> Any:
    """Liger's modules; without the package, the ImportError makes the row skipped (`cases.OPTIONAL_PACKAGES`)."""
    import liger_kernel.transformers as lt

    return lt


def liger_layer_norm(d: int, device: str) -> nn.Module:
    if device != "cuda":
        raise Skip("Liger's kernels are Triton GPU kernels: needs CUDA")
    return _liger().LigerLayerNorm(d, eps=LN_EPS)


def liger_dyt(d: int, device: str) -> nn.Module:
    """Liger's fused DyT: parameters `alpha`, `gamma` (scale), `beta` (shift)."""
    if device != "cuda":
        raise Skip("Liger's kernels are Triton GPU kernels: needs CUDA")
    lt = _liger()
    cls = getattr(lt, "LigerDyT", None)
    if cls is None:
        raise Skip("this liger-kernel has no LigerDyT (added in 0.5.5)")
    return cls(d, beta=True, init_alpha=0.5)


def compiled(fn: Callable | nn.Module, quick: bool, mode: str | None = None) -> Callable:
    """`torch.compile(fn)` with fresh dynamo caches and static shapes (one specialized program per case)."""
    if quick:
        raise Skip("torch.compile rows are left out of --quick (compile time)")
    torch._dynamo.reset()
    return torch.compile(fn, mode=mode, dynamic=False)


def copy_into(out: torch.Tensor, x: torch.Tensor) -> Callable[[], torch.Tensor]:
    """The bandwidth ceiling: a device-to-device copy of x (one read, one write)."""
    return lambda: out.copy_(x)


def functional_layer_norm(weight: torch.Tensor, bias: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    d = weight.shape[0]
    return lambda x: F.layer_norm(x, (d,), weight, bias, LN_EPS)
