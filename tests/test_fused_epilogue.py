"""The fused matmul-epilogue kernel under Triton's interpreter, against a float64 numpy/torch reference.

r = a @ W^T (+ bias) (* scale) (+ residual) and y = f(r) * w + b, on small ragged shapes (M, N, K not multiples of
the 32-wide interpreter tiles, and K both even and not), for f32/bf16/f16 storage.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import exprc
from exprc.compiler import expression_module
from exprc.ir import evaluate
from exprc.runtime.kernels import family_for
from exprc.runtime.kernels.support import is_interpreted

DEEP = "-0.84*x + 1.31*clip(2*x) + 0.548*tanh(tanh(tanh(x)) + 0.227)"  # blocks.2.norm1 of the paper
EXPRESSIONS = [
    DEEP,
    "clip(x*tanh(sigmoid(-0.0401*x*tanh(x))))",  # blocks.11.norm2: sigmoid
    "x*tanh(sigmoid(clip(-0.000308*x**2)))",  # norm: pow
    "-0.522*x + 2.11*clip(x)",  # blocks.0.norm1: no transcendental
    "0.5*exp(-x*x) + abs(x)/(1 + abs(x))",  # exp, abs, division
]
# storage dtype -> relative error of one stored value: half an ulp, but a whole one for bf16, which Triton's
# interpreter rounds toward zero (compiled code rounds to nearest even)
ROUNDING = {torch.float32: 2.0**-24, torch.bfloat16: 2.0**-7, torch.float16: 2.0**-11}


def _operands(m, n, k, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).to(dtype)

    return {"a": rnd(m, k), "weight": rnd(n, k, scale=k ** -0.5), "bias": rnd(n), "scale": rnd(n, scale=0.7),
            "residual": rnd(m, n), "norm_weight": rnd(n), "norm_bias": rnd(n)}


def _reference_r(ops, use):
    r = ops["a"].double() @ ops["weight"].double().T
    if use["bias"]:
        r = r + ops["bias"].double()
    if use["scale"]:
        r = r * ops["scale"].double()
    if use["residual"]:
        r = r + ops["residual"].double()
    return r


def _reference_y(root, r_stored, ops, use):
    y = torch.from_numpy(evaluate(root, r_stored.double().numpy()))
    if use["norm_weight"]:
        y = y * ops["norm_weight"].double()
    if use["norm_bias"]:
        y = y + ops["norm_bias"].double()
    return y


def _launch(module, ops, use, write_r=True):
    a = ops["a"]
    m, n = a.shape[0], ops["weight"].shape[0]
    r = torch.full((m, n), float("nan"), dtype=a.dtype) if write_r else None
    y = torch.full((m, n), float("nan"), dtype=a.dtype)
    args = [ops[name] if use.get(name, True) else None
            for name in ("a", "weight", "bias", "scale", "residual", "norm_weight", "norm_bias")]
    family_for("matmul_epilogue", module).launch(module, *args, r, y)
    return r, y


ALL = dict(bias=True, scale=True, residual=True, norm_weight=True, norm_bias=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("use", [
    pytest.param(ALL, id="all"),
    pytest.param(dict(bias=True, scale=False, residual=True, norm_weight=True, norm_bias=True), id="vit-block"),
    pytest.param(dict(bias=False, scale=False, residual=False, norm_weight=False, norm_bias=False), id="bare"),
])
@pytest.mark.parametrize("mnk", [(37, 40, 72), (64, 48, 64)], ids=["odd-k", "even-k"])
def test_epilogue_matches_float64_reference(triton_interpret, dtype, use, mnk):
    module = expression_module(DEEP)
    assert is_interpreted(module.expr_fn)
    ops = _operands(*mnk, dtype)
    r, y = _launch(module, ops, use)
    r_ref = _reference_r(ops, use)
    # r: f32 accumulation, then one rounding to the storage dtype
    tol_r = r_ref.abs() * ROUNDING[dtype] + 1e-5 * (1 + r_ref.abs())
    assert torch.all((r.double() - r_ref).abs() <= tol_r), (r.double() - r_ref).abs().max()
    # y: f evaluated (f32) on r as stored, the affine, one rounding
    y_ref = _reference_y(exprc.parse(DEEP), r, ops, use)
    tol_y = y_ref.abs() * ROUNDING[dtype] + 2e-6 * (1 + y_ref.abs())
    assert torch.all((y.double() - y_ref).abs() <= tol_y), (y.double() - y_ref).abs().max()


@pytest.mark.parametrize("expr", EXPRESSIONS)
@pytest.mark.parametrize("mode", ["precise", "horner", "fast"])
def test_every_lowering_in_the_epilogue(triton_interpret, expr, mode):
    module = expression_module(expr, mode)
    ops = _operands(33, 24, 40, torch.float32, seed=1)
    ops["a"] = ops["a"] * 2  # r over about [-8, 8]: both clip sides, tanh saturating
    r, y = _launch(module, ops, ALL)
    y_ref = _reference_y(exprc.parse(expr), r, ops, ALL)
    # horner's polynomial and fast mode's approximations carry their own (documented) error
    rel = {"precise": 1e-5, "horner": 1e-5, "fast": 1e-3}[mode]
    assert torch.all((y.double() - y_ref).abs() <= rel * (1 + y_ref.abs())), (y.double() - y_ref).abs().max()


def test_skipping_r_leaves_y_unchanged(triton_interpret):
    module = expression_module(DEEP)
    ops = _operands(20, 36, 48, torch.bfloat16, seed=2)
    r, y = _launch(module, ops, ALL)
    none, y_only = _launch(module, ops, ALL, write_r=False)
    assert none is None
    assert torch.equal(y_only, y)


def test_interpreter_runs_one_fixed_config(triton_interpret):
    """Autotuning is skipped under the interpreter: `launch` returns no chosen config and runs in one go."""
    from exprc.runtime.kernels.tiles import INTERPRETER_CONFIG

    module = expression_module("tanh(x)")
    ops = _operands(8, 8, 8, torch.float32)
    assert family_for("matmul_epilogue", module).launch(module, *ops.values(), None, torch.empty(8, 8)) is None
    assert INTERPRETER_CONFIG.block_k == 32


def test_generated_source_is_readable_and_safe():
    """User text goes into the generated module's header comments: it must stay inside them."""
    import ast
    import dataclasses

    from exprc.compiler import compile_expr

    hostile = 'x"""; import os; """\n\x00\\'
    compiled = compile_expr(DEEP)
    source = dataclasses.replace(compiled, sources=(hostile,)).source()
    tree = ast.parse(source)  # still valid Python
    assert "os" not in {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert [line for line in source.splitlines() if "import os" in line] == [
        f"# source: {json.dumps(hostile)}"]
    assert "auto mode (bf16: fast)" in source  # the default mode, and the lowering it proved for bf16
    for fn in ("expr_fn", "expr_grad_fn", "expr_torch", "expr_grad_torch"):
        assert f"def {fn}(" in source
    for forbidden in ("tl.load", "tl.store", "tl.dot", "_ptr"):  # the kernels are not in the generated file
        assert forbidden not in source


def test_usable_configs_follow_element_size():
    from exprc.runtime.kernels.tiles import MATMUL_CONFIGS, triton_configs, usable_configs

    configs = triton_configs(MATMUL_CONFIGS)
    h100 = 232448  # bytes of shared memory per block (opt-in) on sm_90
    a100 = 166912
    bf16 = usable_configs(configs, 2, h100)
    f32 = usable_configs(configs, 4, h100)
    assert len(bf16) == len(configs)
    assert f32 and all(c.kwargs["BLOCK_K"] == 32 for c in f32)
    for c in usable_configs(configs, 4, a100):
        assert c.num_stages * (c.kwargs["BLOCK_M"] + c.kwargs["BLOCK_N"]) * c.kwargs["BLOCK_K"] * 4 <= a100


def test_numpy_reference_is_not_trivial():
    """The reference must be able to fail: a wrong kernel (f skipped) is far from it."""
    root = exprc.parse(DEEP)
    r = np.linspace(-6, 6, 101)
    assert np.abs(evaluate(root, r) - r).max() > 0.5
