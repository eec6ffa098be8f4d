"""Algebraic simplification: a table of local rules, one per function, each with its `before -> after` name.

Canonical forms: constants on the left of `*` (`c*a`) and on the right of `+` (`a + c`); subtraction of a constant
becomes addition of its negation. Rules are exact for every input (NaN and inf included) except reassociation of
two constants (`c1*(c2*a) -> (c1*c2)*a`), which moves the rounding of one multiplication, well inside 1 ulp
of float64 folding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..ir import F32, Node, Op, clip, const
from .rewrite import RuleTable, rewrite

RULES = RuleTable()
rule = RULES.rule


def _c(n: Node) -> float | None:
    return n.arg if n.op is Op.CONST and n.dtype is F32 else None


def _f32(n: Node) -> bool:
    return n.dtype is F32


def _finite(v: float) -> bool:
    return math.isfinite(v)


# -- canonical order --------------------------------------------------------------------------------
@rule("a*c -> c*a")
def _mul_const_left(n: Node) -> Node | None:
    if n.op is Op.MUL and _f32(n) and _c(n.src[1]) is not None and _c(n.src[0]) is None:
        return n.src[1] * n.src[0]


@rule("c+a -> a+c")
def _add_const_right(n: Node) -> Node | None:
    if n.op is Op.ADD and _f32(n) and _c(n.src[0]) is not None and _c(n.src[1]) is None:
        return n.src[1] + n.src[0]


@rule("a-c -> a+(-c)")
def _sub_const(n: Node) -> Node | None:
    if n.op is Op.SUB and _f32(n) and (c := _c(n.src[1])) is not None:
        return n.src[0] + const(-c)


@rule("c-a -> neg(a)+c")
def _const_sub(n: Node) -> Node | None:
    if n.op is Op.SUB and _f32(n) and _c(n.src[0]) is not None and _c(n.src[1]) is None:
        return -n.src[1] + n.src[0]


# -- identities ---------------------------------------------------------------------------------------
@rule("1*a -> a")
def _mul_one(n: Node) -> Node | None:
    if n.op is Op.MUL and _c(n.src[0]) == 1.0:
        return n.src[1]


@rule("-1*a -> neg(a)")
def _mul_minus_one(n: Node) -> Node | None:
    if n.op is Op.MUL and _c(n.src[0]) == -1.0:
        return -n.src[1]


@rule("a+0 -> a")
def _add_zero(n: Node) -> Node | None:
    if n.op is Op.ADD and _c(n.src[1]) == 0.0:
        return n.src[0]


@rule("a/1 -> a")
def _div_one(n: Node) -> Node | None:
    if n.op is Op.DIV and _c(n.src[1]) == 1.0:
        return n.src[0]


@rule("a/c -> (1/c)*a   (c a power of two: exact)")
def _div_pow2(n: Node) -> Node | None:
    if n.op is Op.DIV and (c := _c(n.src[1])) is not None and c != 0 and _finite(c):
        m, _ = math.frexp(c)
        if abs(m) == 0.5 and _finite(1 / c):
            return const(1 / c) * n.src[0]


@rule("a**0 -> 1, a**1 -> a")
def _pow_small(n: Node) -> Node | None:
    if n.op is Op.POW and n.arg == 1:
        return n.src[0]
    if n.op is Op.POW and n.arg == 0:
        return const(1.0)


# -- negation -------------------------------------------------------------------------------------------
@rule("neg(neg(a)) -> a")
def _neg_neg(n: Node) -> Node | None:
    if n.op is Op.NEG and n.src[0].op is Op.NEG:
        return n.src[0].src[0]


@rule("neg(c*a) -> (-c)*a")
def _neg_scaled(n: Node) -> Node | None:
    if n.op is Op.NEG and n.src[0].op is Op.MUL and (c := _c(n.src[0].src[0])) is not None:
        return const(-c) * n.src[0].src[1]


@rule("c*neg(a) -> (-c)*a")
def _scaled_neg(n: Node) -> Node | None:
    if n.op is Op.MUL and (c := _c(n.src[0])) is not None and n.src[1].op is Op.NEG:
        return const(-c) * n.src[1].src[0]


@rule("neg(a+c) -> neg(a)+(-c)")
def _neg_add_const(n: Node) -> Node | None:
    if n.op is Op.NEG and n.src[0].op is Op.ADD and (c := _c(n.src[0].src[1])) is not None:
        return -n.src[0].src[0] + const(-c)


@rule("a+neg(b) -> a-b")
def _add_neg(n: Node) -> Node | None:
    if n.op is Op.ADD and n.src[1].op is Op.NEG:
        return n.src[0] - n.src[1].src[0]


@rule("neg(a)+b -> b-a")
def _neg_add(n: Node) -> Node | None:
    if n.op is Op.ADD and n.src[0].op is Op.NEG and _c(n.src[1]) is None:
        return n.src[1] - n.src[0].src[0]


@rule("a-neg(b) -> a+b")
def _sub_neg(n: Node) -> Node | None:
    if n.op is Op.SUB and n.src[1].op is Op.NEG:
        return n.src[0] + n.src[1].src[0]


@rule("abs(neg(a)) -> abs(a); abs(abs(a)) -> abs(a)")
def _abs_abs(n: Node) -> Node | None:
    if n.op is Op.ABS and n.src[0].op in (Op.NEG, Op.ABS):
        return Node(Op.ABS, F32, (n.src[0].src[0],))


# -- constants move outward and combine ----------------------------------------------------------------
@rule("c1*(c2*a) -> (c1*c2)*a")
def _mul_mul_const(n: Node) -> Node | None:
    if n.op is Op.MUL and (c1 := _c(n.src[0])) is not None and n.src[1].op is Op.MUL:
        if (c2 := _c(n.src[1].src[0])) is not None and _finite(c1 * c2):
            return const(c1 * c2) * n.src[1].src[1]


@rule("c1*(c2/a) -> (c1*c2)/a")
def _mul_div_const(n: Node) -> Node | None:
    if n.op is Op.MUL and (c1 := _c(n.src[0])) is not None and n.src[1].op is Op.DIV:
        if (c2 := _c(n.src[1].src[0])) is not None and _finite(c1 * c2):
            return const(c1 * c2) / n.src[1].src[1]


@rule("neg(c/a) -> (-c)/a")
def _neg_div_const(n: Node) -> Node | None:
    if n.op is Op.NEG and n.src[0].op is Op.DIV and (c := _c(n.src[0].src[0])) is not None:
        return const(-c) / n.src[0].src[1]


@rule("c1*(a+c2) -> c1*a + c1*c2")
def _distribute_const(n: Node) -> Node | None:
    if n.op is Op.MUL and (c1 := _c(n.src[0])) is not None and n.src[1].op is Op.ADD:
        a, b = n.src[1].src
        if (c2 := _c(b)) is not None and _finite(c1 * c2):
            return const(c1) * a + const(c1 * c2)


@rule("(a+c1)+c2 -> a+(c1+c2)")
def _add_add_const(n: Node) -> Node | None:
    if n.op is Op.ADD and (c2 := _c(n.src[1])) is not None and n.src[0].op is Op.ADD:
        if (c1 := _c(n.src[0].src[1])) is not None and _finite(c1 + c2):
            return n.src[0].src[0] + const(c1 + c2)


@rule("(a+c)+b -> (a+b)+c")
def _float_const_out_left(n: Node) -> Node | None:
    if n.op is Op.ADD and _f32(n) and _c(n.src[1]) is None and n.src[0].op is Op.ADD:
        if (c := _c(n.src[0].src[1])) is not None:
            return (n.src[0].src[0] + n.src[1]) + const(c)


@rule("a+(b+c) -> (a+b)+c")
def _float_const_out_right(n: Node) -> Node | None:
    if n.op is Op.ADD and _f32(n) and n.src[1].op is Op.ADD and _c(n.src[0]) is None:
        if (c := _c(n.src[1].src[1])) is not None:
            return (n.src[0] + n.src[1].src[0]) + const(c)


@rule("(a+c)-b -> (a-b)+c")
def _sub_float_const(n: Node) -> Node | None:
    if n.op is Op.SUB and _f32(n) and n.src[0].op is Op.ADD and _c(n.src[1]) is None:
        if (c := _c(n.src[0].src[1])) is not None:
            return (n.src[0].src[0] - n.src[1]) + const(c)


# -- clip -----------------------------------------------------------------------------------------------
@rule("clip(clip(a, l1, h1), l2, h2) -> clip(a, max(l1,l2), min(h1,h2))")
def _clip_clip(n: Node) -> Node | None:
    if n.op is Op.CLIP and n.src[0].op is Op.CLIP:
        (l1, h1), (l2, h2) = n.src[0].arg, n.arg
        lo, hi = max(l1, l2), min(h1, h2)
        if lo <= hi:
            return clip(n.src[0].src[0], lo, hi)


@rule("c*clip(a, lo, hi) -> clip(c*a, c*lo, c*hi)   (bounds swap for c < 0)")
def _scale_into_clip(n: Node) -> Node | None:
    if n.op is Op.MUL and (c := _c(n.src[0])) is not None and c != 0 and n.src[1].op is Op.CLIP:
        lo, hi = n.src[1].arg
        blo, bhi = sorted((c * lo, c * hi))
        if not (math.isnan(blo) or math.isnan(bhi)):
            return clip(const(c) * n.src[1].src[0], blo, bhi)


@rule("clip(a, -inf, inf) -> a")
def _clip_unbounded(n: Node) -> Node | None:
    if n.op is Op.CLIP and n.arg == (-math.inf, math.inf):
        return n.src[0]


def simplify(root: Node, trace: list[str] | None = None) -> Node:
    from .fold_constants import FOLD

    return rewrite(root, [FOLD, *RULES.rules], trace)


@dataclass(frozen=True)
class Simplify:
    name: str = "simplify"

    def run(self, root: Node, ctx) -> Node:
        return simplify(root, ctx.trace)
