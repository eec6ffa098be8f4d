"""Block configurations of the fused matmul kernels, and the autotuner's filter of them.

Chosen for the shapes that matter (ViT: M = batch x 197 tokens, ragged; K in {768, 3072}; N = 768; wider models:
K = N = 1024 or 4096) on sm_80 and sm_90, and checked by the static tests to compile without register spills with
the expression in the epilogue. At launch, the autotuner keeps the configurations that suit the input's
element size and the device's shared memory (`prune_configs`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class TileConfig:
    block_m: int
    block_n: int
    block_k: int
    group_m: int  # programs along M that share W tiles in L2 (grouped ordering)
    num_warps: int
    num_stages: int

    def shared_memory_bytes(self, element_size: int) -> int:
        """Bytes of the A and W pipeline buffers (what decides whether the config fits a device)."""
        return self.num_stages * (self.block_m + self.block_n) * self.block_k * element_size

    def meta(self) -> dict[str, int]:
        return {"BLOCK_M": self.block_m, "BLOCK_N": self.block_n, "BLOCK_K": self.block_k, "GROUP_M": self.group_m}



MATMUL_CONFIGS: tuple[TileConfig, ...] = (
    TileConfig(128, 128, 64, 8, 8, 3),  # large M (batch >= 16 at ViT-B), bf16/f16
    TileConfig(64, 128, 64, 8, 4, 4),  # mid M
    TileConfig(128, 64, 64, 8, 4, 4),
    TileConfig(64, 64, 64, 8, 4, 4),  # small M (batch 1-4: M = 197-788): more programs than SMs
    TileConfig(128, 64, 32, 8, 8, 4),  # f32 inputs (twice the bytes per element); 128x128 spills on Triton 3.6
    TileConfig(64, 64, 32, 8, 4, 4),   # (sm_90, TF32: 24-40 bytes with any expression)
)
# Not listed, because they spill registers once an expression sits in the epilogue (checked with ptxas for sm_80
# and sm_90): 128x128 tiles on 4 warps (128 accumulator registers a thread) and 128x256 / 256x128 on 8 warps.

# The prologue holds each A tile in registers while f runs on it: BLOCK_K = 64 spills on sm_80 (and for f32 on
# sm_90), BLOCK_K = 32 does not.
PROLOGUE_CONFIGS: tuple[TileConfig, ...] = (
    TileConfig(128, 128, 32, 8, 8, 4),
    TileConfig(64, 128, 32, 8, 4, 4),
    TileConfig(128, 64, 32, 8, 4, 4),
    TileConfig(64, 64, 32, 8, 4, 4),
)

# Triton's interpreter runs one fixed configuration: autotuning there would only cost time.
INTERPRETER_CONFIG = TileConfig(32, 32, 32, 4, 4, 1)


MAX_K_SLICE_BYTES = 128  # BLOCK_K * element size: wider K-slices (f32 with BLOCK_K = 64) spill registers


def fits(c: TileConfig, element_size: int, shared_memory: int) -> bool:
    """Whether `c` suits inputs of `element_size` bytes (K-slices of at most MAX_K_SLICE_BYTES) and its A and W
    pipeline buffers fit in `shared_memory` bytes."""
    return c.block_k * element_size <= MAX_K_SLICE_BYTES and c.shared_memory_bytes(element_size) <= shared_memory


def default_tile(configs: tuple[TileConfig, ...], M: int, N: int, element_size: int, sm_count: int,
                 shared_memory: int) -> TileConfig:
    """The configuration the first call uses without autotuning: of the `configs` that suit the element size and
    fit in shared memory, the largest tile that still gives every SM a program (M/BLOCK_M x N/BLOCK_N >= SMs),
    else the one with the most programs. Deterministic: the same shape on the same GPU always gets the same tile."""
    usable = [c for c in configs if fits(c, element_size, shared_memory)] or \
        [min(configs, key=lambda c: c.shared_memory_bytes(element_size))]

    def programs(c: TileConfig) -> int:
        return -(-M // c.block_m) * -(-N // c.block_n)

    filling = [c for c in usable if programs(c) >= sm_count]
    if filling:
        return max(filling, key=lambda c: (c.block_m * c.block_n, c.block_k, -configs.index(c)))
    return max(usable, key=lambda c: (programs(c), c.block_k, -configs.index(c)))


def ranked_tiles(configs: tuple[TileConfig, ...], M: int, N: int, element_size: int, sm_count: int,
                 shared_memory: int) -> list[TileConfig]:
    """The configurations that suit the element size and fit in shared memory, in the order the launcher tries
    them: `default_tile`'s choice first, then its choice among the others, and so on."""
    left = [c for c in configs if fits(c, element_size, shared_memory)] or \
        [default_tile(configs, M, N, element_size, sm_count, shared_memory)]
    ranked = []
    while left:
        ranked.append(default_tile(tuple(left), M, N, element_size, sm_count, shared_memory))
        left.remove(ranked[-1])
    return ranked


