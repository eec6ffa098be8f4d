"""The fused matmul epilogue for sm_90, TMA + persistent: `r = a @ W^T (+ bias) (* scale) (+ residual)`, then
`y = F(r) * w + b`, the same result as `matmul_epilogue.py` (same f32 accumulation, same epilogue code), loaded
and scheduled the Hopper way.

- A and W tiles come through tensor descriptors made inside the kernel (`tl.make_tensor_descriptor`: TMA loads
  into shared memory, zero-filled past M, N and K, so no masks, no wrap-around and no address registers in the
  K loop). Device-side descriptors rather than host-side `TensorDescriptor`s: the kernel keeps plain pointer
  arguments, which `torch.library.triton_op` traces under torch.compile (its non-Dynamo tracing does not
  capture host descriptors in torch 2.14); Triton writes the descriptors to a global scratch buffer it
  allocates at launch through `triton.set_allocator` (`launch` installs a torch allocator when none is set;
  Inductor installs its own).
- Persistent grid: `persistent_programs` (two programs an SM, at most one a tile), each walking output tiles
  tile_id = pid, pid + programs, ... in the grouped order of `grouped_tiles` (GROUP_M tile rows share W in L2).
- The epilogue (bias, layer scale, residual, r stored in the storage dtype, F on r as stored, w, b) is the
  other kernel's own, `norm_epilogue.store_tile`, with masked pointer loads and stores.

`USE_TMA=False` loads the same tiles through pointers (rows past M and columns past N wrapped, K masked): the
persistent loop without descriptors, for Triton interpreters without them and as the reference of the TMA
path. Runs compiled on sm_90 CUDA devices (where `tma_tiles.select_tma` chooses it) and, both paths, under
TRITON_INTERPRET=1 on CPU tensors (tests).
"""

from __future__ import annotations

import triton
import triton.language as tl

from exprc.runtime.kernels.support import is_interpreted, jit_helpers
from exprc.runtime.kernels.tiles import INTERPRETER_CONFIG, TileConfig
from exprc.runtime.kernels.tma_tiles import persistent_programs

grouped = jit_helpers("grouped_tiles")  # in this module's Triton mode
epilogue = jit_helpers("norm_epilogue")
k_slices = jit_helpers("k_slices")


