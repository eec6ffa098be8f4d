"""The sm_90 TMA + persistent matmul epilogue (`runtime/kernels/matmul_epilogue_tma.py`).

- under Triton's interpreter (CPU): both load paths (tensor descriptors, pointers) against today's kernel (bit for
  bit: same tiles, same K order) and a float64 reference, with programs looping over several tiles;
- its selection rule (`tma_tiles.select_tma`, `ops.tma_tile`): plain Python, any machine;
- compiled for sm_90 without a GPU (the installed Triton, and Triton 3.6 where $EXPRC_TRITON_PYTHON, .tri36/ or
  /work/tri36/ has it): no spills, TMA loads and warpgroup MMAs in the SASS, its epilogue counted;
- on a GPU (marked `gpu`, skipped without CUDA): against today's kernel, and picked by the operator on sm_90.
"""

from __future__ import annotations

import os
import subprocess
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import exprc
from exprc.compiler import expression_module
from exprc.ir import evaluate
from exprc.runtime.kernels import family_for
from exprc.runtime.kernels.tiles import TileConfig
from exprc.runtime.kernels.tma_tiles import persistent_programs, select_tma, tma_configs, tma_tile

DEEP = "-0.84*x + 1.31*clip(2*x) + 0.548*tanh(tanh(tanh(x)) + 0.227)"  # blocks.2.norm1 of the paper
ROUNDING = {torch.float32: 2.0**-24, torch.bfloat16: 2.0**-7, torch.float16: 2.0**-11}  # as test_fused_epilogue
NAMES = ("a", "weight", "bias", "scale", "residual", "norm_weight", "norm_bias")


def _operands(m, n, k, dtype, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).to(dtype).to(device)

    return {"a": rnd(m, k), "weight": rnd(n, k, scale=k ** -0.5), "bias": rnd(n), "scale": rnd(n, scale=0.7),
            "residual": rnd(m, n), "norm_weight": rnd(n), "norm_bias": rnd(n)}


def _outputs(ops):
    m, n = ops["a"].shape[0], ops["weight"].shape[0]
    full = torch.full((m, n), float("nan"), dtype=ops["a"].dtype, device=ops["a"].device)
    return full, full.clone()


def _run_today(module, ops):
    r, y = _outputs(ops)
    family_for("matmul_epilogue", module).launch(module, *(ops[k] for k in NAMES), r, y)
    return r, y


def _run_tma(module, ops, **kw):
    r, y = _outputs(ops)
    family_for("matmul_epilogue_tma", module).launch(module, *(ops[k] for k in NAMES), r, y, **kw)
    return r, y


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("use_tma", [True, False], ids=["descriptors", "pointers"])
def test_persistent_kernel_equals_todays_and_float64(triton_interpret, dtype, use_tma):
    """M, N ragged (3 x 3 tiles of 32, the last ones partial), K = 40 (one full and one zero-filled/masked
    K-tile); 2 programs: each loops over several tiles in grouped order."""
    module = expression_module(DEEP)
    ops = _operands(70, 72, 40, dtype)
    r, y = _run_tma(module, ops, use_tma=use_tma, programs=2)
    r0, y0 = _run_today(module, ops)
    assert torch.equal(r, r0) and torch.equal(y, y0)
    ref_r = ops["a"].double() @ ops["weight"].double().T
    ref_r = (ref_r + ops["bias"].double()) * ops["scale"].double() + ops["residual"].double()
    assert torch.all((r.double() - ref_r).abs() <= ref_r.abs() * ROUNDING[dtype] + 1e-5 * (1 + ref_r.abs()))
    ref_y = torch.from_numpy(evaluate(exprc.parse(DEEP), r.double().numpy()))
    ref_y = ref_y * ops["norm_weight"].double() + ops["norm_bias"].double()
    assert torch.all((y.double() - ref_y).abs() <= ref_y.abs() * ROUNDING[dtype] + 2e-6 * (1 + ref_y.abs()))


