"""exprc itself, as the benches use it: compiled packages per mode, their norms, fused Linears and patched ViTs.

Everything goes through exprc's public API (`exprc.compiler.write_package`, `exprc.load`,
`exprc.FusedLinearExprNorm`, `exprc.patch_timm`). A failure of any of them is a failure of the rows that need it
(the harness records it as an error), never a skip. This is the one file to change if those APIs change.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

import exprc

from .. import compiler
from ..frontend.layer_set import LayerSet


class ExprcPackages:
    """One compiled package per mode for a layer set, written on first use into a temporary directory.

    A compile or load that failed is remembered and raised again for every row that needs it, without retrying.
    """

    def __init__(self, layer_set: LayerSet):
        self.layer_set = layer_set
        self._tmp = tempfile.TemporaryDirectory(prefix="exprc-bench-")
        self._dirs: dict[str, Path | Exception] = {}
        self._modules: dict[tuple, Any] = {}

    def close(self) -> None:
        self._tmp.cleanup()

    def directory(self, mode: str) -> Path:
        """The package compiled in `mode` (what `exprc compile LAYERS -o DIR --mode MODE` writes)."""
        if mode not in self._dirs:
            out = Path(self._tmp.name) / mode
            try:
                compiler.write_package(self.layer_set, out, mode)
                self._dirs[mode] = out
            except Exception as e:  # noqa: BLE001 - remembered, and raised again below for every row of this mode
                self._dirs[mode] = e
        return _raise_if_failed(self._dirs[mode])

    def _loaded(self, mode: str, width: int, dtype: torch.dtype, device: torch.device) -> Any:
        key = (mode, width, dtype, str(device))
        if key not in self._modules:
            path = self.directory(mode)
            try:
                self._modules[key] = exprc.load(path, normalized_shape=width, device=device, dtype=dtype)
            except Exception as e:  # noqa: BLE001 - remembered, as above
                self._modules[key] = e
        return _raise_if_failed(self._modules[key])

    def norm(self, mode: str, layer: str, weight: torch.Tensor, bias: torch.Tensor) -> nn.Module:
        """The `ExprNorm` of `layer` from `exprc.load`, its affine set to `weight` and `bias` (any width)."""
        module = self._loaded(mode, weight.shape[-1], weight.dtype, weight.device)[layer]
        with torch.no_grad():
            module.weight.copy_(weight)
            module.bias.copy_(bias)
        return module.requires_grad_(False).eval()


def _raise_if_failed(found: Any) -> Any:
    if isinstance(found, Exception):
        raise found
    return found


def fused_linear(linear: nn.Linear, norm: nn.Module) -> nn.Module:
    """`exprc.FusedLinearExprNorm` built from a Linear and the ExprNorm that follows it.

    Called as `module(x, residual)` and returning `(r, y)`: r = x @ W^T + bias + residual, y = norm(r).
    """
    return exprc.FusedLinearExprNorm.from_modules(linear, norm).eval()


def patch_vit(model: nn.Module, layers: Any, fuse: bool) -> nn.Module:
    """`exprc.patch_timm(model, layers, fuse=fuse)`; `layers` a compiled directory, layer file or mapping."""
    return exprc.patch_timm(model, str(layers) if isinstance(layers, Path) else layers, fuse=fuse).eval()
