"""The element-wise backward kernel with every paper expression's derivative compiles for real (sm_90 and sm_80,
no GPU needed), without spills, with vector loads of x and dy, and writes dx and the per-program partial
sums with plain stores: no atomics (the reduction of dw and db is deterministic)."""

from __future__ import annotations

from pathlib import Path

import pytest

from exprc.codegen.compile_check import STORAGE, compile_kernel
from exprc.compiler import compile_expr, expression_module
from exprc.frontend.layer_files import read_layers
from exprc.runtime.kernels import family

PAPER = list(read_layers(Path(__file__).resolve().parents[1] / "examples" / "vit_b16_paper.json"))
D = 768


def compile_backward(expr, arch: int, storage: str, has_dr: bool = False):
    kernels = family("elementwise_backward", interpreted=False)
    _, rows, block_m, num_warps = kernels.launch_config(4096, D, 132)
    t = STORAGE[storage]
    signature = {"x_ptr": f"*{t}", "dy_ptr": f"*{t}", "w_ptr": f"*{t}", "dr_ptr": f"*{t}", "dx_ptr": f"*{t}",
                 "partial_ptr": "*fp32", "M": "i32", "D": "i32", "rows_per_program": "i32"}
    constexprs = {"F": expr.expr_fn, "G": expr.expr_grad_fn, "FAST_ASM": True, "HAS_W": True, "HAS_DR": has_dr,
                  "BLOCK_M": block_m, "BLOCK_D": 1024}
    aligned = {"x_ptr", "dy_ptr", "w_ptr", "dr_ptr", "dx_ptr", "partial_ptr", "D"}
    return compile_kernel(kernels.expr_norm_backward_kernel, signature, constexprs, aligned, arch=arch,
                          num_warps=num_warps)


@pytest.mark.parametrize("arch", [90, 80])
@pytest.mark.parametrize("storage", ["float32", "bfloat16"])
def test_backward_kernel_compiles_without_spills(arch: int, storage: str) -> None:
    """The paper's register-heaviest derivative (three nested tanh) and a clip-only one."""
    for text in ("-0.84*x + 1.31*clip(2*x) + 0.548*tanh(tanh(tanh(x)) + 0.227)", "0.698*clip(2.31*x)"):
        expr = expression_module(compile_expr(text), interpreted=False)
        k = compile_backward(expr, arch, storage, has_dr=True)
        assert k.stack == 0, f"{text}: {k.stack} bytes of stack, {k.registers} registers"
        assert k.count(r"(?m)^\s*(atom|red)\.") == 0  # no atomics
        assert k.count(r"ld\.global\.v[24]") > 0  # vector loads (4 elements a thread: 16 bytes of f32, 8 of bf16)


@pytest.mark.parametrize("mode", ["precise", "fast", "horner"])
def test_every_paper_derivative_compiles(mode: str) -> None:
    for layer in PAPER:
        expr = expression_module(compile_expr(layer.ir, mode), interpreted=False)
        k = compile_backward(expr, 90, "bfloat16")
        assert k.stack == 0, (layer.name, mode, k.registers, k.stack)