@pytest.mark.parametrize("programs", [1, 4, 9, 13])
def test_every_tile_once_whatever_the_grid(triton_interpret, programs):
    """1 program does all 9 tiles; 13 programs: 4 find none. Without r, with the optional inputs left out."""
    module = expression_module("tanh(x)")
    ops = _operands(65, 66, 32, torch.float32, seed=3)
    ops.update(bias=None, scale=None, residual=None)
    r, y = _outputs(ops)
    family_for("matmul_epilogue_tma", module).launch(module, *(ops[k] for k in NAMES), None, y, programs=programs)
    _, y0 = _run_today(module, ops)
    assert torch.equal(y, y0)


# -- selection ------------------------------------------------------------------------------------------------------
H100 = dict(sm_count=132, shared_memory=232448)  # SMs, shared memory per block (opt-in) of an H100/H200
ALIGNED = (1 << 20, 1 << 21)


def _select(capability=(9, 0), m=12608, n=768, k=768, es=2, pointers=ALIGNED, precision="ieee", **device):
    return select_tma(capability, m, n, k, es, pointers, **{**H100, **device}, input_precision=precision)


def test_selection_on_hopper_for_vit_shapes():
    assert _select() == TileConfig(128, 64, 64, 8, 4, 4)  # ViT-B batch 64: 99 x 12 tiles
    assert _select(m=8 * 197) == TileConfig(128, 64, 64, 8, 4, 4)  # batch 8: 13 x 12 tiles
    assert _select(m=4 * 197) == TileConfig(64, 64, 64, 8, 4, 4)  # batch 4: 128-row tiles give 84 < 132 SMs
    assert _select(m=2 * 197) is None  # batch 2: no tile fills the GPU
    assert _select(es=4, precision="tf32") == TileConfig(64, 64, 32, 8, 4, 4)
    assert _select(shared_memory=70000) == TileConfig(64, 64, 64, 8, 4, 4)  # 96 KiB of stages do not fit


@pytest.mark.parametrize("case", [
    pytest.param(dict(capability=(8, 0)), id="sm_80"),
    pytest.param(dict(capability=(10, 0)), id="sm_100"),
    pytest.param(dict(pointers=(1 << 20, (1 << 21) + 8)), id="W-misaligned"),
    pytest.param(dict(pointers=((1 << 20) + 2, 1 << 21)), id="A-misaligned"),
    pytest.param(dict(k=100), id="row-stride-200-bytes"),
    pytest.param(dict(es=4, precision="ieee"), id="f32-ieee"),
    pytest.param(dict(m=300), id="small-M"),
])
def test_selection_falls_back_to_todays_kernel(case):
    assert _select(**case) is None


def test_tile_table_keeps_two_programs_an_sm_whatever_the_expression():
    from exprc.benchmarks.static import ctas_per_sm

    for es in (2, 4):
        for c in tma_configs(es):
            assert c.block_k * es <= 128
            # the most registers ptxas gives a thread, the stages and 64 bytes of barriers and descriptors
            assert ctas_per_sm(90, 255, c.num_warps, c.shared_memory_bytes(es) + 64) >= 2
    c = tma_tile(12608, 768, 2, 132, 232448)
    assert persistent_programs(c, 12608, 768, 132) == 264  # two an SM
    assert persistent_programs(c, 256, 256, 132) == 8  # at most one a tile


def test_operator_rule(monkeypatch):
    """ops.tma_tile: CPU tensors, EXPRC_AUTOTUNE=1 and EXPRC_TMA=0 keep today's kernel; on an (imitated) H100
    with aligned tensors the table's tile."""
    from exprc.runtime import ops

    a, w = torch.empty(12608, 768, dtype=torch.bfloat16), torch.empty(768, 768, dtype=torch.bfloat16)
    assert ops.tma_tile(a, w, 12608, 768, 768) is None  # CPU
    fake = [SimpleNamespace(is_cuda=True, device="cuda:0", element_size=t.element_size, data_ptr=lambda: 1 << 20)
            for t in (a, w)]
    monkeypatch.setattr(ops, "device_limits", lambda x: (132, 232448))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    monkeypatch.setattr(ops, "_precision", lambda x: "ieee")
    assert ops.tma_tile(*fake, 12608, 768, 768) == TileConfig(128, 64, 64, 8, 4, 4)
    # a traced call (fake tensors: torch.compile, torch.export) records today's kernel
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        fa, fw = torch.empty(12608, 768, dtype=torch.bfloat16), torch.empty(768, 768, dtype=torch.bfloat16)
    monkeypatch.setattr(type(fa), "is_cuda", property(lambda self: True))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # never a fake tensor's data_ptr() (deprecated: a made-up address)
        assert ops.tma_tile(fa, fw, 12608, 768, 768) is None
    monkeypatch.setenv("EXPRC_TMA", "0")
    assert ops.tma_tile(*fake, 12608, 768, 768) is None
    monkeypatch.setenv("EXPRC_TMA", "1")
    monkeypatch.setenv("EXPRC_AUTOTUNE", "1")
    assert ops.tma_tile(*fake, 12608, 768, 768) is None


