"""The element-wise kernel: `y = F(x) * w + b` over the last dimension(s) of any tensor, F the expression.

The kernel walks the flattened, contiguous tensor with a 1-D grid; w and b are indexed by `offs % D`, so the
normalized size D need not be a power of two (ViT's 768). Offsets are int64 (tensors over 2**31 elements); the
per-element column is an int32 remainder of a per-program start, which keeps the loads of x, w and b 16-byte
vectors when D is a multiple of 16 (Triton specializes such sizes). Storage f32/bf16/f16, compute f32, output in
the input's dtype. torch is imported by the launcher only, so the kernel compiles where only Triton is installed.
"""

from __future__ import annotations

import triton
import triton.language as tl

from exprc.runtime.kernels.support import is_interpreted


@triton.jit
def expr_norm_kernel(x_ptr, w_ptr, b_ptr, y_ptr, n_elements, D, F: tl.constexpr, FAST_ASM: tl.constexpr,
                     BLOCK: tl.constexpr):
    """y = F(x) * w + b for the BLOCK elements of this program; w and b have D elements (the last dims)."""
    start = tl.program_id(0).to(tl.int64) * BLOCK
    offs = start + tl.arange(0, BLOCK)
    mask = offs < n_elements
    col0 = (start - (start // D) * D).to(tl.int32)  # column of the first element
    col = (col0 + tl.arange(0, BLOCK)) % D
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    w = tl.load(w_ptr + col, mask=mask, other=0.0).to(tl.float32)
    b = tl.load(b_ptr + col, mask=mask, other=0.0).to(tl.float32)
    y = F(x, FAST_ASM) * w + b
    tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


def launch_config(numel: int, element_size: int) -> tuple[int, int]:
    """(BLOCK, num_warps): 4 warps, each thread 32 bytes of x (two 16-byte vector loads, as many of w and b)."""
    return 4096 // element_size, 4


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
    n = xc.numel()
    if n:
        block, num_warps = launch_config(n, xc.element_size())
        grid = (triton.cdiv(n, block),)
        wrap_triton(expr_norm_kernel)[grid](xc, weight.contiguous(), bias.contiguous(), y, n, weight.numel(),
                                            F=expr.expr_fn, FAST_ASM=not is_interpreted(expr.expr_fn), BLOCK=block,
                                            num_warps=num_warps)
    if out is not None and y is not out:
        out.copy_(y)
        return out
    return y
