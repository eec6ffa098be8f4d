"""The element-wise backward kernel: for `y = F(x) * w + b` (and, fused after a matmul epilogue, `r` passing its
own gradient through), one pass over x and dy gives

    dx = dy * w * G(x) (+ dr)          G = F', the derivative's jit function
    dw = sum_rows(dy * F(x)),  db = sum_rows(dy)

dw and db are reduced deterministically in two stages, without atomics (as Liger's LayerNorm and DyT backward
do): each program accumulates its rows' partial sums in registers and writes one row of `partial` [P, 2, D]
(f32), and the caller sums `partial` over P. F is recomputed from the saved input instead of saving f(x).
"""

from __future__ import annotations

import triton
import triton.language as tl

from exprc.runtime.kernels.support import is_interpreted, jit_helpers

widening = jit_helpers("widen")  # in this module's Triton mode


@triton.jit
def _add(a, b):
    return a + b


@triton.jit
def expr_norm_backward_kernel(x_ptr, dy_ptr, w_ptr, dr_ptr, dx_ptr, partial_ptr, M, D, rows_per_program,
                              F: tl.constexpr, G: tl.constexpr, FAST_ASM: tl.constexpr, HAS_W: tl.constexpr,
                              HAS_DR: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr):
    """Rows [pid * rows_per_program, (pid + 1) * rows_per_program) of x, dy, dr, dx ([M, D], row-major) in
    BLOCK_M-row tiles; this program's partial sums of dy * F(x) and dy go to partial[pid, 0] and partial[pid, 1]."""
    pid = tl.program_id(0)
    cols = tl.arange(0, BLOCK_D)
    col_ok = cols < D
    if HAS_W:
        w = widening.widen(tl.load(w_ptr + cols, mask=col_ok, other=0.0), FAST_ASM)
    dw = tl.full((BLOCK_D,), 0.0, tl.float32)
    db = tl.full((BLOCK_D,), 0.0, tl.float32)
    row0 = pid * rows_per_program
    row_end = min(row0 + rows_per_program, M)
    for start in range(row0, row_end, BLOCK_M):
        rows = start + tl.arange(0, BLOCK_M)
        mask = (rows < row_end)[:, None] & col_ok[None, :]
        offs = rows.to(tl.int64)[:, None] * D + cols[None, :]
        x = widening.widen(tl.load(x_ptr + offs, mask=mask, other=0.0), FAST_ASM)
        dy = widening.widen(tl.load(dy_ptr + offs, mask=mask, other=0.0), FAST_ASM)
        g = dy * G(x, FAST_ASM)
        if HAS_W:
            g = g * w[None, :]
        if HAS_DR:
            g = g + widening.widen(tl.load(dr_ptr + offs, mask=mask, other=0.0), FAST_ASM)
        tl.store(dx_ptr + offs, g.to(dx_ptr.dtype.element_ty), mask=mask)
        # masked-out elements hold dy = 0, so they add nothing (F(0) need not be 0)
        # tl.reduce with our own combine, not tl.sum: an interpreted kernel cannot call Triton's library jit functions
        dw += tl.reduce(dy * F(x, FAST_ASM), 0, _add)
        db += tl.reduce(dy, 0, _add)
    tl.store(partial_ptr + pid * 2 * D + cols, dw, mask=col_ok)
    tl.store(partial_ptr + pid * 2 * D + D + cols, db, mask=col_ok)


def launch_config(M: int, D: int, programs: int) -> tuple[int, int, int, int]:
    """(P, rows_per_program, BLOCK_M, num_warps): about `programs` programs (the SM count on a GPU), each with a
    run of whole rows, in tiles of BLOCK_M rows x BLOCK_D >= D columns, 4 elements a thread up to D = 2048: f and
    f' of every paper expression in every mode then compile without spills (sm_80/sm_90; 8 elements a thread
    spilled a register for some)."""
    block_d = triton.next_power_of_2(D)
    block_m = max(1, 1024 // block_d)
    num_warps = min(16, max(4, block_m * block_d // 128))
    rows = max(block_m, triton.cdiv(triton.cdiv(M, max(programs, 1)), block_m) * block_m)
    return triton.cdiv(M, rows), rows, block_m, num_warps


def launch(expr, x, dy, weight, dr, programs: int):
    """(dx, partial) for rows of x, dy, dr ([M, D], contiguous, one dtype) and weight ([D] or None), with the
    generated expression module `expr` (`expr_fn`, `expr_grad_fn`). dx has x's dtype; partial is f32 [P, 2, D]
    (sum it over P for dw and db)."""
    import torch
    from torch.library import wrap_triton

    M, D = x.shape
    P, rows, block_m, num_warps = launch_config(M, D, programs)
    dx = torch.empty_like(x)
    partial = torch.empty((max(P, 1), 2, D), device=x.device, dtype=torch.float32)
    if M == 0:
        return dx, partial.zero_()
    wrap_triton(expr_norm_backward_kernel)[(P,)](
        x, dy, weight if weight is not None else x, dr if dr is not None else x, dx, partial, M, D, rows,
        F=expr.expr_fn, G=expr.expr_grad_fn, FAST_ASM=not is_interpreted(expr.expr_fn), HAS_W=weight is not None,
        HAS_DR=dr is not None, BLOCK_M=block_m, BLOCK_D=triton.next_power_of_2(D), num_warps=num_warps)
    return dx, partial