def test_a_tma_tile_whose_kernel_spills_falls_back_to_todays_kernel(monkeypatch) -> None:
    """The TMA kernel has one tile per GEMM (no autotuning): if ptxas spills compiling it for the expression at
    hand (stubbed here: no GPU), it launches nothing and the operator runs today's kernel, whose launcher passes
    over spilling tiles of its own table."""
    import torch.library

    from exprc.runtime import ops
    from exprc.runtime.expr_norm import ExprNorm
    from exprc.runtime.kernels import tiles

    module = expression_module(exprc.compile_expr(DEEP, "precise"), interpreted=False)
    tma = family_for("matmul_epilogue_tma", module)
    launched, compiled = [], []

    class Launches:  # stands in for torch.library.wrap_triton: records each launch's keywords
        def __getitem__(self, grid):
            return lambda *args, **kwargs: launched.append(kwargs)

    monkeypatch.setattr(torch.library, "wrap_triton", lambda fn: Launches())
    monkeypatch.setattr(tma, "ensure_allocator", lambda: None)
    spilled = {"bytes": 8}

    def spills(plain, config, args, flags, grid, even_k):
        compiled.append((plain.__name__, config.kwargs, even_k))
        return spilled["bytes"]

    monkeypatch.setattr(tiles, "compiled_spills", spills)
    o = _operands(256, 64, 64, torch.bfloat16)
    r, y = _outputs(o)
    tile = TileConfig(128, 64, 64, 8, 4, 4)
    assert tma.launch(module, *(o[k] for k in NAMES), r, y, config=tile, spill_free=True) is None
    assert launched == [] and compiled == [("fused_linear_epilogue_tma", tile.meta(), True)]
    spilled["bytes"] = 0
    assert tma.launch(module, *(o[k] for k in NAMES), r, y, config=tile, spill_free=True) == tile
    assert len(launched) == 1 and launched[0]["BLOCK_M"] == 128 and launched[0]["EVEN_K"] is True
    assert tma.launch(module, *(o[k] for k in NAMES), r, y, config=tile) == tile and len(compiled) == 2  # unchecked

    # the operator: a TMA launch that returns None is followed by today's kernel
    runs = []
    stub = SimpleNamespace(launch=lambda *a, **kw: runs.append(("tma", kw["spill_free"])))
    monkeypatch.setattr(ops, "tma_tile", lambda *a: tile)
    monkeypatch.setattr(ops, "family_for", lambda name, expr: stub)
    monkeypatch.setattr(ops, "device_limits", lambda x: (132, 232448))
    monkeypatch.setattr(ops, "_launch_tuned", lambda family, *a: runs.append((family,)))
    key = ExprNorm(64, DEEP).key
    ops.linear_residual_norm(o["a"], o["weight"], o["bias"], None, o["residual"], o["norm_weight"], o["norm_bias"],
                             key, True, True)
    assert runs == [("tma", True), ("matmul_epilogue",)]


# -- static: compiled for sm_90 without a GPU -----------------------------------------------------------------------
def test_compiles_for_sm90_with_tma_and_no_spills():
    from exprc.codegen.compile_tma import compile_epilogue_tma, epilogue_split

    module = expression_module(DEEP, "precise", interpreted=False)
    k = compile_epilogue_tma(module, storage="bfloat16", config=tma_configs(2)[0], HAS_SCALE=True)
    assert k.stack == 0, k.stack
    assert k.count(r"cp\.async\.bulk\.tensor") >= 2  # A and W through TMA
    assert k.count(r"cp\.async\.c[ag]") == 0  # not today's cp.async path
    split = epilogue_split(k.sass())
    assert 0 < split.k_loop < 200 < split.epilogue  # wgmma K loop, then f on 64 elements a thread
    assert split.epilogue_mufu > 0  # three tanh


