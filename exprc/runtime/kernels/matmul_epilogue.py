"""The fused matmul epilogue: `r = a @ W^T (+ bias) (* scale) (+ residual)`, then `y = F(r) * w + b` from the
same tile, F the expression.

For a Linear with weight W [N, K] followed by a residual add and a norm (a ViT block's `proj`/`fc2`), one kernel
writes the residual stream r and the norm's output y: the accumulator tile never leaves registers between the
two. Inputs f32, bf16 or f16 with f32 accumulation; r is rounded to the storage dtype before F reads it, so y
equals the unfused `norm(r)`.
"""

from __future__ import annotations

import triton
import triton.language as tl

from exprc.runtime.kernels.support import is_interpreted, jit_helpers
from exprc.runtime.kernels.tiles import MATMUL_CONFIGS, launch_tiled, prune_configs, triton_configs


grouped = jit_helpers("grouped_tiles")  # in this module's Triton mode
epilogue = jit_helpers("norm_epilogue")
k_slices = jit_helpers("k_slices")


@triton.jit
def fused_linear_epilogue(
    a_ptr, w_ptr, bias_ptr, scale_ptr, res_ptr, norm_w_ptr, norm_b_ptr, r_ptr, y_ptr,
    M, N, K,
    M_BUCKET,  # autotune key only: M rounded up to a power of two
    F: tl.constexpr, FAST_ASM: tl.constexpr,
    HAS_BIAS: tl.constexpr, HAS_SCALE: tl.constexpr, HAS_RESIDUAL: tl.constexpr, WRITE_R: tl.constexpr,
    HAS_NORM_W: tl.constexpr, HAS_NORM_B: tl.constexpr,
    INPUT_PRECISION: tl.constexpr, EVEN_K: tl.constexpr, DOT_IN_F32: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    """One BLOCK_M x BLOCK_N tile of r and y. a: [M, K], W: [N, K], residual/r/y: [M, N], all row-major."""
    offs_m, offs_n = grouped.tile_offsets(M, N, BLOCK_M, BLOCK_N, GROUP_M)
    offs_k = tl.arange(0, BLOCK_K)
    a_ptrs, w_ptrs = k_slices.pointers(a_ptr, w_ptr, offs_m, offs_n, offs_k, M, N, K)  # wrapped past M and N

    acc = tl.full((BLOCK_M, BLOCK_N), 0.0, dtype=tl.float32)
    for k in range(0, (K + BLOCK_K - 1) // BLOCK_K):
        a, w = k_slices.load(a_ptrs, w_ptrs, offs_k, K - k * BLOCK_K, EVEN_K)
        if DOT_IN_F32:  # the interpreter multiplies bf16 tiles wrongly; their f32 products are exact
            a = a.to(tl.float32)
            w = w.to(tl.float32)
        acc = tl.dot(a, w, acc, input_precision=INPUT_PRECISION)
        a_ptrs += BLOCK_K
        w_ptrs += BLOCK_K

    # ---- epilogue: on the accumulator tile, in registers (norm_epilogue.py) ----
    epilogue.store_tile(acc, offs_m, offs_n, M, N, bias_ptr, scale_ptr, res_ptr, norm_w_ptr, norm_b_ptr, r_ptr, y_ptr,
                        F, FAST_ASM, HAS_BIAS, HAS_SCALE, HAS_RESIDUAL, WRITE_R, HAS_NORM_W, HAS_NORM_B)


POINTERS = ("a_ptr", "w_ptr", "bias_ptr", "scale_ptr", "res_ptr", "norm_w_ptr", "norm_b_ptr", "r_ptr", "y_ptr")
autotuned = triton.autotune(triton_configs(MATMUL_CONFIGS), key=["M_BUCKET", "N", "K"],
                            prune_configs_by={"early_config_prune": prune_configs})(
    triton.heuristics({"EVEN_K": lambda args: args["K"] % args["BLOCK_K"] == 0})(fused_linear_epilogue))


def launch(expr, a, weight, bias, scale, residual, norm_weight, norm_bias, r, y, *, input_precision="ieee",
           config=None):
    """r = a @ weight.T (+ bias) (* scale) (+ residual); y = f(r) * norm_weight + norm_bias, f the generated
    expression module `expr`.

    a: [M, K]; weight: [N, K]; residual, r, y: [M, N]; bias, scale, norm_weight, norm_bias: [N]. Any of bias,
    scale, residual, norm_weight, norm_bias may be None (left out); r None: r is not written. All contiguous on
    one device; a, weight, residual, r and y of one dtype. `config`: a `triton.Config` to use instead of
    autotuning. Returns the configuration that ran (None when it is not known).
    """
    interpreting = is_interpreted(expr.expr_fn)
    M, K = a.shape
    N = weight.shape[0]
    flags = dict(F=expr.expr_fn, FAST_ASM=not interpreting, HAS_BIAS=bias is not None, HAS_SCALE=scale is not None,
                 HAS_RESIDUAL=residual is not None, WRITE_R=r is not None, HAS_NORM_W=norm_weight is not None,
                 HAS_NORM_B=norm_bias is not None, INPUT_PRECISION=input_precision,
                 DOT_IN_F32=interpreting and a.element_size() != 4)
    args = [a, weight] + [t if t is not None else y for t in (bias, scale, residual, norm_weight, norm_bias, r)]
    args += [y, M, N, K, triton.next_power_of_2(M)]
    return launch_tiled(fused_linear_epilogue, autotuned, args, flags, M, N, K, interpreting, config)
