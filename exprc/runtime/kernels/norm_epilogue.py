"""The epilogue both fused matmul kernels run on an accumulator tile (`matmul_epilogue.py`, and its sm_90 TMA +
persistent variant `matmul_epilogue_tma.py`), written once as a jit helper they import in their own Triton mode.

    r = acc (+ bias) (* scale) (+ residual), stored in the storage dtype;   y = F(r as stored) * w + b

Global loads: bias, scale, residual, w and b only; everything else stays in registers. Storage is widened to f32
by `.to(tl.float32)`, not `widen.widen`: its inline PTX pairs registers, which took the 128-wide tiles of the
longest horner expressions from 154-199 registers to 255 and spills (sm_90, Triton 3.8).
"""

from __future__ import annotations

import triton
import triton.language as tl


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
        acc += tl.load(bias_ptr + offs_n, mask=mask_n, other=0.0).to(tl.float32)[None, :]
    if HAS_SCALE:  # layer scale (timm's ls1/ls2), applied to the branch before the residual add
        acc *= tl.load(scale_ptr + offs_n, mask=mask_n, other=0.0).to(tl.float32)[None, :]
    if HAS_RESIDUAL:
        acc += tl.load(res_ptr + out_offs, mask=mask, other=0.0).to(tl.float32)
    # the residual stream as stored: F sees exactly the values an unfused norm would read back
    r = acc.to(y_ptr.dtype.element_ty)
    if WRITE_R:
        tl.store(r_ptr + out_offs, r, mask=mask)
    v = F(r.to(tl.float32), FAST_ASM)
    if HAS_NORM_W:
        v = v * tl.load(norm_w_ptr + offs_n, mask=mask_n, other=0.0).to(tl.float32)[None, :]
    if HAS_NORM_B:
        v = v + tl.load(norm_b_ptr + offs_n, mask=mask_n, other=0.0).to(tl.float32)[None, :]
    tl.store(y_ptr + out_offs, v.to(y_ptr.dtype.element_ty), mask=mask)
