"""Compile the kernels with a generated expression for a GPU architecture without a GPU, and read what they became.

`triton.compile(ASTSource(...), target=GPUTarget("cuda", 90, 32))` produces PTX and a cubin on any machine;
the `cuobjdump` shipped in Triton's wheel reads registers and stack (spills) per kernel from the cubin, and its
SASS (`CompiledKernel.profile()`: instructions, MUFU operations, loop structure; see `sass.py`). Needs Triton
only (no torch, no GPU): `exprc bench static` runs it under other Triton versions too.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, replace
from types import ModuleType

from ..runtime.kernels.support import for_storage
from .sass import SassProfile, parse_sass, profile

STORAGE = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


@dataclass(frozen=True)
class CompiledKernel:
    arch: int
    ptx: str
    cubin: bytes
    registers: int | None  # per thread, from cuobjdump (None when cuobjdump is unavailable)
    stack: int | None  # bytes of stack per thread: > 0 means spills
    num_warps: int = 4
    elements: int = 0  # elements one program computes (per loop iteration, for a kernel looping over rows)
    shared: int = 0  # bytes of shared memory per program (Triton's metadata)

    def with_elements(self, elements: int) -> CompiledKernel:
        return replace(self, elements=elements)

    def count(self, pattern: str) -> int:
        """Occurrences of a PTX instruction pattern (a regex), e.g. r"ld\\.global" or r"tanh\\.approx\\.f32"."""
        return len(re.findall(pattern, self.ptx))

    def sass(self) -> str:
        """The SASS of the cubin (`cuobjdump -sass`)."""
        return disassemble(self.cubin)

    def profile(self) -> SassProfile:
        """Instructions, MUFU operations and loop structure of the SASS (see `sass.py`)."""
        return profile(parse_sass(self.sass()))


def _cuobjdump() -> str | None:
    import triton

    path = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    return path if os.path.exists(path) else None


def _cuobjdump_text(cubin: bytes, flag: str) -> str | None:
    tool = _cuobjdump()
    if tool is None:
        return None
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        return subprocess.run([tool, flag, f.name], capture_output=True, text=True, check=True).stdout


def disassemble(cubin: bytes) -> str:
    """`cuobjdump -sass` of `cubin` (RuntimeError when this Triton ships no cuobjdump)."""
    text = _cuobjdump_text(cubin, "-sass")
    if text is None:
        raise RuntimeError("this Triton ships no cuobjdump (triton/backends/nvidia/bin/)")
    return text


def resource_usage(cubin: bytes) -> tuple[int | None, int | None]:
    """(registers, stack bytes) of the (single) kernel in `cubin`, read by cuobjdump."""
    text = _cuobjdump_text(cubin, "--dump-resource-usage")
    if text is None:
        return None, None
    reg = re.search(r"REG:(\d+)", text)
    stack = re.search(r"STACK:(\d+)", text)
    return (int(reg.group(1)) if reg else None), (int(stack.group(1)) if stack else None)


def compile_kernel(kernel, signature: dict[str, str], constexprs: dict, aligned: set[str], *, arch: int,
                   num_warps: int, num_stages: int | None = None) -> CompiledKernel:
    """Compile the jit function `kernel` for sm_`arch` without a GPU. `signature`: Triton type of every runtime
    argument by name; `constexprs`: value of every constexpr argument (`F` included); `aligned`: arguments
    declared 16-divisible, as Triton specializes them at launch for aligned tensors and ViT/LLM widths."""
    import triton
    from triton.backends.compiler import GPUTarget

    names = kernel.arg_names
    signature = {**signature, **{name: "constexpr" for name in constexprs}}
    attrs = {(names.index(name),): [["tt.divisibility", 16]] for name in aligned}
    src = triton.compiler.ASTSource(fn=kernel, signature=signature, constexprs=constexprs, attrs=attrs)
    options = {"num_warps": num_warps} if num_stages is None else {"num_warps": num_warps, "num_stages": num_stages}
    compiled = triton.compile(src, target=GPUTarget("cuda", arch, 32), options=options)
    registers, stack = resource_usage(compiled.asm["cubin"])
    return CompiledKernel(arch, compiled.asm["ptx"], compiled.asm["cubin"], registers, stack, num_warps,
                          shared=int(getattr(compiled.metadata, "shared", 0) or 0))


def _compiled_family(name: str, expr: ModuleType) -> ModuleType:
    from ..runtime.kernels import family
    from ..runtime.kernels.support import is_interpreted

    if is_interpreted(expr.expr_fn):
        raise ValueError(f"{expr.__name__} was imported under TRITON_INTERPRET=1: import it compiled to compile it")
    return family(name, interpreted=False)


def compile_elementwise(expr: ModuleType, *, arch: int = 90, storage: str = "float32", fast_asm: bool = True,
                        d: int = 768, rows: int = 1 << 16, num_warps: int = 4,
                        index_bits: int = 32) -> CompiledKernel:
    """Compile the element-wise kernel with the expression module `expr` for sm_`arch`, for x of `rows` rows of
    `d` elements, with the tile the launcher's `launch_config` picks for them (`rows` large: the bandwidth-bound
    case; a multiple of the tile: no masks, `rows` odd: rows masked). Pointers are declared 16-divisible, as
    Triton specializes them at launch for aligned tensors; `index_bits=64`: M as a 64-bit integer (Triton passes
    it so past 2**31)."""
    expr = for_storage(expr, storage)
    kernels = _compiled_family("elementwise", expr)
    t = STORAGE[storage]
    block_m, block_d, num_warps = kernels.launch_config(rows, d, {"fp32": 4}.get(t, 2), num_warps)
    signature = {"x_ptr": f"*{t}", "w_ptr": f"*{t}", "b_ptr": f"*{t}", "y_ptr": f"*{t}",
                 "M": "i64" if index_bits == 64 else "i32"}
    constexprs = {"D": d, "F": expr.expr_fn, "FAST_ASM": fast_asm, "BLOCK_M": block_m, "BLOCK_D": block_d,
                  "EVEN_M": rows % block_m == 0}
    return compile_kernel(kernels.expr_norm_kernel, signature, constexprs, {"x_ptr", "w_ptr", "b_ptr", "y_ptr"},
                          arch=arch, num_warps=num_warps).with_elements(block_m * block_d)


EPILOGUE_FLAGS = {"HAS_BIAS": True, "HAS_SCALE": False, "HAS_RESIDUAL": True, "WRITE_R": True, "HAS_NORM_W": True,
                  "HAS_NORM_B": True}


def _compile_matmul(family_name: str, kernel_name: str, expr: ModuleType, flags: dict, *, arch: int, storage: str,
                    config, input_precision: str = "ieee") -> CompiledKernel:
    expr = for_storage(expr, storage)
    kernels = _compiled_family(family_name, expr)
    signature = {name: f"*{STORAGE[storage]}" for name in kernels.POINTERS}
    signature.update(M="i32", N="i32", K="i32", M_BUCKET="i32")
    constexprs = {"F": expr.expr_fn, "FAST_ASM": True, "INPUT_PRECISION": input_precision, "EVEN_K": True,
                  "DOT_IN_F32": False, **flags, **config.meta()}
    # M stays unconstrained: ViT's token counts are ragged
    return compile_kernel(getattr(kernels, kernel_name), signature, constexprs,
                          set(kernels.POINTERS) | {"N", "K", "M_BUCKET"}, arch=arch, num_warps=config.num_warps,
                          num_stages=config.num_stages).with_elements(config.block_m * config.block_n)


def compile_epilogue(expr: ModuleType, *, arch: int = 90, storage: str = "bfloat16", config=None,
                     input_precision: str = "ieee", **flags: bool) -> CompiledKernel:
    """Compile the matmul-epilogue kernel with the expression module `expr` for sm_`arch` (`flags` override
    EPILOGUE_FLAGS; `config` a `tiles.TileConfig`, default the first of MATMUL_CONFIGS; `input_precision` "tf32"
    for f32 inputs where torch allows TF32, as the launcher passes it)."""
    from ..runtime.kernels.tiles import MATMUL_CONFIGS

    return _compile_matmul("matmul_epilogue", "fused_linear_epilogue", expr, {**EPILOGUE_FLAGS, **flags}, arch=arch,
                           storage=storage, config=config or MATMUL_CONFIGS[0], input_precision=input_precision)


def compile_prologue(expr: ModuleType, *, arch: int = 90, storage: str = "bfloat16", config=None,
                     has_bias: bool = True, input_precision: str = "ieee") -> CompiledKernel:
    """Compile the matmul-prologue kernel with the expression module `expr` for sm_`arch` (`config` default: the
    first of PROLOGUE_CONFIGS)."""
    from ..runtime.kernels.tiles import PROLOGUE_CONFIGS

    return _compile_matmul("matmul_prologue", "fused_prologue_linear", expr, {"HAS_BIAS": has_bias}, arch=arch,
                           storage=storage, config=config or PROLOGUE_CONFIGS[0], input_precision=input_precision)


def compile_backward(expr: ModuleType, *, arch: int = 90, storage: str = "bfloat16", d: int = 768,
                     has_dr: bool = False) -> CompiledKernel:
    """Compile the element-wise backward kernel (dx, partial dw/db) with the expression module `expr` for rows
    of `d` elements, with the BLOCK_M, BLOCK_D and num_warps its launcher picks."""
    expr = for_storage(expr, storage)
    kernels = _compiled_family("elementwise_backward", expr)
    _, _, block_m, num_warps = kernels.launch_config(1 << 16, d, 132)
    t = STORAGE[storage]
    signature = {"x_ptr": f"*{t}", "dy_ptr": f"*{t}", "w_ptr": f"*{t}", "dr_ptr": f"*{t}", "dx_ptr": f"*{t}",
                 "partial_ptr": "*fp32", "M": "i32", "D": "i32", "rows_per_program": "i32"}
    block_d = 1 << (d - 1).bit_length()
    constexprs = {"F": expr.expr_fn, "G": expr.expr_grad_fn, "FAST_ASM": True, "HAS_W": True, "HAS_DR": has_dr,
                  "BLOCK_M": block_m, "BLOCK_D": block_d}
    return compile_kernel(kernels.expr_norm_backward_kernel, signature, constexprs,
                          {"x_ptr", "dy_ptr", "w_ptr", "dr_ptr", "dx_ptr", "partial_ptr", "D", "rows_per_program"},
                          arch=arch, num_warps=num_warps).with_elements(block_m * d)
