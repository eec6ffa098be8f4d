"""The K loop's pointer loads the matmul kernels share (`matmul_epilogue.py`, `matmul_prologue.py` and the pointer
path of `matmul_epilogue_tma.py`), as jit helpers they import in their own Triton mode.

Rows past M and columns past N wrap around (`% M`, `% N`): the loop loads them without masks, and they are never
stored. Past K the slices are zeros (masked) unless EVEN_K. Builtins only (interpreted kernels call these too).
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def pointers(a_ptr, w_ptr, offs_m, offs_n, offs_k, M, N, K):
    """Pointers to the K slice at columns `offs_k`: a [BLOCK_M, BLOCK_K] tile of a [M, K] and the [BLOCK_K, BLOCK_N]
    tile of W^T, W [N, K] (both row-major)."""
    a_ptrs = a_ptr + (offs_m % M).to(tl.int64)[:, None] * K + offs_k[None, :]
    w_ptrs = w_ptr + (offs_n % N).to(tl.int64)[None, :] * K + offs_k[:, None]
    return a_ptrs, w_ptrs


@triton.jit
def load(a_ptrs, w_ptrs, offs_k, k_left, EVEN_K: tl.constexpr):
    """The A and W^T slices at `a_ptrs`, `w_ptrs`; `k_left` = K minus the slice's first column (columns at or past
    it are zeros, unless EVEN_K: K a multiple of BLOCK_K, no mask)."""
    if EVEN_K:
        a = tl.load(a_ptrs)
        w = tl.load(w_ptrs)
    else:
        a = tl.load(a_ptrs, mask=offs_k[None, :] < k_left, other=0.0)
        w = tl.load(w_ptrs, mask=offs_k[:, None] < k_left, other=0.0)
    return a, w
