"""The tile order both fused matmul kernels share, as a jit helper (imported by them in their own Triton mode)."""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def tile_start(tile_id, num_pid_m, num_pid_n, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
               GROUP_M: tl.constexpr):
    """(first row, first column) of output tile `tile_id` of a num_pid_m x num_pid_n grid of tiles, in grouped
    order: GROUP_M consecutive tiles walk down M and reuse the same W tiles from L2. Builtins only (not tl.cdiv,
    a jit function of Triton's library, which an interpreted kernel cannot call once Triton was imported
    compiled)."""
    num_pid_in_group = GROUP_M * num_pid_n
    first_pid_m = (tile_id // num_pid_in_group) * GROUP_M
    group_size_m = min(num_pid_m - first_pid_m, GROUP_M)
    pid_m = first_pid_m + ((tile_id % num_pid_in_group) % group_size_m)
    pid_n = (tile_id % num_pid_in_group) // group_size_m
    return pid_m * BLOCK_M, pid_n * BLOCK_N


@triton.jit
def tile_offsets(M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GROUP_M: tl.constexpr):
    """(rows, columns) of this program's output tile (`tile_start` of the program id)."""
    num_pid_m = (M + BLOCK_M - 1) // BLOCK_M
    num_pid_n = (N + BLOCK_N - 1) // BLOCK_N
    start_m, start_n = tile_start(tl.program_id(0), num_pid_m, num_pid_n, BLOCK_M, BLOCK_N, GROUP_M)
    return start_m + tl.arange(0, BLOCK_M), start_n + tl.arange(0, BLOCK_N)
