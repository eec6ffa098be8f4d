"""Algebraic simplification: a table of local rules, one a line, each named by the `before -> after` it implements.

Canonical forms: constants on the left of `*` (`c*a`) and on the right of `+` (`a + c`); subtraction of a constant
becomes addition of its negation. Rules are exact for every input (NaN and inf included) except reassociation of
two constants (`c1*(c2*a) -> (c1*c2)*a`), which moves the rounding of one multiplication, well inside 1 ulp
of float64 folding. A replacement that returns None (a guard failed: a non-finite folded constant, say) does not
fire. Constant folding (`fold_constants.RULES`) runs first, as part of the same table.

In the patterns, `A`, `B` are any node, `NA`, `NB` any node but an f32 constant, `C("c")` an f32 constant whose
value is bound to `c`; `F32` on a root means the node itself must be f32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..ir import F32, Node, Op, clip, const
from .fold_constants import RULES as FOLD_RULES
from .pattern import C, P, not_const
from .rewrite import Fired, RuleTable, rewrite

A, B = P.var("a"), P.var("b")
NA, NB = P.var("a", not_const), P.var("b", not_const)
ADD, SUB, MUL, DIV, NEG = Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.NEG


def _finite(v: float) -> Node | None:
    """The constant `v`, or None (the rule does not fire) when folding overflowed."""
    return const(v) if math.isfinite(v) else None


def _exact_reciprocal(c: float) -> bool:
    """1/c is exact: c a finite, non-zero power of two whose reciprocal is finite."""
    return c != 0 and math.isfinite(c) and abs(math.frexp(c)[0]) == 0.5 and math.isfinite(1 / c)


def _scaled(c1: float, c2: float, a: Node, op: Op) -> Node | None:
    c = _finite(c1 * c2)
    return None if c is None else Node(op, F32, (c, a))


def _distribute(c1: float, a: Node, c2: float) -> Node | None:
    c = _finite(c1 * c2)
    return None if c is None else const(c1) * a + c


def _add_consts(a: Node, c1: float, c2: float) -> Node | None:
    c = _finite(c1 + c2)
    return None if c is None else a + c


def _clip_clip(a: Node, inner: Node, outer: Node) -> Node | None:
    (l1, h1), (l2, h2) = inner.arg, outer.arg
    lo, hi = max(l1, l2), min(h1, h2)
    return clip(a, lo, hi) if lo <= hi else None


def _scale_into_clip(c: float, a: Node, k: Node) -> Node | None:
    lo, hi = sorted((c * k.arg[0], c * k.arg[1]))
    return None if math.isnan(lo) or math.isnan(hi) else clip(const(c) * a, lo, hi)


RULES = RuleTable([
    # -- canonical order
    ("a*c -> c*a", P(MUL, NA, C("c"), dtype=F32), lambda a, c: const(c) * a),
    ("c+a -> a+c", P(ADD, C("c"), NA, dtype=F32), lambda c, a: a + const(c)),
    ("a-c -> a+(-c)", P(SUB, A, C("c"), dtype=F32), lambda a, c: a + const(-c)),
    ("c-a -> neg(a)+c", P(SUB, C("c"), NA, dtype=F32), lambda c, a: -a + const(c)),
    # -- identities
    ("1*a -> a", P(MUL, C(1.0), A), lambda a: a),
    ("-1*a -> neg(a)", P(MUL, C(-1.0), A), lambda a: -a),
    ("a+0 -> a", P(ADD, A, C(0.0)), lambda a: a),
    ("a/1 -> a", P(DIV, A, C(1.0)), lambda a: a),
    ("a/c -> (1/c)*a   (c a power of two: exact)", P(DIV, A, C("c", _exact_reciprocal)), lambda a, c: const(1 / c) * a),
    ("a**1 -> a", P(Op.POW, A, arg=1), lambda a: a),
    ("a**0 -> 1", P(Op.POW, arg=0), lambda: const(1.0)),
    # -- negation
    ("neg(neg(a)) -> a", P(NEG, P(NEG, A)), lambda a: a),
    ("neg(c*a) -> (-c)*a", P(NEG, P(MUL, C("c"), A)), lambda c, a: const(-c) * a),
    ("c*neg(a) -> (-c)*a", P(MUL, C("c"), P(NEG, A)), lambda c, a: const(-c) * a),
    ("neg(a+c) -> neg(a)+(-c)", P(NEG, P(ADD, A, C("c"))), lambda a, c: -a + const(-c)),
    ("a+neg(b) -> a-b", P(ADD, A, P(NEG, B)), lambda a, b: a - b),
    ("neg(a)+b -> b-a", P(ADD, P(NEG, A), NB), lambda a, b: b - a),
    ("a-neg(b) -> a+b", P(SUB, A, P(NEG, B)), lambda a, b: a + b),
    ("abs(neg(a)) -> abs(a); abs(abs(a)) -> abs(a)", P(Op.ABS, P((NEG, Op.ABS), A)), lambda a: Node(Op.ABS, F32, (a,))),
    # -- constants move outward and combine
    ("c1*(c2*a) -> (c1*c2)*a", P(MUL, C("c1"), P(MUL, C("c2"), A)), lambda c1, c2, a: _scaled(c1, c2, a, MUL)),
    ("c1*(c2/a) -> (c1*c2)/a", P(MUL, C("c1"), P(DIV, C("c2"), A)), lambda c1, c2, a: _scaled(c1, c2, a, DIV)),
    ("neg(c/a) -> (-c)/a", P(NEG, P(DIV, C("c"), A)), lambda c, a: const(-c) / a),
    ("c1*(a+c2) -> c1*a + c1*c2", P(MUL, C("c1"), P(ADD, A, C("c2"))), lambda c1, a, c2: _distribute(c1, a, c2)),
    ("(a+c1)+c2 -> a+(c1+c2)", P(ADD, P(ADD, A, C("c1")), C("c2")), lambda a, c1, c2: _add_consts(a, c1, c2)),
    ("(a+c)+b -> (a+b)+c", P(ADD, P(ADD, A, C("c")), NB, dtype=F32), lambda a, c, b: (a + b) + const(c)),
    ("a+(b+c) -> (a+b)+c", P(ADD, NA, P(ADD, B, C("c")), dtype=F32), lambda a, b, c: (a + b) + const(c)),
    ("(a+c)-b -> (a-b)+c", P(SUB, P(ADD, A, C("c")), NB, dtype=F32), lambda a, c, b: (a - b) + const(c)),
    # -- clip
    ("clip(clip(a, l1, h1), l2, h2) -> clip(a, max(l1,l2), min(h1,h2))",
     P(Op.CLIP, P(Op.CLIP, A, name="inner"), name="outer"),
     lambda a, inner, outer: _clip_clip(a, inner, outer)),
    ("c*clip(a, lo, hi) -> clip(c*a, c*lo, c*hi)   (bounds swap for c < 0)",
     P(MUL, C("c", lambda c: c != 0), P(Op.CLIP, A, name="k")),
     lambda c, a, k: _scale_into_clip(c, a, k)),
    ("clip(a, -inf, inf) -> a", P(Op.CLIP, A, arg=(-math.inf, math.inf)), lambda a: a),
])


def simplify(root: Node, trace: list[Fired] | None = None) -> Node:
    return rewrite(root, FOLD_RULES + RULES, trace)


@dataclass(frozen=True)
class Simplify:
    name: str = "simplify"

    def run(self, root: Node, ctx) -> Node:
        return simplify(root, ctx.trace)
