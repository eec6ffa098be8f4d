"""Clip/tanh fusion: rules that use ranges to drop clips and saturating bounds.

- a clip whose argument already fits its bounds is dropped (`clip(tanh(a)) -> tanh(a)`: |tanh| <= 1 < 5); a clip
  side the argument cannot reach is dropped (that side's compare and select disappear from the kernel);
- a clip bound beyond the point where tanh or sigmoid saturate in f32 changes nothing and is dropped
  (`tanh(clip(a, -10, 10)) -> tanh(a)`: tanh(10) rounds to 1.0f; sigmoid: 1.0f from 20 up, 0.0f below -104).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..ir import Node, Op, clip, unary
from .pattern import P
from .ranges import within
from .rewrite import Fired, RuleTable, rewrite

INF = math.inf
# arguments past which f32 results no longer change: f(v) == f(bound) in f32 for every v beyond the bound
SATURATION = {Op.TANH: (-10.0, 10.0), Op.SIGMOID: (-104.0, 20.0)}
A = P.var("a")


def _one_side(a: Node, k: Node) -> Node | None:
    lo, hi = k.arg
    if lo != -INF and within(a, lo, INF):
        return clip(a, -INF, hi)
    if hi != INF and within(a, -INF, hi):
        return clip(a, lo, INF)
    return None


def _unsaturated(f: Node, k: Node, a: Node) -> Node | None:
    s_lo, s_hi = SATURATION[f.op]
    lo, hi = k.arg
    nlo = -INF if lo <= s_lo else lo
    nhi = INF if hi >= s_hi else hi
    if (nlo, nhi) == (lo, hi):
        return None
    return unary(f.op, a if (nlo, nhi) == (-INF, INF) else clip(a, nlo, nhi))


RULES = RuleTable([
    ("clip(a, lo, hi) -> a   when range(a) within [lo, hi]",
     P(Op.CLIP, A, name="k"), lambda a, k: a if within(a, *k.arg) else None),
    ("clip(a, lo, hi) -> clip(a, -inf, hi) / clip(a, lo, inf)   when a cannot reach that side",
     P(Op.CLIP, A, name="k"), lambda a, k: _one_side(a, k)),
    ("tanh(clip(a, lo, hi)) -> tanh(clip(a, ...)) without bounds past saturation (sigmoid alike)",
     P(tuple(SATURATION), P(Op.CLIP, A, name="k"), name="f"), lambda f, k, a: _unsaturated(f, k, a)),
])


def fuse_clip_tanh(root: Node, trace: list[Fired] | None = None) -> Node:
    return rewrite(root, RULES, trace)


@dataclass(frozen=True)
class FuseClipTanh:
    name: str = "fuse-clip-tanh"

    def run(self, root: Node, ctx) -> Node:
        return fuse_clip_tanh(root, ctx.trace)
