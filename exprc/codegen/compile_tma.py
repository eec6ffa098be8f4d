"""Compile the sm_90 TMA + persistent matmul epilogue (`runtime/kernels/matmul_epilogue_tma.py`) without a GPU,
and count its epilogue in the SASS.

Beside `compile_check.py` (whose contents key the static sweep's reuse of earlier records, so it stays as it is).
Needs Triton only (no torch, no GPU): `exprc bench static` runs it under Triton 3.6 and 3.8.

The persistent kernel's epilogue sits inside its tile loop, so `sass.profile`'s split at the outermost loop
(before / in / after) does not isolate it: `epilogue_split` splits the tile loop at the K loop nested in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from .compile_check import EPILOGUE_FLAGS, STORAGE, CompiledKernel, _compiled_family, compile_kernel
from .sass import Instr, parse_sass
from ..runtime.kernels.support import for_storage


def compile_epilogue_tma(expr: ModuleType, *, arch: int = 90, storage: str = "bfloat16", config=None,
                         input_precision: str = "ieee", use_tma: bool = True, **flags: bool) -> CompiledKernel:
    """Compile the TMA + persistent matmul-epilogue kernel with the expression module `expr` for sm_`arch`
    (`flags` override compile_check.EPILOGUE_FLAGS; `config` a `tiles.TileConfig`, default the largest of
    tma_tiles.tma_configs for the storage dtype; `input_precision` "tf32" for f32, the only f32 dots the launcher
    sends here). M, N, K are runtime integers, N and K declared 16-divisible (ViT/LLM widths; TMA's rule for K)."""
    from ..runtime.kernels.tma_tiles import tma_configs

    config = config or tma_configs(4 if storage == "float32" else 2)[0]
    expr = for_storage(expr, storage)
    kernels = _compiled_family("matmul_epilogue_tma", expr)
    signature = {name: f"*{STORAGE[storage]}" for name in kernels.POINTERS}
    signature.update(M="i32", N="i32", K="i32", M_BUCKET="i32")
    constexprs = {"F": expr.expr_fn, "FAST_ASM": True, "INPUT_PRECISION": input_precision, "EVEN_K": True,
                  "DOT_IN_F32": False, "USE_TMA": use_tma, **EPILOGUE_FLAGS, **flags, **config.meta()}
    return compile_kernel(kernels.fused_linear_epilogue_tma, signature, constexprs,
                          set(kernels.POINTERS) | {"N", "K", "M_BUCKET"}, arch=arch, num_warps=config.num_warps,
                          num_stages=config.num_stages).with_elements(config.block_m * config.block_n)


@dataclass(frozen=True)
class TileLoopSplit:
    """A persistent matmul's main code split by its loops (instructions of one thread): before the tile loop,
    the tile loop's code before its K loop, the K loop, the tile loop's code after the K loop (the epilogue,
    with the loop's closing branch), and after the tile loop; MUFU operations in the epilogue."""

    before: int
    tile_head: int
    k_loop: int
    epilogue: int
    after: int
    epilogue_mufu: int


def epilogue_split(sass: str) -> TileLoopSplit:
    """Split the SASS of a kernel with a tile loop around a K loop (the K loop: the smallest loop inside another
    that holds the warpgroup MMAs (HGMMA), or else the smallest loop inside another; the tile loop: the smallest
    loop around it; a barrier's retry loop placed after the code is neither). Main code only, NOPs and out-of-line
    slow paths (after the first CALL target) left out, as `sass.profile` counts."""
    instrs = [i for i in parse_sass(sass) if i.name != "NOP"]
    instrs = [i for i in instrs if not (i.name == "BRA" and i.target() == i.addr)]
    entries = [t for i in instrs if i.name == "CALL" and (t := i.target()) is not None]
    main = [i for i in instrs if not entries or i.addr < min(entries)]
    loops = sorted({(t, i.addr) for i in main if i.name == "BRA" and (t := i.target()) is not None and t <= i.addr},
                   key=lambda span: span[1] - span[0])

    def inside(i: Instr, span) -> bool:
        return span[0] <= i.addr <= span[1]

    def around(span) -> list:
        return [s for s in loops if s[0] <= span[0] and span[1] < s[1]]

    nested = [s for s in loops if around(s)]
    with_mma = [s for s in nested if any(inside(i, s) and i.name == "HGMMA" for i in main)]
    if not nested:
        raise ValueError("expected a K loop inside a tile loop")
    k_loop = (with_mma or nested)[0]
    outer = around(k_loop)[0]
    epilogue = [i for i in main if k_loop[1] < i.addr <= outer[1]]
    return TileLoopSplit(before=sum(i.addr < outer[0] for i in main),
                         tile_head=sum(outer[0] <= i.addr < k_loop[0] for i in main),
                         k_loop=sum(inside(i, k_loop) for i in main), epilogue=len(epilogue),
                         after=sum(i.addr > outer[1] for i in main),
                         epilogue_mufu=sum(i.name == "MUFU" for i in epilogue))
