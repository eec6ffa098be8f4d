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
from .ranges import within
from .rewrite import RuleTable, rewrite

RULES = RuleTable()
rule = RULES.rule

INF = math.inf
# arguments past which f32 results no longer change: f(v) == f(bound) in f32 for every v beyond the bound
SATURATION = {Op.TANH: (-10.0, 10.0), Op.SIGMOID: (-104.0, 20.0)}


@rule("clip(a, lo, hi) -> a   when range(a) within [lo, hi]")
def _clip_fits(n: Node) -> Node | None:
    if n.op is Op.CLIP and within(n.src[0], *n.arg):
        return n.src[0]


@rule("clip(a, lo, hi) -> clip(a, -inf, hi) / clip(a, lo, inf)   when a cannot reach that side")
def _clip_one_side(n: Node) -> Node | None:
    if n.op is not Op.CLIP:
        return None
    lo, hi = n.arg
    if lo != -INF and within(n.src[0], lo, INF):
        return clip(n.src[0], -INF, hi)
    if hi != INF and within(n.src[0], -INF, hi):
        return clip(n.src[0], lo, INF)


@rule("tanh(clip(a, lo, hi)) -> tanh(clip(a, ...)) without bounds past saturation (sigmoid alike)")
def _saturating_clip(n: Node) -> Node | None:
    if n.op in SATURATION and n.src[0].op is Op.CLIP:
        s_lo, s_hi = SATURATION[n.op]
        lo, hi = n.src[0].arg
        nlo = -INF if lo <= s_lo else lo
        nhi = INF if hi >= s_hi else hi
        if (nlo, nhi) != (lo, hi):
            inner = n.src[0].src[0] if (nlo, nhi) == (-INF, INF) else clip(n.src[0].src[0], nlo, nhi)
            return unary(n.op, inner)


def fuse_clip_tanh(root: Node, trace: list[str] | None = None) -> Node:
    return rewrite(root, RULES, trace)


@dataclass(frozen=True)
class FuseClipTanh:
    name: str = "fuse-clip-tanh"

    def run(self, root: Node, ctx) -> Node:
        return fuse_clip_tanh(root, ctx.trace)


