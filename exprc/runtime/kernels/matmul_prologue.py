"""The fused matmul prologue: `out = F(a) @ W'^T (+ b')`, F the expression applied to each A tile as it loads.

The norm's affine is folded into the consuming Linear by the caller (`fused_linear.fold_norm_affine`:
`W' = W * diag(w)`, `b' = W @ b + c`), so the kernel only evaluates F, and the normalized activations never touch
memory. The price: F is recomputed once per N-tile of the consumer (N / BLOCK_N times per element), so it only
pays for cheap expressions (see `exprc/codegen/planner.py`).
"""

from __future__ import annotations

import triton
import triton.language as tl

from exprc.runtime.kernels.support import is_interpreted, jit_helpers
from exprc.runtime.kernels.tiles import PROLOGUE_CONFIGS, launch_tiled, prune_configs, triton_configs


grouped = jit_helpers("grouped_tiles")  # in this module's Triton mode
k_slices = jit_helpers("k_slices")


@triton.jit
def fused_prologue_linear(
    a_ptr, w_ptr, bias_ptr, out_ptr,
    M, N, K,
    M_BUCKET,  # autotune key only: M rounded up to a power of two
    F: tl.constexpr, FAST_ASM: tl.constexpr,
    HAS_BIAS: tl.constexpr, INPUT_PRECISION: tl.constexpr, EVEN_K: tl.constexpr, DOT_IN_F32: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    """One BLOCK_M x BLOCK_N tile of out. a: [M, K] (the norm's input), W': [N, K], out: [M, N], all row-major."""
    offs_m, offs_n = grouped.tile_offsets(M, N, BLOCK_M, BLOCK_N, GROUP_M)
    offs_k = tl.arange(0, BLOCK_K)
    a_ptrs, w_ptrs = k_slices.pointers(a_ptr, w_ptr, offs_m, offs_n, offs_k, M, N, K)  # wrapped past M and N

    acc = tl.full((BLOCK_M, BLOCK_N), 0.0, dtype=tl.float32)
    for k in range(0, (K + BLOCK_K - 1) // BLOCK_K):
        k_left = K - k * BLOCK_K
        a, w = k_slices.load(a_ptrs, w_ptrs, offs_k, k_left, EVEN_K)
        # ---- prologue: the norm, on the A tile in registers (recomputed for every N-tile) ----
        fa = F(a.to(tl.float32), FAST_ASM)
        if not EVEN_K:  # F(0) need not be 0: zero the padding explicitly
            fa = tl.where(offs_k[None, :] < k_left, fa, 0.0)
        if DOT_IN_F32:  # the interpreter multiplies bf16 tiles wrongly; their f32 products are exact
            acc = tl.dot(fa.to(a.dtype).to(tl.float32), w.to(tl.float32), acc, input_precision=INPUT_PRECISION)
        else:
            acc = tl.dot(fa.to(a.dtype), w, acc, input_precision=INPUT_PRECISION)
        a_ptrs += BLOCK_K
        w_ptrs += BLOCK_K

    mask_n = offs_n < N
    mask = (offs_m[:, None] < M) & mask_n[None, :]
    if HAS_BIAS:
        acc += tl.load(bias_ptr + offs_n, mask=mask_n, other=0.0).to(tl.float32)[None, :]
    out_offs = offs_m.to(tl.int64)[:, None] * N + offs_n[None, :]
    tl.store(out_ptr + out_offs, acc.to(out_ptr.dtype.element_ty), mask=mask)


POINTERS = ("a_ptr", "w_ptr", "bias_ptr", "out_ptr")
autotuned = triton.autotune(triton_configs(PROLOGUE_CONFIGS), key=["M_BUCKET", "N", "K"],
                            prune_configs_by={"early_config_prune": prune_configs})(
    triton.heuristics({"EVEN_K": lambda args: args["K"] % args["BLOCK_K"] == 0})(fused_prologue_linear))


def launch(expr, a, weight, bias, out, *, input_precision="ieee", config=None):
    """out = f(a) @ weight.T (+ bias), f the generated expression module `expr`, with the norm's affine already
    folded into weight and bias.

    a: [M, K]; weight: [N, K]; bias: [N] or None; out: [M, N]; all contiguous on one device, a, weight and out of
    one dtype. `config`: a `triton.Config` to use instead of autotuning. Returns the configuration that ran.
    """
    interpreting = is_interpreted(expr.expr_fn)
    M, K = a.shape
    N = weight.shape[0]
    flags = dict(F=expr.expr_fn, FAST_ASM=not interpreting, HAS_BIAS=bias is not None,
                 INPUT_PRECISION=input_precision, DOT_IN_F32=interpreting and a.element_size() != 4)
    args = [a, weight, bias if bias is not None else out, out, M, N, K, triton.next_power_of_2(M)]
    return launch_tiled(fused_prologue_linear, autotuned, args, flags, M, N, K, interpreting, config)
