"""exprc: a compiler from GP-evolved element-wise normalization expressions to fused Triton kernels.

Light to import: torch and triton load only when the runtime names below are first used. The PyTorch operators
(`torch.ops.exprc.*`) are registered when exprc is imported after torch, or when the runtime is first used.
"""

from __future__ import annotations

import sys

__version__ = "0.1.0"

from .errors import ExprcError  # noqa: E402
from .frontend.parse import parse  # noqa: E402

_RUNTIME = {
    "load": "exprc.runtime.load",
    "ExprNorm": "exprc.runtime.expr_norm",
    "FusedLinearExprNorm": "exprc.runtime.fused_linear",
    "patch_timm": "exprc.runtime.patch_timm",
    "patch": "exprc.runtime.patch",
    "export_onnx": "exprc.runtime.onnx_export",
    "FusedExprNormLinear": "exprc.runtime.fused_linear",
    "compile_expr": "exprc.compiler",
    "compile_layers": "exprc.compiler",
    "read_layers": "exprc.frontend.layer_files",
    "warmup": "exprc.runtime.warmup",
}


if hasattr(sys.modules.get("torch"), "library"):  # torch imported: register torch.ops.exprc.* now (for
    # torch.export.load, unpickling); else on first use
    from .runtime import ops as _ops  # noqa: E402, F401


def __getattr__(name: str):
    if name in _RUNTIME:
        import importlib

        return getattr(importlib.import_module(_RUNTIME[name]), name)
    raise AttributeError(f"module 'exprc' has no attribute {name!r}")


__all__ = ["ExprcError", "parse", "__version__", *_RUNTIME]
