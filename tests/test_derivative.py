"""The derivative on the paper's 25 expressions, in every mode, after lowering, computed in f32 by the numpy
interpreter, against float64 PyTorch autograd of the expression as written (unlowered). Stated bounds:

- precise: |g - ref| <= 4e-6 * (1 + |ref|)        (measured: 7.7e-7 * (1 + |ref|), blocks.4.norm1)
- horner:  |g - ref| <= 2e-6 * (1 + S)            (measured: 2.7e-7 * (1 + S), blocks.4.norm2)
- fast:    |g - ref| <= 2^-7 * (1 + S)            (measured: 2.9e-3 * (1 + S), blocks.4.norm1 at x = 60)
  with tanh_approx and exp_approx given their hardware error (relative 2^-11 for tanh.approx.f32, per NVIDIA's
  PTX ISA; 2^-22 for ex2.approx), both signs, instead of the interpreter's exact values. 1 - t*t cancels where t
  saturates, so the error is absolute: 2^-10 for tanh', times the gradient flowing into the tanh and the
  derivative of its argument. Without that error (the interpreter's exact tanh_approx) fast is within precise's
  bound.
S is the largest magnitude among the float64 values and adjoints (the gradient flowing into a node) of the
expression's nodes, from PyTorch (so 1 - t*t's absolute error scales with what multiplies it: x*(1 - t*t) at
x = 60; and a wrong rule cannot widen its own tolerance). Inputs within f32 rounding (fast: 2^-8, its own error)
of a clip bound or of abs's 0 are compared separately: at the bounds of the optimized IR, against torch's f32
autograd of that IR, and at the written bounds where optimization keeps them. Not compared either: inputs where a
value of the expression leaves f32's range (or an adjoint overflows it): `derivative_reference.outside_f32`.

The generated code of the lowered derivative (Triton under its interpreter, and eager torch) agrees with the
interpreter at those bounds too.

Conventions (torch 2.14's, `test_torch_facts`): clip' = 1 strictly inside the bounds, 0 at a bound, outside and
for NaN (torch.clamp with scalar bounds); abs'(0) = 0. No NaN from a finite input where the float64 derivative
is finite and the expression's values fit f32: sigmoid(40*x) at x = +-30 gives 0 in every mode.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from derivative_reference import (arithmetic, bound_hits, kinks, lowered_derivative, outside_f32, reference_scale,
                                  torch_derivative)

from exprc import parse
from exprc.codegen.emit_torch import emit_torch_function
from exprc.codegen.emit_triton import emit_expr_function
from exprc.frontend.layer_files import read_layers
from exprc.ir import Node, Op, evaluate, interpret
from exprc.passes.pipeline import MODES, optimize
from exprc.runtime.kernels import family_for
from exprc.runtime.kernels.support import import_source

PAPER = Path(__file__).resolve().parents[1] / "examples" / "vit_b16_paper.json"
LAYERS = read_layers(PAPER)
RNG = np.random.default_rng(1)
EDGE = [0.0, -0.0, 1e-30, -1e-30, 1.0, -1.0, 5.0, -5.0, 10.0, -10.0, 30.0, -30.0, 88.8, -88.8, 1e4, -1e4]
X = np.concatenate([EDGE, np.linspace(-60, 60, 12001), RNG.normal(0, 3, 2000)]).astype(np.float32).astype(np.float64)
FAST_TANH_REL, FAST_EXP_REL = 2.0**-11, 2.0**-22


def f32(root: Node, x: np.ndarray) -> np.ndarray:
    return evaluate(root, x, np.float32).astype(np.float64)


def check(name: str, g: np.ndarray, ref: np.ndarray, tol: np.ndarray, ok: np.ndarray, x: np.ndarray) -> None:
    assert not np.isnan(g[ok & np.isfinite(ref)]).any(), f"{name}: NaN at x={x[ok & np.isnan(g)][:4]}"
    bad = ok & ~(np.abs(g - ref) <= tol)
    assert not bad.any(), f"{name}: x={x[bad][:4]} got {g[bad][:4]} want {ref[bad][:4]} (tol {tol[bad][:4]})"


def approx_errors(monkeypatch) -> None:
    """tanh_approx and exp_approx with their hardware error, + on even elements, - on odd ones."""
    def signs(a):
        return np.where(np.arange(a.size).reshape(a.shape) % 2 == 0, 1.0, -1.0)

    monkeypatch.setitem(interpret.EVAL, Op.TANH_APPROX,
                        lambda a, n, ft: (np.tanh(a) * (1 + signs(a) * FAST_TANH_REL)).astype(ft))
    monkeypatch.setitem(interpret.EVAL, Op.EXP_APPROX,
                        lambda a, n, ft: (np.exp(a) * (1 + signs(a) * FAST_EXP_REL)).astype(ft))


@pytest.mark.parametrize("mode", MODES)
def test_paper_expressions_match_float64_autograd(mode: str, monkeypatch) -> None:
    if mode == "fast":
        approx_errors(monkeypatch)
    for layer in LAYERS:
        ref = torch_derivative(layer.ir, X)
        g = f32(lowered_derivative(layer.ir, mode).root, X)
        ok = ~kinks(layer.ir, X, 2.0**-8 if mode == "fast" else 1e-5) & ~outside_f32(layer.ir, X)
        tol = {"precise": 4e-6 * (1 + np.abs(ref)), "horner": 2e-6 * (1 + reference_scale(layer.ir, X)),
               "fast": 2.0**-7 * (1 + reference_scale(layer.ir, X))}[mode]
        check(f"{mode} {layer.name} {layer.expr}", g, ref, tol, ok, X)


def test_fast_bound_is_not_vacuous(monkeypatch) -> None:
    """The hardware error really reaches the derivative (so the fast test measures something): at saturation
    1 - t*t is off by about 2^-10 instead of 0."""
    approx_errors(monkeypatch)
    g = f32(lowered_derivative(parse("tanh(x)"), "fast").root, np.array([20.0, 20.0]))
    assert 2.0**-11 < np.abs(g).max() <= 2.0**-9


# -- no NaN where the derivative is finite ---------------------------------------------------------------------
STEEP = [1e-30, 0.01, 1.0, 3.0, 20.0, 30.0, 100.0, 1e4, 3e38]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("text", ["sigmoid(40*x)", "sigmoid(-40*x)", "tanh(40*x)", "2*sigmoid(40*x) - tanh(x)",
                                  "x*tanh(sigmoid(clip(-0.000308*x**2)))", "exp(-x*x)"])
def test_saturating_functions_give_zero_not_nan(mode: str, text: str) -> None:
    """No NaN from a finite input whose intermediates fit f32 (x**2 at 3e38 does not: the chain rule then has
    0*inf, as PyTorch's f32 autograd does too); where the argument saturates, the derivative is 0 (or its limit)."""
    x = np.array(STEEP + [-v for v in STEEP])
    g = f32(lowered_derivative(parse(text), mode).root, x)
    ref = torch_derivative(parse(text), x)
    fits = ~outside_f32(parse(text), x)
    assert fits[np.abs(x) == 30].all() and not np.isnan(g[fits]).any(), (x[np.isnan(g)], g)
    far = fits & (np.abs(x) >= 30)
    assert np.allclose(g[far], ref[far], atol=1e-6, rtol=0), (x[far], g[far], ref[far])


@pytest.mark.parametrize("mode", MODES)
def test_steep_sigmoid_at_30_is_exactly_zero(mode: str) -> None:
    """The issue's case: the derivative of sigmoid(40*x) at x = +-30 is 0 (s*(1 - s) with s = 0 or 1), where
    autograd through the lowered forward 1/(1 + exp(-a)) gives NaN (exp overflows: inf/inf in the chain rule)."""
    x = np.array([-30.0, 30.0, -3e38, 3e38, -np.inf, np.inf])
    root = parse("sigmoid(40*x)")
    assert f32(lowered_derivative(root, mode).root, x).tolist() == [0.0] * 6  # even where 40*x overflows
    x = x[:2]
    lowered_forward = optimize(root, "precise").root  # 1/(1 + exp(-40x)): what eager autograd ran through
    assert np.isnan(torch_derivative(lowered_forward, x, torch.float32)[0])


# -- clip and abs: the convention at the kink, exactly ---------------------------------------------------------
def test_torch_facts() -> None:
    """What the installed torch does; our convention is the scalar-bounds one (if torch changes, this says so)."""
    x = torch.tensor([-6.0, -5.0, -4.5, 0.0, 4.5, 5.0, 6.0, math.nan], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(torch.clamp(x, -5.0, 5.0).sum(), x)
    assert g.tolist() == [0, 0, 1, 1, 1, 0, 0, 0]  # scalar bounds: exclusive at both bounds, 0 for NaN
    lo, hi = torch.tensor(-5.0, dtype=torch.float64), torch.tensor(5.0, dtype=torch.float64)
    (g,) = torch.autograd.grad(torch.clamp(x, lo, hi).sum(), x)
    assert g.tolist() == [0, 0.5, 1, 1, 1, 0.5, 0, 1]  # tensor bounds differ: not our convention
    y = torch.tensor([-math.inf, 5.0, 4.0], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(torch.clamp(y, max=5.0).sum(), y)
    assert g.tolist() == [1, 0, 1]  # a missing side is no bound (-inf passes), as clip's code omits an inf side
    z = torch.tensor([0.0, -0.0, -2.0, math.nan], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(torch.abs(z).sum(), z)
    assert g.tolist() == [0, 0, -1, 0]


AT_BOUNDS = ["clip(x)", "clip(x, -3, 2)", "2.5*tanh(clip(x)) + 0.135", "x*clip(x, -1, 1)", "abs(x)",
             "clip(x) + clip(x, -2, 7)", "abs(x)*tanh(x) - clip(x, 0, 4)"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("text", AT_BOUNDS)
def test_exactly_at_the_written_bounds(mode: str, text: str) -> None:
    """Where optimization keeps a clip as written, the derivative at its bounds (and at abs's 0) is torch's."""
    pts = np.array([-7.0, -5.0, -3.0, -2.0, -1.0, 0.0, -0.0, 1.0, 2.0, 4.0, 5.0, 7.0])
    x = np.concatenate([pts, np.nextafter(pts.astype(np.float32), np.float32(np.inf)),
                        np.nextafter(pts.astype(np.float32), np.float32(-np.inf))]).astype(np.float64)
    g = f32(lowered_derivative(parse(text), mode).root, x)
    ref = torch_derivative(parse(text), x)
    assert np.allclose(g, ref, rtol=1e-5, atol=1e-5), (x, g, ref)


@pytest.mark.parametrize("mode", MODES)
def test_nan_input(mode: str) -> None:
    """NaN in: clip' and abs' are 0 (torch's), so what does not pass through them is kept; through a NaN value
    (tanh(clip(NaN)) = NaN) the derivative is NaN (torch's clamp backward would select 0 there)."""
    nan = np.array([math.nan])
    for text, want in [("clip(x)", 0.0), ("abs(x)", 0.0), ("-0.522*x + 2.11*clip(x)", -0.522)]:
        assert f32(lowered_derivative(parse(text), mode).root, nan)[0] == pytest.approx(want)
        assert torch_derivative(parse(text), nan)[0] == pytest.approx(want)
    assert np.isnan(f32(lowered_derivative(parse("tanh(x)"), mode).root, nan)).all()


@pytest.mark.parametrize("mode", MODES)
def test_at_the_bounds_of_the_optimized_ir(mode: str) -> None:
    """Optimization rewrites c*clip(a) into clip(c*a, c*lo, c*hi), so the kink of the lowered code is where ITS
    f32 argument meets ITS bound. There the derivative is what torch's f32 autograd of the optimized IR gives:
    the indicator is 0 exactly at a bound (a flipped convention would be off by the whole jump)."""
    hits = 0
    for layer in LAYERS:
        optimized = optimize(layer.ir, mode).optimized
        x = bound_hits(optimized)
        if x.size == 0:
            continue
        for n in optimized.toposort():
            if n.op is Op.CLIP and arithmetic(n):
                hits += int(np.isin(f32(n.src[0], x), [np.float32(v) for v in n.arg]).sum())
        g = f32(lowered_derivative(layer.ir, mode).root, x)
        ref = torch_derivative(optimized, x, torch.float32)
        assert np.allclose(g, ref, rtol=1e-5, atol=1e-5), (layer.name, x[~np.isclose(g, ref)], g, ref)
    assert hits >= 20  # inputs exactly at a bound (in f32) were there to test


# -- the generated code: Triton (under its interpreter) and torch agree with the interpreter at the bounds -------
# clip(c*x), clip(x) with a linear term, clip inside a clip, tanh(clip(x)), the sigmoid/pow/one-sided clip one
CHOSEN = ["blocks.0.norm1", "blocks.7.norm2", "blocks.8.norm2", "blocks.2.norm2", "norm"]
PRELUDE = ("import math\n\nimport torch\nimport triton\nimport triton.language as tl\n"
           "from exprc.runtime.kernels.support import libdevice_module\n\nlibdevice = libdevice_module()\n\n\n")
CODE_EDGE = [0.0, -0.0, 1.0, -1.0, 5.0, -5.0, 30.0, -30.0, 200.0, -200.0, 1e30, -1e30]


def grad_module(path: Path, grad: Node):
    """A module whose `expr_fn` and `expr_torch` compute the lowered derivative `grad`, imported interpreted."""
    import triton.language  # noqa: F401  (outside the interpreter first: see conftest.triton_interpret)

    source = PRELUDE + emit_expr_function(grad, "expr_fn") + "\n\n" + emit_torch_function(grad, "expr_torch")
    return import_source(path, source.encode(), interpreted=True)


def both_paths(module, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xt = torch.from_numpy(x.astype(np.float32))
    ones, zeros = torch.ones(xt.numel()), torch.zeros(xt.numel())
    triton_y = family_for("elementwise", module).apply(module, xt, ones, zeros)
    return triton_y.double().numpy(), module.expr_torch(xt).double().numpy()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("mode", MODES)
def test_triton_and_torch_derivatives_agree_at_the_bounds(tmp_path, mode: str) -> None:
    for name in CHOSEN:
        ir = next(layer.ir for layer in LAYERS if layer.name == name)
        x = np.concatenate([bound_hits(optimize(ir, mode).optimized, -300, 300), CODE_EDGE])
        grad = lowered_derivative(ir, mode).root
        triton_y, torch_y = both_paths(grad_module(tmp_path / f"{name.replace('.', '_')}.py", grad), x)
        ref = evaluate(grad, x, np.float32).astype(np.float64)
        finite = np.isfinite(ref)
        assert not np.isnan(triton_y[finite]).any() and not np.isnan(torch_y[finite]).any()
        for got in (triton_y, torch_y):  # a flipped indicator would be off by a whole jump (~1)
            bad = finite & ~(np.abs(got - ref) <= 1e-6 * (1 + np.abs(ref)))
            assert not bad.any(), (name, mode, x[bad], got[bad], ref[bad])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_abs_and_steep_sigmoid_on_both_paths(tmp_path) -> None:
    """sign at +-0 and NaN is 0 on both paths; sigmoid(40*x)' at +-30 is 0, not NaN (precise lowering)."""
    x = np.array([0.0, -0.0, 1e-30, -1e-30, 2.0, -2.0, 30.0, -30.0, np.nan])
    grad = lowered_derivative(parse("abs(x) + sigmoid(40*x)"), "precise").root
    assert {Op.SIGN, Op.EXP} <= {n.op for n in grad.toposort()}
    triton_y, torch_y = both_paths(grad_module(tmp_path / "abs_sigmoid.py", grad), x)
    want = [10.0, 10.0, 11.0, 9.0, 1.0, -1.0, 1.0, -1.0]  # sign(x) + 40*s*(1 - s)
    for got in (triton_y, torch_y):
        assert np.allclose(got[:-1], want, rtol=1e-6, atol=1e-6) and np.isnan(got[-1]), got
