"""Static checks of the fused matmul kernels, without a GPU: `triton.compile` for sm_90 and sm_80, then

- no register spills: `cuobjdump --dump-resource-usage` on the cubin says STACK:0, and the PTX has no `.local`;
- memory traffic read off the PTX: y and r are each stored exactly once per output element, and the epilogue
  loads nothing but bias, layer scale, residual, w and b (the expression itself adds no global load).

Compiling takes seconds per kernel, so the default run covers the tile configurations nearest the register limit
with the register-heaviest expression of the paper (blocks.2.norm1, three tanh), compiled in parallel; the `slow`
test (EXPRC_SLOW_TESTS=1) sweeps every configuration for every distinct expression of examples/vit_b16_paper.json.
"""

from __future__ import annotations

import multiprocessing
import os
import re
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from exprc.runtime.kernels.tiles import MATMUL_CONFIGS, PROLOGUE_CONFIGS, TileConfig

triton = pytest.importorskip("triton")

DEEP = "-0.84*x + 1.31*clip(2*x) + 0.548*tanh(tanh(tanh(x)) + 0.227)"  # most registers in the epilogue
CHEAP_WITH_TANH = "-0.687*x + clip(1.99*x) + clip(clip(tanh(x)) + 0.154)"  # dearer than any prologue candidate
PAPER = Path(__file__).resolve().parent.parent / "examples" / "vit_b16_paper.json"
ARCHS = (90, 80)
SMALL = TileConfig(64, 64, 64, 8, 4, 4)
ELEMENT_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


def _compile(case: tuple):
    """(kind, expr, arch, storage, config, flags as sorted pairs) -> CompiledKernel; runs in a worker process."""
    kind, expr, arch, storage, config, flags = case
    flags = dict(flags)
    os.environ.pop("TRITON_INTERPRET", None)  # compiled, not interpreted, kernels
    from exprc.codegen.compile_check import compile_epilogue, compile_prologue
    from exprc.compiler import expression_module

    module = expression_module(expr, interpreted=False)
    if kind == "epilogue":
        return compile_epilogue(module, arch=arch, storage=storage, config=config, **flags)
    return compile_prologue(module, arch=arch, storage=storage, config=config, **flags)


def _compile_all(cases: list[tuple]) -> dict[tuple, object]:
    """Compile every case, as many at once as there are CPUs (fresh processes: no interpreter state)."""
    workers = max(1, min(len(cases), os.cpu_count() or 1))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return dict(zip(cases, pool.map(_compile, cases), strict=True))


def _key(c: TileConfig) -> tuple:
    return (c.block_m, c.block_n, c.block_k, c.num_warps, c.num_stages)


# the tile configurations closest to the 255-register limit (measured: 170-255 registers; the 64x64 ones use
# about half, sm_80 is the tighter target for f32 and the prologue); the slow test compiles every configuration
TIGHT_EPILOGUE = [c for c in MATMUL_CONFIGS if c.block_m * c.block_n >= 128 * 64 and c.block_k == 64]
TIGHT_PROLOGUE = [c for c in PROLOGUE_CONFIGS if c.block_m == 128]
SPILL_CASES = (
    [("epilogue", DEEP, arch, "bfloat16", c, (("HAS_SCALE", True),)) for arch in ARCHS for c in TIGHT_EPILOGUE]
    + [("epilogue", DEEP, 80, "float32", MATMUL_CONFIGS[4], ())]  # f32 runs only BLOCK_K = 32 tiles
    + [("prologue", CHEAP_WITH_TANH, 80, "bfloat16", c, ()) for c in TIGHT_PROLOGUE]
    + [("prologue", CHEAP_WITH_TANH, 80, "float32", PROLOGUE_CONFIGS[0], ())]
)
TRAFFIC_FLAGS = {
    "all": {},
    "no-r": {"WRITE_R": False},
    "no-residual": {"HAS_RESIDUAL": False},
    "none": {"HAS_BIAS": False, "HAS_RESIDUAL": False, "HAS_NORM_W": False, "HAS_NORM_B": False},
}
TRAFFIC_CASES = [("epilogue", DEEP, 90, "bfloat16", SMALL, tuple(sorted(f.items()))) for f in TRAFFIC_FLAGS.values()]
TRAFFIC_CASES += [("epilogue", "x", 90, "bfloat16", SMALL, ())]  # the identity: f's own loads, if any