def first_spill_free(candidates: Sequence[T], spills: Callable[[T], int]) -> T:
    """The first of `candidates` whose compiled kernel keeps every value in registers (`spills(c)`: what ptxas
    reports spilled to local memory, 0 for nothing); when every one spills, the one that spills least. `spills`
    is called in order, only up to the first candidate that does not spill.

    The tables above were checked with the paper's expressions; another expression (a longer GP result, horner
    mode's software reciprocals) or another Triton release can push a tile past the register file (the sm_80
    sweep found such cases: `exprc bench static --arch 80`), and a spilling epilogue is slower than a smaller
    tile that does not spill."""
    seen: dict[int, int] = {}
    for i, c in enumerate(candidates):
        seen[i] = spills(c)
        if seen[i] == 0:
            return c
    return candidates[min(seen, key=seen.get)]


def fills_device(configs: tuple[TileConfig, ...], M: int, N: int, element_size: int, sm_count: int,
                 shared_memory: int) -> bool:
    """Whether `default_tile` gives at least one program per SM. Where it does not (ViT-B at batch 1-3: M = 197
    to 591 tokens), the epilogue launcher runs cuBLAS (which splits K to fill the GPU) and the element-wise kernel
    instead of the fused kernel: one more trip of r through memory, but no idle SMs."""
    c = default_tile(configs, M, N, element_size, sm_count, shared_memory)
    return -(-M // c.block_m) * -(-N // c.block_n) >= sm_count


def triton_configs(configs: tuple[TileConfig, ...]) -> list:
    """The `triton.Config`s of `configs`, for `triton.autotune`."""
    import triton

    return [triton.Config(c.meta(), num_warps=c.num_warps, num_stages=c.num_stages) for c in configs]


def usable_configs(configs: list, element_size: int, shared_memory: int) -> list:
    """The `triton.Config`s whose K-slice rows are at most MAX_K_SLICE_BYTES and whose A and W pipeline buffers
    fit in `shared_memory` bytes (the smallest one if none does)."""
    def buffers(c) -> int:
        return c.num_stages * (c.kwargs["BLOCK_M"] + c.kwargs["BLOCK_N"]) * c.kwargs["BLOCK_K"] * element_size

    kept = [c for c in configs if c.kwargs["BLOCK_K"] * element_size <= MAX_K_SLICE_BYTES
            and buffers(c) <= shared_memory]
    return kept or [min(configs, key=buffers)]


@functools.lru_cache(maxsize=None)
def max_shared_memory(device_index: int) -> int:
    import triton

    return triton.runtime.driver.active.utils.get_device_properties(device_index)["max_shared_mem"]


def prune_configs(configs: list, named_args: dict, **kwargs) -> list:
    """`early_config_prune` hook of the autotuned matmul kernels: the configurations that suit the input's
    element size and the device's shared memory."""
    a = named_args["a_ptr"]
    index = a.device.index if a.device.index is not None else 0
    return usable_configs(configs, a.element_size(), max_shared_memory(index))


# (kernel, tile, constexprs, argument dtypes and 16-divisibility) -> what ptxas spilled compiling it: each
# (kernel, expression, tile) is compiled and checked once a process; traced calls read the eager calls' findings
_SPILLS: dict[tuple, int] = {}


def _spill_key(plain, config, args: list, flags: dict, even_k: bool) -> tuple:
    def arg_key(a):
        if hasattr(a, "dtype"):
            return str(a.dtype)
        return a % 16 == 0 if isinstance(a, int) else a

    constexprs = tuple(sorted((k, getattr(v, "__module__", None) or repr(v)) if callable(v) else (k, v)
                              for k, v in flags.items()))
    return (plain.__name__, tuple(sorted(config.kwargs.items())), config.num_warps, config.num_stages, constexprs,
            tuple(arg_key(a) for a in args), even_k)


UNLOADABLE = 1 << 30  # the spill count given to a configuration the device cannot load (shared memory, threads)


def compiled_spills(plain, config, args: list, flags: dict, grid: tuple, even_k: bool) -> int:
    """What ptxas spills compiling `plain` with `config` for these arguments (compiled, not launched; the CUDA
    driver loads the binary to report it). Cached per specialization."""
    import triton

    key = _spill_key(plain, config, args, flags, even_k)
    if key not in _SPILLS:
        k = plain.warmup(*args, grid=grid, **flags, **config.kwargs, num_warps=config.num_warps,
                         num_stages=config.num_stages, EVEN_K=even_k)
        try:
            k._init_handles()  # n_spills is known once the binary is loaded
        except triton.runtime.errors.OutOfResources:  # does not fit this device at all: the last resort
            _SPILLS[key] = UNLOADABLE
        else:
            _SPILLS[key] = int(getattr(k, "n_spills", 0) or 0)
    return _SPILLS[key]


def launch_tiled(plain, autotuned, args: list, flags: dict, M: int, N: int, K: int, interpreting: bool, config):
    """Launch a matmul kernel over its (M/BLOCK_M x N/BLOCK_N) tiles: the jit function `plain` with `config`
    (under the interpreter: one fixed tile, INTERPRETER_CONFIG), else `autotuned` (which sets EVEN_K by its
    heuristic). `config` may be a list of `triton.Config`s in order of preference (`ranked_tiles`): the first
    whose compiled kernel does not spill registers runs (`first_spill_free`; a traced call takes what an eager
    call found, else the first). Returns the configuration that ran."""
    import triton
    from torch.library import wrap_triton  # traceable by torch.compile inside exprc's triton_op

    def grid_of(meta: dict) -> tuple:
        return (triton.cdiv(M, meta["BLOCK_M"]) * triton.cdiv(N, meta["BLOCK_N"]),)

    if isinstance(config, (list, tuple)):
        if interpreting:
            config = None
        elif _traced(args):
            found = [c for c in config if _SPILLS.get(_spill_key(plain, c, args, flags, K % c.kwargs["BLOCK_K"] == 0))
                     == 0]
            config = found[0] if found else config[0]
        else:
            config = first_spill_free(config, lambda c: compiled_spills(
                plain, c, args, flags, grid_of(c.kwargs), K % c.kwargs["BLOCK_K"] == 0))
    if interpreting or config is not None:
        meta = dict(config.kwargs) if config is not None else INTERPRETER_CONFIG.meta()
        launch_opts = {} if interpreting else dict(num_warps=config.num_warps, num_stages=config.num_stages)
        wrap_triton(plain)[grid_of(meta)](*args, **flags, **meta, **launch_opts, EVEN_K=K % meta["BLOCK_K"] == 0)
        return config
    wrap_triton(autotuned)[lambda meta: grid_of(meta)](*args, **flags)
    return getattr(autotuned, "best_config", None)


def _traced(args: list) -> bool:
    """Whether the call is being traced (torch.compile, torch.export): fake tensors cannot be compiled for."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensor

    return torch.compiler.is_compiling() or any(isinstance(a, FakeTensor) for a in args)
