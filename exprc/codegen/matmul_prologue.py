"""IR -> the source of a fused matmul-prologue module: the norm evaluated on A tiles inside the consuming Linear.

    out = (f(a) * w + b) @ W^T + c  =  f(a) @ W'^T + b',   W' = W * diag(w),   b' = W @ b + c

The affine folding is exact algebra (`fold_norm_affine`); the kernel evaluates f on each A tile as it arrives in
registers, so the normalized activations are never written to memory. The price: f is recomputed once per
N-tile of the consumer (N / BLOCK_N times per element), so it only pays for cheap expressions -- see `planner.py`.
"""

from __future__ import annotations

from typing import Iterable

from ..ir import Node
from .emit_triton import PRELUDE, emit_expr_function
from .matmul_epilogue import module_header
from .matmul_templates.prologue import PROLOGUE_TEMPLATE
from .matmul_templates.tiles import CONFIG_PRUNING, INTERPRETER_CONFIG, PROLOGUE_CONFIGS, TileConfig, configs_text

KERNEL_NAME = "fused_prologue_linear"


def generate_prologue_source(root: Node, *, expr_text: str | None = None, layers: Iterable[str] = (),
                             mode: str = "precise", configs: tuple[TileConfig, ...] = PROLOGUE_CONFIGS) -> str:
    """Python source of the norm-in-prologue Linear module for the (optimized) IR `root`.

    The module's `launch(a, weight, bias, out)` expects the folded weight and bias (`fold_norm_affine`).
    """
    title = "Fused norm + Linear: out = f(a) @ W'^T + b', with W' = W * diag(w) and b' = W @ b + c"
    return PROLOGUE_TEMPLATE.substitute(
        header=module_header(title, root, expr_text, layers, mode),
        prelude=PRELUDE.rstrip("\n"),
        expr_function=emit_expr_function(root, "expr_fn").rstrip("\n"),
        configs=configs_text(configs),
        config_pruning=CONFIG_PRUNING,
        interpreter_config=repr(INTERPRETER_CONFIG.meta()),
        kernel=KERNEL_NAME,
    )


def fold_norm_affine(weight, bias, norm_weight, norm_bias):
    """(W', b') for a Linear (weight W [N, K], bias c [N] or None) after a norm with affine (w [K], b [K]).

    W' = W * w (each input column scaled), b' = W @ b + c; computed in f32 (f64 for f64 weights) and returned in
    the Linear's dtype. Either norm parameter may be None (no scale / no shift); b' is None only when both c and
    b are None.
    """
    import torch

    compute = torch.float64 if weight.dtype == torch.float64 else torch.float32
    w32 = weight.to(compute)
    folded_w = w32 * norm_weight.to(compute)[None, :] if norm_weight is not None else w32
    folded_b = None
    if norm_bias is not None:
        folded_b = w32 @ norm_bias.to(compute)
    if bias is not None:
        folded_b = bias.to(compute) if folded_b is None else folded_b + bias.to(compute)
    return folded_w.to(weight.dtype), (folded_b.to(weight.dtype) if folded_b is not None else None)


PROLOGUE_POINTERS = ("a_ptr", "w_ptr", "bias_ptr", "out_ptr")


def compile_prologue(module, *, arch: int = 90, storage: str = "bfloat16", config: TileConfig = PROLOGUE_CONFIGS[0],
                     has_bias: bool = True):
    """Compile the kernel of a generated prologue module for sm_`arch` without a GPU (see compile_matmul_kernel)."""
    from .matmul_epilogue import compile_matmul_kernel

    return compile_matmul_kernel(getattr(module, KERNEL_NAME), PROLOGUE_POINTERS, {"HAS_BIAS": has_bias},
                                 arch=arch, storage=storage, config=config)
