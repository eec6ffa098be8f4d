"""Storage to f32, as a jit helper the kernels share (imported by them in their own Triton mode)."""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def widen(v, FAST_ASM: tl.constexpr):
    """v (f32, bf16 or f16) as f32, exactly. bf16 compiled: two values a 32-bit register, each widened by one
    integer instruction (`shl` for the low half, `and` for the high), where `.to(tl.float32)` takes 1.5 a value
    (PRMT + shift for the high half); bf16 is f32's upper 16 bits. A tensor of an odd number of elements (a
    one-column tile) cannot be paired: `.to`. Builtins only (interpreted kernels call it)."""
    if FAST_ASM and v.dtype == tl.bfloat16 and v.numel % 2 == 0:
        return tl.inline_asm_elementwise("shl.b32 $0, $2, 16;\n\tand.b32 $1, $2, 0xFFFF0000;", "=r,=r,r", [v],
                                         dtype=tl.float32, is_pure=True, pack=2)
    return v.to(tl.float32)
