"""The kernels `exprc bench static` compiles beside exprc's: a plain Triton copy, Liger's LayerNorm and DyT forward
kernels, and the matmul of Triton's tutorial (for the fused kernels' epilogue overhead).

Liger's kernels are compiled from the installed liger-kernel's own source: the `@triton.jit` function is cut out
of `liger_kernel/ops/<file>.py` (its autotune decorator dropped, the libdevice function it uses bound) and
imported alone, so neither torch nor liger's package is imported: this runs under a Triton-only environment too,
given the directory of liger's sources (`liger_dir`). Each returns a `CompiledKernel` whose `elements` are the
elements one program computes.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import triton
import triton.language as tl

from ..codegen.compile_check import STORAGE, CompiledKernel, compile_kernel
from ..runtime.kernels.support import import_source

VIT_D = 768  # the row width of the per-row baselines (ViT-B)


@triton.jit
def copy_kernel(x_ptr, y_ptr, n_elements, BLOCK: tl.constexpr):
    """y = x, BLOCK elements a program: the floor of an element-wise kernel."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=mask), mask=mask)


# Triton's tutorial 03 (python/tutorials/03-matrix-multiplication.py, MIT license), unchanged but for C's dtype
# following its pointer and no activation: exprc's fused epilogue kernel has the same main loop.
@triton.jit
def tutorial_matmul_kernel(a_ptr, b_ptr, c_ptr, M, N, K, stride_am, stride_ak, stride_bk, stride_bn, stride_cm,
                           stride_cn, BLOCK_SIZE_M: tl.constexpr, BLOCK_SIZE_N: tl.constexpr,
                           BLOCK_SIZE_K: tl.constexpr, GROUP_SIZE_M: tl.constexpr):
    pid = tl.program_id(axis=0)
    num_pid_m = tl.cdiv(M, BLOCK_SIZE_M)
    num_pid_n = tl.cdiv(N, BLOCK_SIZE_N)
    num_pid_in_group = GROUP_SIZE_M * num_pid_n
    group_id = pid // num_pid_in_group
    first_pid_m = group_id * GROUP_SIZE_M
    group_size_m = min(num_pid_m - first_pid_m, GROUP_SIZE_M)
    pid_m = first_pid_m + ((pid % num_pid_in_group) % group_size_m)
    pid_n = (pid % num_pid_in_group) // group_size_m
    offs_am = (pid_m * BLOCK_SIZE_M + tl.arange(0, BLOCK_SIZE_M)) % M
    offs_bn = (pid_n * BLOCK_SIZE_N + tl.arange(0, BLOCK_SIZE_N)) % N
    offs_k = tl.arange(0, BLOCK_SIZE_K)
    a_ptrs = a_ptr + (offs_am[:, None] * stride_am + offs_k[None, :] * stride_ak)
    b_ptrs = b_ptr + (offs_k[:, None] * stride_bk + offs_bn[None, :] * stride_bn)
    accumulator = tl.zeros((BLOCK_SIZE_M, BLOCK_SIZE_N), dtype=tl.float32)
    for k in range(0, tl.cdiv(K, BLOCK_SIZE_K)):
        a = tl.load(a_ptrs, mask=offs_k[None, :] < K - k * BLOCK_SIZE_K, other=0.0)
        b = tl.load(b_ptrs, mask=offs_k[:, None] < K - k * BLOCK_SIZE_K, other=0.0)
        accumulator = tl.dot(a, b, accumulator)
        a_ptrs += BLOCK_SIZE_K * stride_ak
        b_ptrs += BLOCK_SIZE_K * stride_bk
    c = accumulator.to(c_ptr.dtype.element_ty)
    offs_cm = pid_m * BLOCK_SIZE_M + tl.arange(0, BLOCK_SIZE_M)
    offs_cn = pid_n * BLOCK_SIZE_N + tl.arange(0, BLOCK_SIZE_N)
    c_ptrs = c_ptr + stride_cm * offs_cm[:, None] + stride_cn * offs_cn[None, :]
    c_mask = (offs_cm[:, None] < M) & (offs_cn[None, :] < N)
    tl.store(c_ptrs, c, mask=c_mask)


def compile_copy(*, arch: int, storage: str, block: int, num_warps: int) -> CompiledKernel:
    t = STORAGE[storage]
    k = compile_kernel(copy_kernel, {"x_ptr": f"*{t}", "y_ptr": f"*{t}", "n_elements": "i32"}, {"BLOCK": block},
                       {"x_ptr", "y_ptr", "n_elements"}, arch=arch, num_warps=num_warps)
    return k.with_elements(block)


