"""The boundary of the clip-drop rules of fuse-clip-tanh: `clip(a, lo, hi) -> a` when range(a) lies within
[lo, hi], and the one-sided form when a cannot reach one side. `ranges.within` asks for a margin of 1e-6 of the
bound's magnitude (f32 rounding of `a` could cross a bound its float64 range only touches), none at a bound of 0,
and none on a side that is unbounded (+-inf)."""

from __future__ import annotations

import math

import pytest

from exprc.ir import Node, Op, clip, const, unary, var
from exprc.passes.fuse_clip_tanh import fuse_clip_tanh
from exprc.passes.ranges import interval, within

INF = math.inf
X = var()


def scaled_tanh(c: float) -> Node:
    """A node whose range is exactly [-c, c]."""
    return const(c) * unary(Op.TANH, X)


@pytest.mark.parametrize("c, dropped", [
    pytest.param(5.0, False, id="exactly-at-the-bound"),
    pytest.param(5.0 * (1 - 0.4e-6), False, id="inside-by-less-than-the-margin"),
    pytest.param(5.0 * (1 - 2e-6), True, id="just-inside-the-margin"),
    pytest.param(4.0, True, id="well-inside"),
    pytest.param(5.0 * (1 + 0.4e-6), False, id="outside-by-less-than-the-margin"),
    pytest.param(5.00001, False, id="just-outside"),
])
def test_clip_dropped_only_inside_the_margin(c: float, dropped: bool) -> None:
    a = scaled_tanh(c)
    assert interval(a) == (-c, c)
    out = fuse_clip_tanh(clip(a, -5.0, 5.0))
    assert out is (a if dropped else clip(a, -5.0, 5.0))


@pytest.mark.parametrize("lo, hi, dropped", [
    pytest.param(-2.0 * (1 + 2e-6), 2.0 * (1 + 0.4e-6), False, id="hi-side-in-margin"),
    pytest.param(-2.0 * (1 + 2e-6), 2.0 * (1 + 2e-6), True, id="both-sides-inside"),
])
def test_each_side_has_its_own_margin(lo: float, hi: float, dropped: bool) -> None:
    a = unary(Op.TANH, X) * 2.0  # range [-2, 2]
    out = fuse_clip_tanh(clip(a, lo, hi))
    if dropped:
        assert out is a
    else:  # the side the range cannot reach is dropped, the other kept
        assert out.op is Op.CLIP and out.arg == (-INF, hi)


def test_a_bound_at_zero_needs_no_margin() -> None:
    s = unary(Op.SIGMOID, X)  # range [0, 1]
    assert interval(s) == (0.0, 1.0)
    assert fuse_clip_tanh(clip(s, 0.0, 5.0)) is s
    assert fuse_clip_tanh(clip(s, 1e-30, 5.0)) is clip(s, 1e-30, INF)  # 0 < 1e-30: the low side stays


@pytest.mark.parametrize("clip_lo, clip_hi, expected", [
    pytest.param(-INF, 5.0, None, id="clip-unbounded-below: dropped"),
    pytest.param(-5.0, INF, (-5.0, INF), id="clip-unbounded-above: kept"),
    pytest.param(-5.0, 5.0, (-5.0, INF), id="both-bounds: the unreachable high side dropped"),
])
def test_range_unbounded_below(clip_lo: float, clip_hi: float, expected: tuple[float, float] | None) -> None:
    a = 3.0 - unary(Op.EXP, X)  # range [-inf, 3]
    assert interval(a) == (-INF, 3.0)
    assert fuse_clip_tanh(clip(a, clip_lo, clip_hi)) is (a if expected is None else clip(a, *expected))


def test_range_unbounded_above_keeps_the_high_side() -> None:
    e = unary(Op.EXP, X)  # range [0, inf]
    assert fuse_clip_tanh(clip(e, -5.0, 5.0)) is clip(e, -INF, 5.0)
    assert fuse_clip_tanh(clip(e, -INF, 5.0)) is clip(e, -INF, 5.0)


@pytest.mark.parametrize("a, lo, hi, expected", [
    ((-5.0, 5.0), -5.0, 5.0, False),
    ((-4.99999, 4.99999), -5.0, 5.0, True),
    ((-INF, 3.0), -INF, 5.0, True),
    ((-INF, 3.0), -5.0, INF, False),
    ((0.0, 1.0), 0.0, 1.0, False),  # at hi = 1 the margin applies
    ((0.0, 0.5), 0.0, 1.0, True),
])
def test_within(a: tuple[float, float], lo: float, hi: float, expected: bool) -> None:
    node = clip(X, *a) if a != (-INF, 3.0) else 3.0 - unary(Op.EXP, X)
    assert interval(node) == a
    assert within(node, lo, hi) is expected
