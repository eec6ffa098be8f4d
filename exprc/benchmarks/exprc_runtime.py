"""exprc itself, as the benches use it: compiled packages per mode, their norms, fused Linears and patched ViTs.

Everything goes through exprc's public API (`write_package`, `exprc.load`, `exprc.FusedLinearExprNorm`,
`exprc.patch_timm`), imported when first needed; a part that is missing or fails becomes a `Skip` with the reason,
so the rows that do not need it still run. This is the one file to change if those APIs change.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..frontend.layer_set import LayerSet
from .cases import Skip


def _reason(what: str, e: BaseException) -> str:
    return f"{what}: {type(e).__name__}: {e}"[:400]


class ExprcPackages:
    """One compiled package per mode for a layer set, written on first use into a temporary directory."""

    def __init__(self, layer_set: LayerSet):
        self.layer_set = layer_set
        self._tmp = tempfile.TemporaryDirectory(prefix="exprc-bench-")
        self._dirs: dict[str, Path | Skip] = {}
        self._modules: dict[str, Any] = {}

    def close(self) -> None:
        self._tmp.cleanup()

    def directory(self, mode: str) -> Path:
        """The package compiled in `mode` (what `exprc compile LAYERS -o DIR --mode MODE` writes)."""
        if mode not in self._dirs:
            out = Path(self._tmp.name) / mode
            try:
                from ..codegen.package_writer import write_package

                write_package(self.layer_set, out, mode)
                self._dirs[mode] = out
            except Exception as e:  # noqa: BLE001 - any failure of a part under construction skips its rows
                self._dirs[mode] = Skip(_reason(f"exprc compile --mode {mode} failed", e))
        found = self._dirs[mode]
        if isinstance(found, Skip):
            raise found
        return found

    def _loaded(self, mode: str, width: int, dtype: torch.dtype, device: torch.device) -> Any:
        key = (mode, width, dtype, str(device))
        if key not in self._modules:
            path = self.directory(mode)
            try:
                import exprc

                self._modules[key] = exprc.load(path, normalized_shape=width, device=device, dtype=dtype)
            except Exception as e:  # noqa: BLE001
                self._modules[key] = Skip(_reason("exprc.load failed", e))
        found = self._modules[key]
        if isinstance(found, Skip):
            raise found
        return found

    def norm(self, mode: str, layer: str, weight: torch.Tensor, bias: torch.Tensor) -> nn.Module:
        """The `ExprNorm` of `layer` from `exprc.load`, its affine set to `weight` and `bias` (any width)."""
        loaded = self._loaded(mode, weight.shape[-1], weight.dtype, weight.device)
        if layer not in loaded:
            raise Skip(f"the compiled package has no layer {layer!r}")
        module = loaded[layer]
        with torch.no_grad():
            module.weight.copy_(weight)
            module.bias.copy_(bias)
        return module.requires_grad_(False).eval()


def fused_linear(linear: nn.Linear, norm: nn.Module) -> nn.Module:
    """`exprc.FusedLinearExprNorm` built from a Linear and the ExprNorm that follows it.

    Called as `module(x, residual)` and returning `(r, y)`: r = x @ W^T + bias + residual, y = norm(r).
    """
    try:
        import exprc

        cls = exprc.FusedLinearExprNorm
    except Exception as e:  # noqa: BLE001
        raise Skip(_reason("exprc.FusedLinearExprNorm is not available", e)) from None
    for build in ("from_modules", "from_linear"):
        if hasattr(cls, build):
            try:
                return getattr(cls, build)(linear, norm).eval()
            except Exception as e:  # noqa: BLE001
                raise Skip(_reason(f"FusedLinearExprNorm.{build}(linear, norm) failed", e)) from None
    try:
        return cls(linear, norm).eval()
    except Exception as e:  # noqa: BLE001
        raise Skip(_reason("FusedLinearExprNorm(linear, norm) failed", e)) from None


def patch_vit(model: nn.Module, layers: Any, fuse: bool) -> nn.Module:
    """`exprc.patch_timm(model, layers, fuse=fuse)`; `layers` a compiled directory, layer file or mapping."""
    try:
        import exprc

        patch = exprc.patch_timm
    except Exception as e:  # noqa: BLE001
        raise Skip(_reason("exprc.patch_timm is not available", e)) from None
    try:
        patched = patch(model, str(layers) if isinstance(layers, Path) else layers, fuse=fuse)
    except Exception as e:  # noqa: BLE001
        raise Skip(_reason(f"exprc.patch_timm(fuse={fuse}) failed", e)) from None
    return (patched if patched is not None else model).eval()