@triton.jit
def fused_linear_epilogue_tma(
    a_ptr, w_ptr, bias_ptr, scale_ptr, res_ptr, norm_w_ptr, norm_b_ptr, r_ptr, y_ptr,
    M, N, K,
    M_BUCKET,  # unused: the same arguments as matmul_epilogue's kernel
    F: tl.constexpr, FAST_ASM: tl.constexpr,
    HAS_BIAS: tl.constexpr, HAS_SCALE: tl.constexpr, HAS_RESIDUAL: tl.constexpr, WRITE_R: tl.constexpr,
    HAS_NORM_W: tl.constexpr, HAS_NORM_B: tl.constexpr,
    INPUT_PRECISION: tl.constexpr, EVEN_K: tl.constexpr, DOT_IN_F32: tl.constexpr, USE_TMA: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    """Tiles pid, pid + programs, ... of r and y. a: [M, K], W: [N, K], residual/r/y: [M, N], all row-major;
    with USE_TMA, a and W 16-byte aligned and K * element size a multiple of 16 (TMA's rule)."""
    num_pid_m = (M + BLOCK_M - 1) // BLOCK_M
    num_pid_n = (N + BLOCK_N - 1) // BLOCK_N
    k_tiles = (K + BLOCK_K - 1) // BLOCK_K
    if USE_TMA:
        a_desc = tl.make_tensor_descriptor(a_ptr, shape=[M, K], strides=[K, 1], block_shape=[BLOCK_M, BLOCK_K])
        w_desc = tl.make_tensor_descriptor(w_ptr, shape=[N, K], strides=[K, 1], block_shape=[BLOCK_N, BLOCK_K])
    offs_k = tl.arange(0, BLOCK_K)

    for tile_id in range(tl.program_id(0), num_pid_m * num_pid_n, tl.num_programs(0)):
        start_m, start_n = grouped.tile_start(tile_id, num_pid_m, num_pid_n, BLOCK_M, BLOCK_N, GROUP_M)
        offs_m = start_m + tl.arange(0, BLOCK_M)
        offs_n = start_n + tl.arange(0, BLOCK_N)
        acc = tl.full((BLOCK_M, BLOCK_N), 0.0, dtype=tl.float32)
        for k in range(0, k_tiles):
            if USE_TMA:  # zero-filled past M, N and K
                a = a_desc.load([start_m, k * BLOCK_K])
                w = w_desc.load([start_n, k * BLOCK_K]).T
            else:  # rows past M and columns past N wrap around (never stored); K masked unless EVEN_K
                a_ptrs, w_ptrs = k_slices.pointers(a_ptr, w_ptr, offs_m, offs_n, k * BLOCK_K + offs_k, M, N, K)
                a, w = k_slices.load(a_ptrs, w_ptrs, offs_k, K - k * BLOCK_K, EVEN_K)
            if DOT_IN_F32:  # the interpreter multiplies bf16 tiles wrongly; their f32 products are exact
                a = a.to(tl.float32)
                w = w.to(tl.float32)
            acc = tl.dot(a, w, acc, input_precision=INPUT_PRECISION)

        # ---- epilogue: matmul_epilogue.py's (norm_epilogue.py), on this tile ----
        epilogue.store_tile(acc, offs_m, offs_n, M, N, bias_ptr, scale_ptr, res_ptr, norm_w_ptr, norm_b_ptr, r_ptr,
                            y_ptr, F, FAST_ASM, HAS_BIAS, HAS_SCALE, HAS_RESIDUAL, WRITE_R, HAS_NORM_W, HAS_NORM_B)


POINTERS = ("a_ptr", "w_ptr", "bias_ptr", "scale_ptr", "res_ptr", "norm_w_ptr", "norm_b_ptr", "r_ptr", "y_ptr")


def _torch_scratch(size: int, alignment: int, stream):
    import torch

    return torch.empty(size, dtype=torch.int8, device="cuda")


def ensure_allocator() -> None:
    """Give Triton a global-memory allocator for the descriptors' scratch when none is set (it is a context
    variable: a new thread starts without one). One another component set is kept."""
    try:
        from triton.runtime._allocation import NullAllocator, _allocator

        if not isinstance(_allocator.get(), NullAllocator):
            return
    except ImportError:  # Triton's private module moved: set ours
        pass
    triton.set_allocator(_torch_scratch)


def launch(expr, a, weight, bias, scale, residual, norm_weight, norm_bias, r, y, *, input_precision="ieee",
           config: TileConfig | None = None, sm_count: int = 132, use_tma: bool = True,
           programs: int | None = None, spill_free: bool = False) -> TileConfig | None:
    """r = a @ weight.T (+ bias) (* scale) (+ residual); y = f(r) * norm_weight + norm_bias, f the generated
    expression module `expr`: matmul_epilogue.launch's contract, on a persistent grid.

    `config`: the tile (`tma_tiles.select_tma`'s choice; under the interpreter default INTERPRETER_CONFIG);
    `sm_count`: the device's SMs (the grid is `persistent_programs`, or `programs` when given);
    `use_tma=False`: the pointer-load path (the interpreter runs either). Returns the tile that ran; with
    `spill_free`, compiled kernels only: None, launching nothing, when ptxas spills registers compiling the tile
    for this expression (`tiles.compiled_spills`; the caller then runs today's kernel, which has tiles to fall
    back on).
    """
    from torch.library import wrap_triton  # traceable by torch.compile inside exprc's triton_op

    from exprc.runtime.kernels import tiles

    interpreting = is_interpreted(expr.expr_fn)
    M, K = a.shape
    N = weight.shape[0]
    c = config or INTERPRETER_CONFIG
    flags = dict(F=expr.expr_fn, FAST_ASM=not interpreting, HAS_BIAS=bias is not None, HAS_SCALE=scale is not None,
                 HAS_RESIDUAL=residual is not None, WRITE_R=r is not None, HAS_NORM_W=norm_weight is not None,
                 HAS_NORM_B=norm_bias is not None, INPUT_PRECISION=input_precision,
                 DOT_IN_F32=interpreting and a.element_size() != 4, USE_TMA=use_tma)
    even_k = K % c.block_k == 0
    args = [a, weight] + [t if t is not None else y for t in (bias, scale, residual, norm_weight, norm_bias, r)]
    args += [y, M, N, K, triton.next_power_of_2(M)]
    if use_tma and not interpreting:
        ensure_allocator()
    grid = (programs or persistent_programs(c, M, N, sm_count),)
    if spill_free and not interpreting:
        (tile,) = tiles.triton_configs((c,))
        if tiles.compiled_spills(fused_linear_epilogue_tma, tile, args, flags, grid, even_k):
            return None
    launch_opts = {} if interpreting else dict(num_warps=c.num_warps, num_stages=c.num_stages)
    wrap_triton(fused_linear_epilogue_tma)[grid](*args, **flags, **c.meta(), **launch_opts, EVEN_K=even_k)
    return c
