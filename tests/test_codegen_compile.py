"""The element-wise kernel with every generated expression compiles for real (sm_90 and sm_80, no GPU needed),
without spills, with 16-byte vector loads of x and stores of y, w and b loaded once per thread (not per row), no
integer division or remainder in the indexing, and with `tanh.approx.f32` exactly in fast mode.

The interpreter accepts code the real compiler rejects (and never runs the inline PTX of fast mode), so this is
the check that the kernels a GPU would run are valid.
"""

from __future__ import annotations

import re
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
ELEMENTS_PER_THREAD = 16  # launch_config: 16 elements of x per thread
ODD_ROWS = (1 << 16) + 1  # not a multiple of the tile: the rows are masked
CASES = [(mode, arch) for mode in ("precise", "fast") for arch in (90, 80)] + [("horner", 90)]


@pytest.fixture(scope="module")
def compiled_modules() -> dict[tuple[str, str], object]:
    """(mode, layer name) -> generated expression module, imported in compiled (not interpreted) mode."""
    return {(mode, layer.name): expression_module(compile_expr(layer.ir, mode), interpreted=False)
            for mode in ("precise", "fast", "horner") for layer in PAPER}


def sass_vectors(k, op: str) -> tuple[int, int]:
    """(16-byte, all) global `op` ("LDG"/"STG") instructions of one thread in the kernel's SASS."""
    text = k.sass()
    return len(re.findall(rf"\b{op}\.E\.128\b", text)), len(re.findall(rf"\b{op}\.E\b", text))


def assert_vectorized(k, storage: str) -> None:
    x_vectors = ELEMENTS_PER_THREAD * {"float32": 4}.get(storage, 2) // 16
    assert sass_vectors(k, "LDG") == (x_vectors + 2, x_vectors + 2)  # x, then w and b once per thread
    assert sass_vectors(k, "STG") == (x_vectors, x_vectors)
    # no integer division or remainder (they compile to I2F + MUFU.RCP + F2I and a 64-bit slow path)
    assert k.profile().opcodes.get("I2F", 0) == 0 and k.count(r"\b(div|rem)\.[su]") == 0


@pytest.mark.parametrize("mode, arch", CASES, ids=[f"{m}-sm{a}" for m, a in CASES])
@pytest.mark.parametrize("layer", list(PAPER), ids=lambda layer: layer.name)
def test_paper_kernel_compiles(compiled_modules, layer, mode, arch) -> None:
    module = compiled_modules[mode, layer.name]
    assert not is_interpreted(module.expr_fn)
    k = compile_elementwise(module, arch=arch, storage="float32", fast_asm=True)
    assert k.stack == 0, f"spills: {k.stack} bytes of stack ({k.registers} registers)"
    assert_vectorized(k, "float32")
    if mode == "horner":  # no special-function unit: no MUFU, no called slow path of IEEE division
        assert (k.profile().mufu, k.profile().calls) == (0, 0)
    approx = sum(n.op is Op.TANH_APPROX for n in optimize(layer.ir, mode).root.toposort())
    assert k.count(r"tanh\.approx\.f32") == approx * ELEMENTS_PER_THREAD


@pytest.mark.parametrize("rows", [1 << 16, ODD_ROWS], ids=["even", "masked"])
@pytest.mark.parametrize("storage", ["bfloat16", "float16"])
def test_half_storage_compiles(compiled_modules, storage, rows) -> None:
    """16-bit storage: 8 elements to a 16-byte vector; rows masked or not, the same loads and stores."""
    layer = max(PAPER, key=lambda layer: len(optimize(layer.ir, "precise").root.toposort()))
    k = compile_elementwise(compiled_modules["precise", layer.name], arch=90, storage=storage, rows=rows)
    assert k.stack == 0
    assert_vectorized(k, storage)


def test_int64_offsets_compile(compiled_modules) -> None:
    """A tensor of more than 2**31 rows passes M as i64: still compiles, still vectorized."""
    k = compile_elementwise(compiled_modules["precise", next(iter(PAPER)).name], arch=90, rows=ODD_ROWS,
                            index_bits=64)
    assert k.stack == 0
    assert_vectorized(k, "float32")


def test_no_column_masks_or_remainders_for_vit_width(compiled_modules) -> None:
    """D = 768 is whole tiles (BLOCK_D = 256): only rows are masked, and only when M is not a multiple of BLOCK_M."""
    from exprc.runtime.kernels import family

    kernels = family("elementwise", interpreted=False)
    assert kernels.launch_config(1 << 16, 768, 2)[1] == 256 and kernels.block_d(48) == 16
    assert kernels.block_d(100) == 128 and kernels.block_d(4096) == 256
    module = compiled_modules["precise", "blocks.0.norm2"]
    even = compile_elementwise(module, arch=90, storage="bfloat16")
    masked = compile_elementwise(module, arch=90, storage="bfloat16", rows=ODD_ROWS)
    assert "@P" not in " ".join(line for line in even.sass().splitlines() if "LDG" in line or "STG" in line)
    assert masked.profile().main > even.profile().main


@pytest.mark.parametrize("d", [1, 3, 100])
def test_bf16_kernels_compile_for_odd_and_narrow_rows(compiled_modules, d) -> None:
    """bf16 is widened two values a register (`widen.py`, inline PTX), which Triton allows only on tensors of an
    even number of elements: a one-column tile (D = 1: the backward kernel's w is [1]) and masked narrow rows must
    still compile, forward and backward."""
    from exprc.codegen.compile_check import compile_backward

    module = compiled_modules["precise", "blocks.0.norm2"]
    for rows in (1, ODD_ROWS):
        assert compile_elementwise(module, arch=90, storage="bfloat16", d=d, rows=rows).stack == 0
    assert compile_backward(module, arch=90, storage="bfloat16", d=d).stack == 0
    wide = compile_elementwise(module, arch=90, storage="bfloat16")  # ViT's width: widened in pairs, no PRMT
    assert wide.count("0xFFFF0000") > 0 and "PRMT" not in wide.sass()
