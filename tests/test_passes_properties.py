"""Property tests: every pass's output agrees with the float64 evaluation of its input, on random expression trees
and on edge inputs (0, tiny, huge, +-inf, NaN). Range analysis is checked for soundness the same way."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from exprc.ir import Node, Op, clip, const, evaluate, inside, print_ir, unary, var
from exprc.passes.pipeline import MODES, optimize
from exprc.passes.ranges import interval

EDGE = np.array([0.0, -0.0, 1e-30, -1e-30, 1.0, -1.0, 0.5, 2.5, -3.7, 9.99, 10.01, 44.5, -44.5, 88.8, -88.8, 100.0,
                 -100.0, 1e30, -1e30, 3e38, -3e38, np.inf, -np.inf, np.nan])
RNG = np.random.default_rng(0)
INPUTS = np.concatenate([EDGE, RNG.normal(0, 3, 200), RNG.normal(0, 30, 50)]).astype(np.float32).astype(np.float64)

consts = st.one_of(st.floats(-6, 6, allow_nan=False, width=32), st.sampled_from([0.0, 1.0, -1.0, 2.0, 0.5, 1e-4]))


def _trees(depth: int, derivative_ops: bool = False):
    leaf = st.one_of(st.just(var()), consts.map(const))
    if depth == 0:
        return leaf
    sub = _trees(depth - 1, derivative_ops)
    unary_ops = st.sampled_from([Op.TANH, Op.SIGMOID, Op.NEG, Op.ABS, Op.EXP] + [Op.SIGN] * derivative_ops)
    binary_ops = st.sampled_from([Op.ADD, Op.SUB, Op.MUL, Op.DIV])
    options = [
        leaf,
        st.builds(lambda op, a: unary(op, a), unary_ops, sub),
        st.builds(lambda op, a, b: Node(op, src=(a, b)), binary_ops, sub, sub),
        st.builds(lambda a, lo, w: clip(a, lo, lo + w), sub, st.floats(-6, 2), st.floats(0, 8)),
        st.builds(lambda a: clip(a, -5, 5), sub),
        st.builds(lambda a, n: Node(Op.POW, src=(a,), arg=n), sub, st.integers(0, 4)),
    ]
    if derivative_ops:  # the derivative's indicator (sign is among the unary ops)
        options.append(st.builds(lambda a, lo, w: inside(a, lo, lo + w), sub, st.floats(-6, 2), st.floats(0, 8)))
    return st.one_of(*options)


trees = _trees(4)
trees_with_derivative_ops = _trees(4, derivative_ops=True)


def _scale(root: Node, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per element: the largest finite magnitude any node of the original takes (reassociation error scales with
    it), and whether any node leaves f32's normal range (over 1e37 or under 1e-37 in magnitude)."""
    scale = np.zeros(x.shape)
    outside = np.zeros(x.shape, bool)
    with np.errstate(all="ignore"):
        for n in root.toposort():
            v = np.abs(evaluate(n, x).astype(np.float64))
            scale = np.maximum(scale, np.where(np.isfinite(v), v, 0.0))
            outside |= (v > 1e37) | ((v > 0) & (v < 1e-37))
    return scale, outside


def assert_agrees(ref: np.ndarray, out: np.ndarray, tol: np.ndarray, what: str, x: np.ndarray) -> None:
    with np.errstate(all="ignore"):
        same = (ref == out) | (np.isnan(ref) & np.isnan(out)) | (np.abs(ref - out) <= tol)
    if not same.all():
        i = int(np.argmin(same))
        pytest.fail(f"{what}: x={x[i]!r} ref={ref[i]!r} got={out[i]!r} (tol {tol[i]:.3g})")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees, st.sampled_from(MODES))
