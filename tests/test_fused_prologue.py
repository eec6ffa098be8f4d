"""The matmul-prologue kernel (norm evaluated on A tiles, affine folded into the Linear) and the planner."""

from __future__ import annotations

import pytest
import torch

import exprc
from exprc.codegen.planner import KINDS, ViTContext, plan_layer
from exprc.compiler import compile_expr, compile_layers, expression_module
from exprc.ir import evaluate
from exprc.runtime.fused_linear import fold_norm_affine
from exprc.runtime.kernels import family_for
from exprc.runtime.kernels.support import is_interpreted

CHEAP = "-0.522*x + 2.11*clip(x)"  # blocks.0.norm1: 3 FLOPs
COSTLY = "-0.84*x + 1.31*clip(2*x) + 0.548*tanh(tanh(tanh(x)) + 0.227)"  # blocks.2.norm1: 71 FLOPs optimized


def test_folding_is_exact_algebra():
    g = torch.Generator().manual_seed(0)
    W, c = torch.randn(5, 7, generator=g, dtype=torch.float64), torch.randn(5, generator=g, dtype=torch.float64)
    w, b = torch.randn(7, generator=g, dtype=torch.float64), torch.randn(7, generator=g, dtype=torch.float64)
    z = torch.randn(3, 7, generator=g, dtype=torch.float64)  # f(x), whatever f is
    Wf, bf = fold_norm_affine(W, c, w, b)
    torch.testing.assert_close(z @ Wf.T + bf, (z * w + b) @ W.T + c, rtol=1e-12, atol=1e-12)
    Wf, bf = fold_norm_affine(W, None, None, b)  # no Linear bias, no norm scale
    torch.testing.assert_close(z @ Wf.T + bf, (z + b) @ W.T, rtol=1e-12, atol=1e-12)
    assert fold_norm_affine(W, None, w, None)[1] is None


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("expr", [CHEAP, COSTLY, "0.5*exp(-x*x) + 1.0"])  # the last: f(0) != 0 on padded K
def test_prologue_matches_float64_reference(triton_interpret, dtype, expr):
    module = expression_module(expr)
    assert is_interpreted(module.expr_fn)
    g = torch.Generator().manual_seed(3)
    m, n, k = 37, 45, 40  # K not a multiple of the 32-wide tile: the padding must contribute nothing
    x = (torch.randn(m, k, generator=g, dtype=torch.float64) * 2).to(dtype)
    weight = (torch.randn(n, k, generator=g, dtype=torch.float64) * k ** -0.5).to(dtype)
    bias = torch.randn(n, generator=g, dtype=torch.float64).to(dtype)
    out = torch.full((m, n), float("nan"), dtype=dtype)
    family_for("matmul_prologue", module).launch(module, x, weight, bias, out)
    fx = torch.from_numpy(evaluate(exprc.parse(expr), x.double().numpy()))
    ref = fx @ weight.double().T + bias.double()
    # bf16: f(x) enters the tensor-core dot rounded to bf16 (each term off by at most one ulp: the interpreter
    # rounds toward zero), and out is rounded once more; f32: accumulation error only
    ulp = 2.0**-7 if dtype == torch.bfloat16 else 1e-6
    bound = ulp * (fx.abs() @ weight.double().abs().T) + ulp * ref.abs() + 1e-6
    assert torch.all((out.double() - ref).abs() <= bound), ((out.double() - ref).abs() / bound).max()
    assert (out.double() - ref).abs().max() < 0.1  # and the bound is not vacuous


@pytest.mark.parametrize("expr,has_producer,consumer_n,kind", [
    pytest.param(CHEAP, True, 2304, "prologue", id="cheap-qkv"),
    pytest.param(CHEAP, False, 2304, "prologue", id="cheap-no-producer"),
    pytest.param(COSTLY, True, 2304, "epilogue", id="costly-qkv"),
    pytest.param(COSTLY, False, 3072, "standalone", id="costly-no-producer"),
    pytest.param(COSTLY, True, None, "epilogue", id="no-linear-consumer"),
    pytest.param(CHEAP, False, None, "standalone", id="nothing-to-fuse"),
    pytest.param("-0.488*x + clip(2.85*x) + 0.217", True, 3072, "epilogue", id="4-flops-fc1"),
    pytest.param("-0.488*x + clip(2.85*x) + 0.217", True, 2304, "prologue", id="4-flops-qkv"),
])
def test_planner_decisions(expr, has_producer, consumer_n, kind):
    plan = plan_layer(flops(expr), has_producer=has_producer, consumer_n=consumer_n)
    assert plan.kind == kind and plan.kind in KINDS
    assert plan.reason and str(plan.flops) in plan.reason


def test_planner_weighs_storage_bytes():
    """f32 activations cost twice the bytes per element, so a dearer f still pays in the prologue."""
    cost = flops("-0.488*x + clip(2.85*x) + 0.217")
    assert plan_layer(cost, consumer_n=3072, storage_bytes=2).kind == "epilogue"
    assert plan_layer(cost, consumer_n=3072, storage_bytes=4).kind == "prologue"


def flops(expr: str) -> int:
    return compile_expr(expr).cost["flops_optimized"]


def test_vit_layer_context():
    context = ViTContext(768)
    assert context.site("blocks.0.norm1") == (False, 2304)
    assert context.site("blocks.5.norm1") == (True, 2304)
    assert context.site("blocks.5.norm2") == (True, 3072)
    assert context.site("norm") == (True, None)
    assert context.site("fc_norm") == (False, None)
    assert ViTContext(64, mlp_hidden=100).site("blocks.1.norm2") == (True, 100)


def test_plan_for_the_paper_model():
    from pathlib import Path

    from exprc.frontend.layer_files import read_layers

    path = Path(__file__).resolve().parent.parent / "examples" / "vit_b16_paper.json"
    plans = {la.name: la.plan for la in compile_layers(read_layers(path)).layers}
    assert len(plans) == 25
    assert plans["blocks.2.norm1"].kind == "epilogue"  # three tanh: recomputing it 18 times does not pay
    assert plans["blocks.1.norm1"].kind == "prologue"  # one multiply and a clip
    assert plans["norm"].kind == "epilogue"
    # kept precise in bf16 (auto), its epilogue would dominate the K=768 attn.proj: cuBLAS + the element-wise kernel
    assert [n for n, p in plans.items() if p.kind == "standalone"] == ["blocks.11.norm2"]
