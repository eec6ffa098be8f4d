"""Compile a generated element-wise kernel for a GPU architecture without a GPU, and read what it became.

`triton.compile(ASTSource(...), target=GPUTarget("cuda", 90, 32))` produces PTX and a cubin on any machine;
the `cuobjdump` shipped in Triton's wheel reads registers and stack (spills) per kernel from the cubin.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from types import ModuleType

STORAGE = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


@dataclass(frozen=True)
class CompiledKernel:
    arch: int
    ptx: str
    cubin: bytes
    registers: int | None  # per thread, from cuobjdump (None when cuobjdump is unavailable)
    stack: int | None  # bytes of stack per thread: > 0 means spills

    def count(self, pattern: str) -> int:
        """Occurrences of a PTX instruction pattern (a regex), e.g. r"ld\\.global" or r"tanh\\.approx\\.f32"."""
        return len(re.findall(pattern, self.ptx))


def _cuobjdump() -> str | None:
    import triton

    path = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    return path if os.path.exists(path) else None


def resource_usage(cubin: bytes) -> tuple[int | None, int | None]:
    """(registers, stack bytes) of the (single) kernel in `cubin`, read by cuobjdump."""
    tool = _cuobjdump()
    if tool is None:
        return None, None
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        text = subprocess.run([tool, "--dump-resource-usage", f.name], capture_output=True, text=True,
                              check=True).stdout
    reg = re.search(r"REG:(\d+)", text)
    stack = re.search(r"STACK:(\d+)", text)
    return (int(reg.group(1)) if reg else None), (int(stack.group(1)) if stack else None)


def compile_elementwise(module: ModuleType, *, arch: int = 90, storage: str = "float32", fast_asm: bool = True,
                        block: int | None = None, num_warps: int = 4, index_bits: int = 32) -> CompiledKernel:
    """Compile `module.expr_norm_kernel` of a generated element-wise module for sm_`arch`.

    `block=None` takes BLOCK and num_warps from the module's `launch_config`. Pointers and sizes are declared
    16-divisible, as Triton specializes them at launch for aligned tensors with a multiple-of-16 element count
    and width (ViT's 768, LLMs' 4096).
    """
    import triton
    from triton.backends.compiler import GPUTarget

    t = STORAGE[storage]
    if block is None:  # what the launcher picks
        block, num_warps = module.launch_config(1 << 20, {"fp32": 4}.get(t, 2))
    n = "i64" if index_bits == 64 else "i32"
    signature = {"x_ptr": f"*{t}", "w_ptr": f"*{t}", "b_ptr": f"*{t}", "y_ptr": f"*{t}", "n_elements": n,
                 "D": "i32", "FAST_ASM": "constexpr", "BLOCK": "constexpr"}
    attrs = {(i,): [["tt.divisibility", 16]] for i in range(6)}
    src = triton.compiler.ASTSource(fn=module.expr_norm_kernel, signature=signature,
                                    constexprs={"FAST_ASM": fast_asm, "BLOCK": block}, attrs=attrs)
    compiled = triton.compile(src, target=GPUTarget("cuda", arch, 32), options={"num_warps": num_warps})
    cubin = compiled.asm["cubin"]
    registers, stack = resource_usage(cubin)
    return CompiledKernel(arch, compiled.asm["ptx"], cubin, registers, stack)
