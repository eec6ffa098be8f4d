"""The epilogue both fused matmul kernels run on an accumulator tile (`matmul_epilogue.py`, and its sm_90 TMA +
persistent variant `matmul_epilogue_tma.py`), written once as a jit helper they import in their own Triton mode.

    r = acc (+ bias) (* scale) (+ residual), stored in the storage dtype;   y = F(r as stored) * w + b

Global loads: bias, scale, residual, w and b only; everything else stays in registers.
"""

from __future__ import annotations

import triton
import triton.language as tl

from exprc.runtime.kernels.support import jit_helpers

widening = jit_helpers("widen")  # in this module's Triton mode


@triton.jit
def store_tile(acc, offs_m, offs_n, M, N, bias_ptr, scale_ptr, res_ptr, norm_w_ptr, norm_b_ptr, r_ptr, y_ptr,
               F: tl.constexpr, FAST_ASM: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_SCALE: tl.constexpr,
               HAS_RESIDUAL: tl.constexpr, WRITE_R: tl.constexpr, HAS_NORM_W: tl.constexpr,
               HAS_NORM_B: tl.constexpr):
    """Finish the output tile (rows offs_m, columns offs_n) of r and y ([M, N], row-major) from `acc` (f32)."""
    mask_n = offs_n < N
    mask = (offs_m[:, None] < M) & mask_n[None, :]
    out_offs = offs_m.to(tl.int64)[:, None] * N + offs_n[None, :]
    if HAS_BIAS:
        acc += widening.widen(tl.load(bias_ptr + offs_n, mask=mask_n, other=0.0), FAST_ASM)[None, :]
    if HAS_SCALE:  # layer scale (timm's ls1/ls2), applied to the branch before the residual add
        acc *= widening.widen(tl.load(scale_ptr + offs_n, mask=mask_n, other=0.0), FAST_ASM)[None, :]
    if HAS_RESIDUAL:
        acc += widening.widen(tl.load(res_ptr + out_offs, mask=mask, other=0.0), FAST_ASM)
    # the residual stream as stored: F sees exactly the values an unfused norm would read back
    r = acc.to(y_ptr.dtype.element_ty)
    if WRITE_R:
        tl.store(r_ptr + out_offs, r, mask=mask)
    v = F(widening.widen(r, FAST_ASM), FAST_ASM)
    if HAS_NORM_W:
        v = v * widening.widen(tl.load(norm_w_ptr + offs_n, mask=mask_n, other=0.0), FAST_ASM)[None, :]
    if HAS_NORM_B:
        v = v + widening.widen(tl.load(norm_b_ptr + offs_n, mask=mask_n, other=0.0), FAST_ASM)[None, :]
    tl.store(y_ptr + out_offs, v.to(y_ptr.dtype.element_ty), mask=mask)