@pytest.fixture(scope="module")
def compiled():
    return _compile_all(SPILL_CASES + TRAFFIC_CASES)


def _global_bytes(ptx: str, op: str) -> int:
    """Bytes one thread moves with the `op` ("ld" or "st") global instructions in the PTX (each executes once:
    the kernel has no loop around its epilogue)."""
    total = 0
    for suffix in re.findall(rf"\b{op}\.global((?:\.[a-z0-9]+)*)", ptx):
        vec = re.search(r"\.v(\d+)", suffix)
        bits = re.search(r"\.[bfsu](\d+)\b", suffix)
        total += (int(vec.group(1)) if vec else 1) * int(bits.group(1)) // 8
    return total


@pytest.mark.parametrize("case", SPILL_CASES, ids=lambda c: f"{c[0]}-sm{c[2]}-{c[3]}-{'x'.join(map(str, _key(c[4])))}")
def test_compiles_without_spills(compiled, case):
    kernel = compiled[case]
    assert kernel.ptx and kernel.cubin
    assert ".local" not in kernel.ptx
    if kernel.stack is None:
        pytest.skip("cuobjdump not shipped with this Triton")
    assert kernel.stack == 0, f"{kernel.stack} bytes of stack (spills) with {kernel.registers} registers"
    assert kernel.registers <= 255


def _traffic(compiled, name: str, expr: str = DEEP) -> tuple[int, int]:
    kernel = compiled[("epilogue", expr, 90, "bfloat16", SMALL, tuple(sorted(TRAFFIC_FLAGS.get(name, {}).items())))]
    return _global_bytes(kernel.ptx, "ld"), _global_bytes(kernel.ptx, "st")


def test_y_and_r_are_each_stored_once_per_element(compiled):
    threads = SMALL.num_warps * 32
    tile = SMALL.block_m * SMALL.block_n * ELEMENT_BYTES["bfloat16"]
    assert _traffic(compiled, "all")[1] * threads == 2 * tile  # r and y
    assert _traffic(compiled, "no-r")[1] * threads == tile  # y alone


def test_epilogue_loads_only_bias_residual_w_and_b(compiled):
    threads = SMALL.num_warps * 32
    tile = SMALL.block_m * SMALL.block_n * ELEMENT_BYTES["bfloat16"]
    row = SMALL.block_n * ELEMENT_BYTES["bfloat16"]
    loads = {name: _traffic(compiled, name)[0] for name in TRAFFIC_FLAGS}
    assert loads["none"] == 0  # A and W arrive by cp.async into shared memory: the main loop has no ld.global
    residual = loads["all"] - loads["no-residual"]
    assert residual * threads == tile  # the residual tile, read exactly once
    vectors = loads["no-residual"] - loads["none"]  # bias, w and b
    assert 0 < vectors <= 3 * row  # each thread reads its columns of each vector, once
    # and the expression itself reads nothing from memory (constants are immediates)
    assert _traffic(compiled, "all", expr="x")[0] == loads["all"]


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("EXPRC_SLOW_TESTS"), reason="about 330 compiles (~15 min on 2 cores): set "
                    "EXPRC_SLOW_TESTS=1 to run")
def test_every_paper_expression_compiles_without_spills():
    from exprc.frontend.layer_files import read_layers

    exprs = list(dict.fromkeys(layer.expr for layer in read_layers(PAPER)))
    cases = [("epilogue", e, arch, "bfloat16", c, ()) for e in exprs for arch in ARCHS for c in MATMUL_CONFIGS]
    cases += [("prologue", e, arch, storage, c, ()) for e in exprs[:4] for arch in ARCHS
              for storage in ("bfloat16", "float32") for c in PROLOGUE_CONFIGS]
    for case, kernel in _compile_all(cases).items():
        assert kernel.stack in (0, None) and ".local" not in kernel.ptx, (case[1], case[2], case[4], kernel.stack)