def test_static_sweep_compiles_the_tma_kind_for_sm90():
    """`exprc bench static` has the kind "epilogue-tma": sm_90 only, every tile the launcher can select (f32 with
    TF32 dots only), recorded with its epilogue split out of the tile loop and its occupancy."""
    from exprc.benchmarks.static import DEFAULT_LAYERS, KIND_SOURCES, compile_job
    from exprc.benchmarks.static_cases import sweep
    from exprc.frontend.layer_files import read_layers

    from exprc.frontend.layer_set import LayerSet

    every = read_layers(DEFAULT_LAYERS)
    layers = LayerSet({la.name: la for la in every if la.name in ("blocks.0.norm1", "blocks.2.norm1")}, every.model,
                      every.clip, every.source)
    jobs, _ = sweep(layers, ("precise",), ("bfloat16", "float32"), (90, 80), only=("epilogue-tma",))
    assert {j.kind for j in jobs} == {"epilogue-tma"} and {j.arch for j in jobs} == {90}
    assert {(j.storage, j.config_name, j.precision) for j in jobs} == {
        ("bfloat16", "128x64x64 w4 s4", "ieee"), ("bfloat16", "64x64x64 w4 s4", "ieee"),
        ("float32", "64x64x32 w4 s4", "tf32")}
    root = Path(__file__).resolve().parents[1] / "exprc"
    assert all((root / name).exists() for name in KIND_SOURCES["epilogue-tma"])
    deep = next(j for j in jobs if "tanh" in j.expr and j.storage == "bfloat16" and j.config.block_m == 64)
    record = compile_job(deep, None)
    assert record["spills"] == 0 and record["ctas_per_sm"] >= 2
    before, k_loop, epilogue = record["loop"]
    assert 0 < k_loop < 200 < epilogue and record["per_element"]["mufu"] > 0


def test_bench_static_passes_kinds_on():
    """`exprc bench static --kinds epilogue-tma` compiles that kind alone (the sweep's `only`)."""
    import argparse

    from exprc.benchmarks import cli

    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    argv = cli.static_argv(p.parse_args(["static", "--kinds", "epilogue-tma", "--arch", "90"]))
    assert argv[argv.index("--kinds") + 1] == "epilogue-tma"
    assert "--kinds" not in cli.static_argv(p.parse_args(["static"]))


def _triton36() -> str | None:
    """A Python with Triton 3.6 (no torch needed), as tests/test_bench_static.py finds one: $EXPRC_TRITON_PYTHON,
    else the checkout's .tri36/, else /work/tri36/."""
    root = Path(__file__).resolve().parents[1]
    for path in (os.environ.get("EXPRC_TRITON_PYTHON"), root / ".tri36/bin/python", Path("/work/tri36/bin/python")):
        if path and Path(path).exists():
            return str(path)
    return None