def test_every_pass_preserves_value_in_float64(root: Node, mode: str) -> None:
    if mode != "precise":  # fast and horner state an absolute error: no division by a computed value
        assume(not any(n.op is Op.DIV and not n.src[1].is_const for n in root.toposort()))
    res = optimize(root, mode)
    ref = evaluate(root, INPUTS)
    scale, outside_f32 = _scale(root, INPUTS)
    with np.errstate(all="ignore"):
        orig32 = evaluate(root, INPUTS, np.float32).astype(np.float64)
        f32_error = np.where(np.isfinite(orig32) & np.isfinite(ref), np.abs(orig32 - ref), np.inf)
        f32_error = np.where(np.isnan(ref) & np.isnan(orig32), 0, f32_error)
    for i, stage in enumerate(res.stages[1:], 1):
        lowered = any(s.name == "lower-transcendentals" for s in res.stages[: i + 1])
        if not lowered:
            # exact rewrites, evaluated in float64: only reassociation rounding, relative to intermediates
            out = evaluate(stage.root, INPUTS)
            tol = 1e-9 * (1 + scale)
        else:
            # lowered IR is f32 code (bit tricks, clamps tuned to f32 overflow): evaluate it as the kernel does
            out = evaluate(stage.root, INPUTS, np.float32).astype(np.float64)
            out = np.where(outside_f32, ref, out)  # nothing to compare where f32 itself cannot hold the values
            rel = 2e-5 if mode == "precise" else 5e-4  # fast: tanh.approx; horner: 1 - 2/(e^2a+1) near 0
            tol = rel * (1 + scale) + 8 * f32_error  # the original's own f32 error bounds the conditioning
        assert_agrees(ref, out, tol, f"after {stage.name} ({mode})\n{print_ir(root)}", INPUTS)


@settings(max_examples=200, deadline=None)
@given(trees_with_derivative_ops)
def test_range_analysis_is_sound(root: Node) -> None:
    for n in root.toposort():
        lo, hi = interval(n)
        v = evaluate(n, INPUTS)
        v = v[~np.isnan(v)]
        slack = 1e-9 * (1 + np.where(np.isfinite(v), np.abs(v), 0))
        inside = ((v >= lo - slack) | (v == lo)) & ((v <= hi + slack) | (v == hi))
        assert inside.all(), f"{n.op.name} range [{lo}, {hi}] misses values {v[~inside][:3]}"


@pytest.mark.parametrize("fn", [Op.TANH, Op.SIGMOID, Op.EXP])
@pytest.mark.parametrize("mode", MODES)
def test_lowered_transcendentals_f32_accuracy(fn: Op, mode: str) -> None:
    """Each lowered transcendental, computed in f32, against float64 on a dense sweep and the edge values."""
    x = np.concatenate([EDGE, np.linspace(-100, 100, 40001), np.geomspace(1e-8, 80, 2000)])
    x = x.astype(np.float32).astype(np.float64)  # the kernel sees f32 inputs
    root = unary(fn, var())
    out = evaluate(optimize(root, mode).root, x, np.float32).astype(np.float64)
    with np.errstate(all="ignore"):
        ref = evaluate(root, x).astype(np.float32).astype(np.float64)  # what a perfect f32 kernel returns
        err = np.abs(out - ref) / (1 + np.abs(ref))  # the bound: 1e-5*(1+|ref|)
    finite_in = np.isfinite(x)
    assert not np.isnan(out[finite_in]).any(), "NaN from a finite input"
    assert np.isnan(out[np.isnan(x)]).all(), "NaN in must give NaN out"
    ok = (out == ref) | (np.isnan(out) & np.isnan(ref)) | (err <= 2e-6)
    assert ok.all(), f"{mode} {fn.name}: worst x={x[~ok][:3]}, got {out[~ok][:3]}, want {ref[~ok][:3]}"


def test_horner_exp_is_plain_arithmetic() -> None:
    lowered = optimize(unary(Op.EXP, var()), "horner").root
    ops = {n.op for n in lowered.toposort()}
    assert not ops & {Op.EXP, Op.EXP_APPROX, Op.TANH, Op.SIGMOID, Op.TANH_APPROX}
    muls = sum(n.op is Op.MUL for n in lowered.toposort())
    assert muls >= 7  # degree-7 Horner


@pytest.mark.parametrize("x", [0.0, 1.0, -1.0, math.pi, 20.5, -20.5, 80.0, -80.0])
def test_horner_exp_within_a_few_ulp(x: float) -> None:
    got = float(evaluate(optimize(unary(Op.EXP, var()), "horner").root, np.array([x]), np.float32)[0])
    want = float(np.float32(math.exp(x)))
    assert abs(got - want) <= 4 * abs(float(np.spacing(np.float32(want))))


def test_range_of_a_division_by_a_subnormal_bound_is_unbounded() -> None:
    """1/5e-324 overflows float64: such a divisor gives no bound (was [inf, inf] for x/x, whose value is 1)."""
    a = clip(var(), 5e-324, 5e-324)
    assert interval(Node(Op.DIV, src=(a, a))) == (-math.inf, math.inf)
    assert interval(Node(Op.DIV, src=(const(1.0), clip(var(), 2.0, 4.0)))) == (0.25, 0.5)
