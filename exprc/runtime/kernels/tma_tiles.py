"""When the fused matmul epilogue runs as its sm_90 TMA + persistent variant (`matmul_epilogue_tma.py`), and with
which tile: plain Python (no Triton, no torch), so the rule is tested on any machine.

The variant loads A and W through tensor descriptors (TMA: one instruction per tile, no address arithmetic in
registers) and runs min(tiles, 2 x SMs) programs that walk the output tiles in grouped order. It is chosen when:
- the device is sm_90 (Hopper: TMA and wgmma; sm_100 has TMA too but is not checked here);
- TMA can address A [M, K] and W [N, K]: base pointers 16-byte aligned, row strides (K * element size) a multiple
  of 16 bytes (TMA's rule; TMA itself zero-fills rows past M, N and columns past K);
- the dot runs on tensor cores: bf16/f16, or f32 as TF32 (f32 with IEEE dots stays on today's kernel);
- one of its tiles gives every SM at least one tile (`tma_tile`): a persistent grid pays once programs loop;
  below that, today's kernel or cuBLAS + the element-wise kernel run (`tiles.fills_device`).
Otherwise today's kernel (`matmul_epilogue.py`) runs. The tile comes from `tma_configs` (no autotuning): the
largest that still gives every SM a tile. The configurations run two programs an SM with any expression
(4 warps, at most 96 KiB of shared memory; `exprc bench static`, kind "epilogue-tma", shows it per kernel), so
one program's epilogue overlaps the other's TMA loads and MMAs.
"""

from __future__ import annotations

from .tiles import TileConfig

# Hopper; per element size, largest tile first. Two programs an SM whatever the expression: 4 warps at up to 255
# registers a thread take half an SM's 64K registers, and the A and W stages at most 96 KiB of its 228 KiB of shared
# memory. f32 (TF32 dots) takes BLOCK_K = 32: K-slices of 128 bytes, as tiles.MAX_K_SLICE_BYTES.
TMA_CONFIGS_16: tuple[TileConfig, ...] = (
    TileConfig(128, 64, 64, 8, 4, 4),   # 96 KiB
    TileConfig(64, 64, 64, 8, 4, 4),    # 64 KiB
)
TMA_CONFIGS_32: tuple[TileConfig, ...] = (
    TileConfig(64, 64, 32, 8, 4, 4),    # 64 KiB
)
TMA_CONFIGS = TMA_CONFIGS_16 + TMA_CONFIGS_32
# Not listed (sm_90, checked with ptxas): 128x128x64 on 8 warps, one program an SM (190 registers a thread for a
# clip-only layer, 253 for blocks.2.norm1's three tanh; two programs need <= 128, and capped there blocks.2.norm1
# spills 160 bytes in fast mode, 584 in precise); spilling on Triton 3.6 (blocks.2.norm1, precise): 64x128x64 w4
# (16 bytes), f32 with TF32 128x128x32 w8 (88) and 128x64x32 w4 (120).
TMA_ALIGN = 16  # bytes: TMA's alignment of base addresses and of every stride but the last
TMA_ARCH = 9  # compute capability major


def tma_configs(element_size: int) -> tuple[TileConfig, ...]:
    """The configurations the TMA variant can run for inputs of `element_size` bytes (2: bf16/f16, 4: f32)."""
    return TMA_CONFIGS_32 if element_size == 4 else TMA_CONFIGS_16


def tiles_of(c: TileConfig, M: int, N: int) -> int:
    return -(-M // c.block_m) * -(-N // c.block_n)


def tma_tile(M: int, N: int, element_size: int, sm_count: int, shared_memory: int) -> TileConfig | None:
    """The tile the TMA variant runs for an [M, N] output: of `tma_configs(element_size)` that fit
    `shared_memory` bytes, the largest that still gives every SM a tile; None when none does (the GPU would not
    fill)."""
    configs = tma_configs(element_size)
    fitting = [c for c in configs if c.shared_memory_bytes(element_size) <= shared_memory]
    filling = [c for c in fitting if tiles_of(c, M, N) >= sm_count]
    if not filling:
        return None
    return max(filling, key=lambda c: (c.block_m * c.block_n, -configs.index(c)))


def tma_addressable(K: int, element_size: int, pointers: tuple[int, ...]) -> bool:
    """Whether TMA can load row-major [rows, K] tensors at these base addresses: 16-byte aligned bases, and a row
    stride of K * element size bytes that is a multiple of 16."""
    return K > 0 and (K * element_size) % TMA_ALIGN == 0 and all(p % TMA_ALIGN == 0 for p in pointers)


def select_tma(capability: tuple[int, int], M: int, N: int, K: int, element_size: int, pointers: tuple[int, ...],
               sm_count: int, shared_memory: int, *, input_precision: str = "ieee") -> TileConfig | None:
    """The TMA variant's tile for this GEMM on a device of `capability` (major, minor), or None when today's
    kernel runs instead (see the module docstring). `pointers`: data_ptr() of A and W; `input_precision`: the
    dot's ("tf32" or "ieee"; f32 inputs with IEEE dots, FMA code that spills on Triton 3.6, stay on today's
    kernel)."""
    if capability[0] != TMA_ARCH or not tma_addressable(K, element_size, pointers):
        return None
    if element_size == 4 and input_precision != "tf32":
        return None
    return tma_tile(M, N, element_size, sm_count, shared_memory)


PROGRAMS_PER_SM = 2  # resident programs an SM the configurations are sized for


def persistent_programs(c: TileConfig, M: int, N: int, sm_count: int, per_sm: int = PROGRAMS_PER_SM) -> int:
    """Programs of the persistent grid: `per_sm` an SM (two, resident together: while one runs its epilogue, the
    other's K loop keeps the tensor cores busy), or one a tile when there are fewer tiles."""
    return max(1, min(tiles_of(c, M, N), sm_count * per_sm))