@pytest.mark.skipif(_triton36() is None, reason="no Triton 3.6 environment ($EXPRC_TRITON_PYTHON or .tri36/)")
def test_compiles_for_sm90_on_triton36_without_spills(tmp_path):
    """The same compile under Triton 3.6 (the GPU machines' version; a torch-less environment)."""
    script = (
        "import sys, types; sys.modules.setdefault('torch', types.ModuleType('torch'))\n"
        "import triton; assert triton.__version__.startswith('3.6'), triton.__version__\n"
        "from exprc.codegen.compile_tma import compile_epilogue_tma\n"
        "from exprc.compiler import compile_expr, expression_module\n"
        "from exprc.runtime.kernels.tma_tiles import tma_configs\n"
        f"m = expression_module(compile_expr({DEEP!r}, 'precise'), interpreted=False)\n"
        "k = compile_epilogue_tma(m, storage='bfloat16', config=tma_configs(2)[0], HAS_SCALE=True)\n"
        "print(k.registers, k.stack, k.count(r'cp\\.async\\.bulk\\.tensor'))\n")
    root = str(Path(__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = root
    out = subprocess.run([_triton36(), "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    registers, stack, tma_loads = map(int, out.stdout.split()[-3:])
    assert stack == 0 and tma_loads >= 2, out.stdout


# -- on a GPU -------------------------------------------------------------------------------------------------------
def _hopper() -> bool:
    return torch.cuda.is_available() and torch.cuda.get_device_capability()[0] == 9


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32], ids=str)  # f16: bf16's code, another type
def test_gpu_tma_kernel_matches_todays_kernel(dtype):
    if not _hopper():
        pytest.skip("TMA + wgmma: sm_90 only")
    from exprc.runtime.ops import device_limits

    module = expression_module(DEEP, interpreted=False)
    ops = _operands(2 * 197 * 8 + 5, 768, 3072, dtype, device="cuda")
    sm, smem = device_limits(ops["a"])
    precision = "tf32" if dtype == torch.float32 else "ieee"
    tile = tma_tile(ops["a"].shape[0], 768, ops["a"].element_size(), sm, smem)
    r, y = _outputs(ops)
    family_for("matmul_epilogue_tma", module).launch(module, *(ops[k] for k in NAMES), r, y,
                                                     input_precision=precision, config=tile, sm_count=sm)
    r0, y0 = _outputs(ops)
    import triton

    from exprc.runtime.ops import table_configs

    configs = table_configs("matmul_epilogue", ops["a"].shape[0], 768, ops["a"])
    config = family_for("matmul_epilogue", module).launch(module, *(ops[k] for k in NAMES), r0, y0,
                                                          input_precision=precision, config=configs)
    torch.cuda.synchronize()
    assert isinstance(config, triton.Config)
    from exprc.runtime.kernels import tiles  # the launcher compiled the table's tile and read ptxas's spills

    assert any(key[1] == tuple(sorted(config.kwargs.items())) and spilled == 0
               for key, spilled in tiles._SPILLS.items())
    # f32 accumulation in another order of K-tiles' MMAs: within the storage dtype's rounding
    tol = 4 * ROUNDING[dtype] if dtype != torch.float32 else 1e-3
    assert torch.allclose(r.float(), r0.float(), rtol=tol, atol=tol), (r.float() - r0.float()).abs().max()
    assert torch.allclose(y.float(), y0.float(), rtol=4 * tol, atol=4 * tol), (y.float() - y0.float()).abs().max()


@pytest.mark.gpu
def test_gpu_operator_picks_tma_and_compiles_and_captures():
    """linear_residual_norm on sm_90 runs the TMA variant (the tile it picks) eager and in a CUDA graph, with the
    same outputs; under torch.compile today's kernel (the outputs of EXPRC_TMA=0)."""
    if not _hopper():
        pytest.skip("TMA + wgmma: sm_90 only")
    from exprc.runtime import ops as exprc_ops

    module = expression_module(DEEP, interpreted=False)
    key = exprc_ops.register(module)
    o = _operands(64 * 197, 768, 3072, torch.bfloat16, device="cuda")
    assert exprc_ops.tma_tile(o["a"], o["weight"], 64 * 197, 768, 3072) is not None

    def fused(a):
        return torch.ops.exprc.linear_residual_norm(a, o["weight"], o["bias"], None, o["residual"],
                                                    o["norm_weight"], o["norm_bias"], key, True, True)

    r, y = fused(o["a"])
    os.environ["EXPRC_TMA"] = "0"
    try:
        r0, y0 = fused(o["a"])
    finally:
        del os.environ["EXPRC_TMA"]
    assert torch.allclose(r.float(), r0.float(), rtol=2**-6, atol=2**-6)
    assert torch.allclose(y.float(), y0.float(), rtol=2**-5, atol=2**-5)
    rc, yc = torch.compile(fused)(o["a"])  # traced: today's kernel, as with EXPRC_TMA=0
    assert torch.equal(rc, r0) and torch.equal(yc, y0)
    graph, static_a = torch.cuda.CUDAGraph(), o["a"].clone()
    fused(static_a)  # compiled and allocator set before capture
    with torch.cuda.graph(graph):
        rg, yg = fused(static_a)
    graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(rg, r) and torch.equal(yg, y)
