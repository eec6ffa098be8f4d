"""The element-wise kernel: `y = F(x) * w + b` over the last dimension(s) of any tensor, F the expression.

The tensor is seen as M rows of D elements (D = w.numel(), a compile-time constant), and each program computes a
BLOCK_M x BLOCK_D tile: rows [pid0 * BLOCK_M, ...), columns [pid1 * BLOCK_D, ...). BLOCK_D is a power of two that
divides D where D has one of at least 16 (ViT's 768: 256), so a row holds whole tiles and no column is masked; the
tile's offsets are `row * D + col` with D constant, so no per-element division or remainder remains, and x, y,
w and b move as 16-byte vectors (Triton specializes the pointers' alignment). The 64-bit part of an offset is the
program's start, added once to the pointers; a tile's own offsets are int32. w and b are loaded once per program
and column, broadcast over the tile's rows in the tile's own layout (no shared-memory shuffle). Rows past M are
masked, unless M is a multiple of BLOCK_M (`EVEN_M`, ViT and LLM batches mostly are); every other access is
unmasked. Storage f32/bf16/f16, compute f32, output in the input's dtype. torch is
imported by the launcher only, so the kernel compiles where only Triton is installed.
"""

from __future__ import annotations

import triton
import triton.language as tl

from exprc.runtime.kernels.support import is_interpreted, jit_helpers

widening = jit_helpers("widen")  # in this module's Triton mode


@triton.jit
def expr_norm_kernel(x_ptr, w_ptr, b_ptr, y_ptr, M, D: tl.constexpr, F: tl.constexpr, FAST_ASM: tl.constexpr,
                     BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr, EVEN_M: tl.constexpr):
    """y = F(x) * w + b for one BLOCK_M x BLOCK_D tile of the [M, D] row-major x and y; w and b have D elements."""
    row0 = tl.program_id(0).to(tl.int64) * BLOCK_M
    col0 = tl.program_id(1) * BLOCK_D
    start = row0 * D + col0
    rows = tl.arange(0, BLOCK_M)[:, None]
    cols = tl.arange(0, BLOCK_D)[None, :]
    offs = rows * D + cols  # int32: BLOCK_M * D < 2**31 (launch_config)
    per_col = rows * 0 + cols  # w's and b's offsets in the tile's shape: loaded in its layout, once per column
    if D % BLOCK_D == 0:
        w = widening.widen(tl.load(w_ptr + col0 + per_col), FAST_ASM)
        b = widening.widen(tl.load(b_ptr + col0 + per_col), FAST_ASM)
        if EVEN_M:  # M a multiple of BLOCK_M: no access is masked
            x = widening.widen(tl.load(x_ptr + start + offs), FAST_ASM)
            tl.store(y_ptr + start + offs, (F(x, FAST_ASM) * w + b).to(y_ptr.dtype.element_ty))
        else:
            mask = rows < tl.minimum(M - row0, BLOCK_M).to(tl.int32)
            x = widening.widen(tl.load(x_ptr + start + offs, mask=mask), FAST_ASM)
            tl.store(y_ptr + start + offs, (F(x, FAST_ASM) * w + b).to(y_ptr.dtype.element_ty), mask=mask)
    else:  # D without a power-of-two factor of 16: one column block, the columns past D masked
        mask = (rows < tl.minimum(M - row0, BLOCK_M).to(tl.int32)) & (cols < D)
        w = widening.widen(tl.load(w_ptr + per_col, mask=cols < D), FAST_ASM)
        b = widening.widen(tl.load(b_ptr + per_col, mask=cols < D), FAST_ASM)
        x = widening.widen(tl.load(x_ptr + start + offs, mask=mask), FAST_ASM)
        tl.store(y_ptr + start + offs, (F(x, FAST_ASM) * w + b).to(y_ptr.dtype.element_ty), mask=mask)


ELEMENTS_PER_THREAD = 16  # 32 bytes of bf16 x (64 of f32); 32 spilled a libdevice-heavy f on Triton 3.6
MAX_BLOCK_D = 256
MIN_PROGRAMS = 264  # two per SM of an H100/H200: small tensors take smaller tiles to fill the GPU


def block_d(D: int) -> int:
    """The tile's width: the largest power of two dividing D, at most MAX_BLOCK_D; where that is below 16 (rows
    not 16-byte aligned anyway), D rounded up to a power of two (its columns past D masked)."""
    bd = min(D & -D, MAX_BLOCK_D)
    return bd if bd >= 16 or bd == D else triton.next_power_of_2(D)


def launch_config(M: int, D: int, element_size: int, num_warps: int = 4) -> tuple[int, int, int]:
    """(BLOCK_M, BLOCK_D, num_warps) for x of M rows of D elements: ELEMENTS_PER_THREAD a thread, fewer rows a
    program when that gives fewer than MIN_PROGRAMS programs."""
    del element_size  # the same element count a thread for 16- and 32-bit storage (measured: fewest instructions)
    bd = block_d(D)
    bm = max(1, ELEMENTS_PER_THREAD * num_warps * 32 // bd)
    while bm > 1 and triton.cdiv(M, bm) * triton.cdiv(D, bd) < MIN_PROGRAMS:
        bm //= 2
    while bm > 1 and bm * D >= 2**31:  # the tile's own offsets are int32
        bm //= 2
    return bm, bd, num_warps


def check_operands(x, weight, bias) -> None:
    import torch

    if x.dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise TypeError(f"the Triton kernel takes float32, bfloat16 or float16 tensors, not {x.dtype}")
    if weight.shape != bias.shape or tuple(x.shape[x.dim() - weight.dim():]) != tuple(weight.shape):
        raise ValueError(f"weight and bias of shape {tuple(weight.shape)} and {tuple(bias.shape)} do not match the "
                         f"last dimensions of x {tuple(x.shape)}")
    if weight.device != x.device or bias.device != x.device:
        raise ValueError(f"x, weight and bias must be on one device, got {x.device}, {weight.device}, {bias.device}")


def apply(expr, x, weight, bias, out=None):
    """y = f(x) * weight + bias by the Triton kernel, f the generated expression module `expr`; weight and bias
    have the shape of x's last dimensions.

    Any strides (a non-contiguous x is copied first); y has x's shape and dtype. `out`, if given, receives y.
    """
    import torch
    from torch.library import wrap_triton  # traceable by torch.compile inside exprc's triton_op

    check_operands(x, weight, bias)
    xc = x.contiguous()
    if out is not None and (out.shape != x.shape or out.dtype != x.dtype or out.device != x.device):
        raise ValueError(f"out must be a {x.dtype} tensor of shape {tuple(x.shape)} on {x.device}")
    y = out if out is not None and out.is_contiguous() else torch.empty_like(xc)
    D = weight.numel()
    if xc.numel() and D:
        M = xc.numel() // D
        bm, bd, num_warps = launch_config(M, D, xc.element_size())
        grid = (triton.cdiv(M, bm), triton.cdiv(D, bd))
        wrap_triton(expr_norm_kernel)[grid](xc, weight.contiguous(), bias.contiguous(), y, M, D=D, F=expr.expr_fn,
                                            FAST_ASM=not is_interpreted(expr.expr_fn), BLOCK_M=bm, BLOCK_D=bd,
                                            EVEN_M=M % bm == 0, num_warps=num_warps)
    if out is not None and y is not out:
        out.copy_(y)
        return out
    return y
