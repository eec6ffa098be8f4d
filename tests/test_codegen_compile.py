"""The element-wise kernel with every generated expression compiles for real (sm_90 and sm_80, no GPU needed),
without spills, with 16-byte vector loads of x, w and b and 16-byte stores, and with `tanh.approx.f32` exactly in
fast mode.

The interpreter accepts code the real compiler rejects (and never runs the inline PTX of fast mode), so this is
the check that the kernels a GPU would run are valid.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from exprc.codegen.compile_check import compile_elementwise
from exprc.compiler import compile_expr, expression_module
from exprc.frontend.layer_files import read_layers
from exprc.ir import Op
from exprc.passes.pipeline import optimize
from exprc.runtime.kernels.support import is_interpreted

ROOT = Path(__file__).resolve().parents[1]
PAPER = read_layers(ROOT / "examples" / "vit_b16_paper.json")
ELEMENTS_PER_THREAD = 8  # launch_config: 32 bytes of f32 x per thread
CASES = [(mode, arch) for mode in ("precise", "fast") for arch in (90, 80)] + [("horner", 90)]


@pytest.fixture(scope="module")
def compiled_modules() -> dict[tuple[str, str], object]:
    """(mode, layer name) -> generated expression module, imported in compiled (not interpreted) mode."""
    return {(mode, layer.name): expression_module(compile_expr(layer.ir, mode), interpreted=False)
            for mode in ("precise", "fast", "horner") for layer in PAPER}


@pytest.mark.parametrize("mode, arch", CASES, ids=[f"{m}-sm{a}" for m, a in CASES])
@pytest.mark.parametrize("layer", list(PAPER), ids=lambda layer: layer.name)
def test_paper_kernel_compiles(compiled_modules, layer, mode, arch) -> None:
    module = compiled_modules[mode, layer.name]
    assert not is_interpreted(module.expr_fn)
    k = compile_elementwise(module, arch=arch, storage="float32", fast_asm=True)
    assert k.stack == 0, f"spills: {k.stack} bytes of stack ({k.registers} registers)"
    assert k.count(r"ld\.global\.v4\.b32") == 3 * ELEMENTS_PER_THREAD // 4  # x, w, b: 16-byte vectors
    assert k.count(r"ld\.global") == 3 * ELEMENTS_PER_THREAD // 4
    assert k.count(r"st\.global\.v4\.b32") == k.count(r"st\.global") == ELEMENTS_PER_THREAD // 4
    approx = sum(n.op is Op.TANH_APPROX for n in optimize(layer.ir, mode).root.toposort())
    assert k.count(r"tanh\.approx\.f32") == approx * ELEMENTS_PER_THREAD


@pytest.mark.parametrize("storage", ["bfloat16", "float16"])
def test_half_storage_compiles(compiled_modules, storage) -> None:
    """16-bit storage: the same loads and stores, 8 elements to a 16-byte vector, 16 elements per thread."""
    layer = max(PAPER, key=lambda layer: len(optimize(layer.ir, "precise").root.toposort()))
    k = compile_elementwise(compiled_modules["precise", layer.name], arch=90, storage=storage)
    assert k.stack == 0
    assert k.count(r"ld\.global\.v4\.b32") == k.count(r"ld\.global") == 6
    assert k.count(r"st\.global\.v4\.b32") == k.count(r"st\.global") == 2


def test_int64_offsets_compile(compiled_modules) -> None:
    """A tensor of more than 2**31 elements passes n as i64: still compiles, still vectorized."""
    k = compile_elementwise(compiled_modules["precise", next(iter(PAPER)).name], arch=90, index_bits=64)
    assert k.stack == 0 and k.count(r"ld\.global\.v4\.b32") == 6
