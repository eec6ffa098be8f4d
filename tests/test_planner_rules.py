"""The planner's rules for the fused matmul: an epilogue that would dominate its matmul is refused (cuBLAS and the
element-wise kernel instead), and at run time a GEMM too small to give every SM a tile skips the fused kernel."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from exprc.codegen.planner import ViTContext, epilogue_dominates, plan_layer
from exprc.compiler import compile_expr, compile_layers
from exprc.frontend.layer_files import read_layers
from exprc.passes.auto_lowering import element_cost
from exprc.runtime.kernels.tiles import MATMUL_CONFIGS, fills_device

ROOT = Path(__file__).resolve().parents[1]
DEEP = "-0.84*x + 1.31*clip(2*x) + 0.548*tanh(tanh(tanh(x)) + 0.227)"
H100 = (132, 228 * 1024)


def test_an_epilogue_dominating_its_matmul_is_refused() -> None:
    root = compile_expr(DEEP, "precise").result.optimized
    precise, fast = element_cost(root, "precise"), element_cost(root, "fast")
    assert precise[1] == 6 and fast[1] == 3  # MUFU per element: 2 per tanh in libdevice, 1 with tanh.approx
    assert "dominate" in epilogue_dominates(precise, 768)  # attn.proj before norm2: K = 768
    assert epilogue_dominates(precise, 3072) is None  # fc2 before norm1: four times the matmul
    assert epilogue_dominates(fast, 768) is None
    assert epilogue_dominates(precise, 256) is None  # a short matmul: a second launch would cost more
    plan = plan_layer(75, has_producer=True, consumer_n=None, element_cost=precise, producer_k=768)
    assert plan.kind == "standalone" and "cuBLAS runs the matmul" in plan.reason
    assert plan_layer(75, has_producer=True, element_cost=fast, producer_k=768).kind == "epilogue"


def test_vit_context_knows_each_producer() -> None:
    ctx = ViTContext()
    assert [ctx.producer_k(n) for n in ("blocks.0.norm1", "blocks.1.norm1", "blocks.3.norm2", "norm")] == \
        [None, 3072, 768, 3072]


def test_paper_plan_under_auto_and_precise() -> None:
    paper = read_layers(ROOT / "examples" / "vit_b16_paper.json")
    auto = {la.name: la.plan for la in compile_layers(paper, "auto").layers}
    precise = {la.name: la.plan for la in compile_layers(paper, "precise").layers}
    assert [n for n, p in auto.items() if p.kind == "standalone"] == ["blocks.11.norm2"]  # kept precise: 78 instr/el
    assert auto["blocks.2.norm1"].kind == "epilogue"  # fast's three tanh fit beside the K=3072 matmul
    assert "dominate" in precise["blocks.11.norm2"].reason


@pytest.mark.parametrize("batch, fills", [(1, False), (3, False), (4, True), (32, True)])
def test_small_batches_do_not_fill_an_h100(batch, fills) -> None:
    assert fills_device(MATMUL_CONFIGS, 197 * batch, 768, 2, *H100) is fills


@pytest.mark.gpu
def test_small_m_runs_cublas_and_the_elementwise_kernel(monkeypatch) -> None:
    from exprc import FusedLinearExprNorm
    from exprc.runtime.kernels import family_for

    fused = FusedLinearExprNorm(3072, 768, DEEP).cuda().to(torch.bfloat16)
    kernels = family_for("matmul_epilogue", fused.norm.kernel)
    launched = []
    original = kernels.launch
    monkeypatch.setattr(kernels, "launch", lambda *a, **k: launched.append(a[1].shape) or original(*a, **k))
    for m in (197, 197 * 8):
        a = torch.randn(m, 3072, device="cuda", dtype=torch.bfloat16)
        residual = torch.randn(m, 768, device="cuda", dtype=torch.bfloat16)
        with torch.no_grad():
            r, y = fused(a, residual)
            ref_r = residual + torch.nn.functional.linear(a, fused.linear.weight, fused.linear.bias)
        torch.testing.assert_close(r.float(), ref_r.float(), rtol=2e-2, atol=2e-2)
        torch.testing.assert_close(y, fused.norm(r), rtol=2e-2, atol=2e-2)
    assert launched == [(197 * 8, 3072)]  # batch 1 took cuBLAS + the element-wise kernel


def test_only_cheap_f_goes_to_the_prologue() -> None:
    from exprc.codegen.planner import prologue_fits

    clip = element_cost(compile_expr("-0.522*x + 2.11*clip(x)", "precise").result.optimized, "precise")
    tanh = element_cost(compile_expr("tanh(x)", "precise").result.optimized, "precise")
    assert prologue_fits(clip) and not prologue_fits(tanh)
    # a narrow consumer would make even three tanh "pay" in the prologue by FLOPs; the register rule says no
    plan = plan_layer(75, has_producer=False, consumer_n=256, element_cost=element_cost(
        compile_expr(DEEP, "precise").result.optimized, "precise"))
    assert plan.kind == "standalone" and "too many for the prologue kernel" in plan.reason


@pytest.mark.parametrize("expr, fused", [("-0.522*x + 2.11*clip(x)", True), ("tanh(x)", False)])
def test_norm_linear_runs_the_prologue_kernel_only_for_cheap_f(triton_interpret, monkeypatch, expr, fused) -> None:
    from exprc import ExprNorm
    from exprc.runtime.fused_linear import FusedExprNormLinear
    from exprc.runtime.kernels import family_for

    torch.manual_seed(0)
    module = FusedExprNormLinear(ExprNorm(16, expr), torch.nn.Linear(16, 8))
    kernels = family_for("matmul_prologue", module.norm.kernel)
    launched = []
    original = kernels.launch
    monkeypatch.setattr(kernels, "launch", lambda *a, **k: launched.append(1) or original(*a, **k))
    x = torch.randn(5, 16)
    with torch.no_grad():
        out = module(x)
        ref = module.linear(module.norm(x))
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    assert bool(launched) is fused