def compile_tutorial_matmul(*, arch: int, storage: str, config) -> CompiledKernel:
    """C = A @ W^T as exprc's epilogue kernel multiplies (W [N, K] row-major: B's K stride is 1), one tile
    configuration (`tiles.TileConfig`)."""
    t = STORAGE[storage]
    signature = {"a_ptr": f"*{t}", "b_ptr": f"*{t}", "c_ptr": f"*{t}", "M": "i32", "N": "i32", "K": "i32",
                 "stride_am": "i32", "stride_bn": "i32", "stride_cm": "i32"}
    constexprs = {"stride_ak": 1, "stride_bk": 1, "stride_cn": 1, "BLOCK_SIZE_M": config.block_m,
                  "BLOCK_SIZE_N": config.block_n, "BLOCK_SIZE_K": config.block_k, "GROUP_SIZE_M": config.group_m}
    k = compile_kernel(tutorial_matmul_kernel, signature, constexprs,
                       {"a_ptr", "b_ptr", "c_ptr", "N", "K", "stride_am", "stride_bn", "stride_cm"}, arch=arch,
                       num_warps=config.num_warps, num_stages=config.num_stages)
    return k.with_elements(config.block_m * config.block_n)


# -- Liger-Kernel ------------------------------------------------------------------------------------------------
LIGER_KERNELS = {  # name -> (file under liger_kernel/ops, jit function, the libdevice function it imports)
    "liger-layernorm": ("layer_norm.py", "_layer_norm_forward_kernel", "rsqrt"),
    "liger-dyt": ("dyt.py", "_dyt_fwd_kernel", "tanh"),
}
# Liger's DyT forward is autotuned over these (BLOCK_N, num_warps) (num_stages does not matter without a loop)
LIGER_DYT_CONFIGS = tuple((bn, nw) for bn in (1024, 2048, 4096) for nw in (4, 8, 16))


def liger_dir() -> Path | None:
    """liger-kernel's `ops` directory in this environment, found without importing it (None when absent)."""
    spec = importlib.util.find_spec("liger_kernel")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "ops"


def liger_kernel(name: str, ops_dir: Path, cache: Path):
    """The jit function `name` (a key of LIGER_KERNELS) cut out of Liger's source in `ops_dir`, imported from a
    file written under `cache`."""
    file, fn, libdevice_fn = LIGER_KERNELS[name]
    text = (ops_dir / file).read_text()
    node = next(n for n in ast.parse(text).body if isinstance(n, ast.FunctionDef) and n.name == fn)
    node.decorator_list = [d for d in node.decorator_list if ast.unparse(d) in ("triton.jit", "jit")]
    source = ("import triton\nimport triton.language as tl\n"
              f"from triton.language.extra.libdevice import {libdevice_fn}\n\n\n{ast.unparse(node)}\n")
    path = cache / f"liger_{fn}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != source:
        path.write_text(source)
    return getattr(import_source(path, source.encode(), interpreted=False), fn)


def compile_liger_layernorm(kernel, *, arch: int, storage: str, d: int = VIT_D) -> CompiledKernel:
    """Liger's LayerNorm forward as `LigerLayerNormFunction` launches it on rows of `d` elements."""
    t = STORAGE[storage]
    block = 1 << (d - 1).bit_length()
    num_warps = 16 if block >= 8192 else 8 if block >= 2048 else 4  # liger's calculate_settings
    signature = {"Y_ptr": f"*{t}", "Y_row_stride": "i32", "X_ptr": f"*{t}", "X_row_stride": "i32",
                 "W_ptr": f"*{t}", "B_ptr": f"*{t}", "Mean_ptr": "*fp32", "RSTD_ptr": "*fp32", "n_cols": "i32",
                 "eps": "fp32"}
    constexprs = {"W_row_stride": 1, "B_row_stride": 1, "Mean_row_stride": 1, "RSTD_row_stride": 1,
                  "BLOCK_SIZE": block}
    k = compile_kernel(kernel, signature, constexprs, {"Y_ptr", "Y_row_stride", "X_ptr", "X_row_stride", "W_ptr",
                                                       "B_ptr", "Mean_ptr", "RSTD_ptr", "n_cols"},
                       arch=arch, num_warps=num_warps)
    return k.with_elements(d)


def compile_liger_dyt(kernel, *, arch: int, storage: str, block_n: int, num_warps: int,
                      d: int = VIT_D) -> CompiledKernel:
    """Liger's DyT forward (`liger_dyt_fwd`, with beta) on rows of `d` elements, one of its autotune configs."""
    t = STORAGE[storage]
    signature = {"X": f"*{t}", "Y": f"*{t}", "Alpha": f"*{t}", "Gamma": f"*{t}", "Beta": f"*{t}"}
    k = compile_kernel(kernel, signature, {"HAVE_BETA": True, "N": d, "BLOCK_N": block_n},
                       {"X", "Y", "Alpha", "Gamma", "Beta"}, arch=arch, num_warps=num_warps)
    return k.with_elements(min(block_n, d))
