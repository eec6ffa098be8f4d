"""Horner-expanded exp (the paper's Appendix F), all plain arithmetic, for `horner` mode.

    k = round(a * log2(e))                       range reduction: a = k*ln2 + r, |r| <= ln2/2
    r = (a - k*LN2_HI) - k*LN2_LO                (Cody-Waite: k*LN2_HI is exact for |k| < 2**11)
    p = 1 + r(1 + r(1/2 + ... + r/5040))         degree-7 Taylor polynomial by Horner: 7 mul + 7 add
    e^a = p * 2**(k-1) * 2                       2**(k-1) built in the exponent field: ((k + 126) << 23)

Only when range analysis cannot bound `a` inside [-86.6, 89] is it clamped first (a NaN-propagating clip):
below, the result is at most 2.5e-38 off; above 88.72 the last multiplication overflows to inf, as e^a does.
The split 2**(k-1) * 2 keeps the exponent field valid for k = 128.

The pass is one rule (`exp(a) -> horner_exp(a)`); `horner_exp` builds the expansion as ordinary IR, so folding and
CSE still run on it. It reads the range of `a` (whether to clamp) rather than matching a shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..ir import F32, I32, Node, Op, clip, const
from .ranges import interval
from .pattern import P
from .rewrite import RuleTable, rewrite

LOG2E = 1.4426950408889634
LN2_HI = 0.693145751953125  # ln 2 rounded to 16 significant bits
LN2_LO = 1.4286068202862268e-06  # ln 2 - LN2_HI
DEGREE = 7
COEFFS = tuple(1.0 / math.factorial(k) for k in range(DEGREE + 1))  # a_0 .. a_7
CLAMP_LO, CLAMP_HI = -86.6, 89.0


def horner(r: Node, coeffs: tuple[float, ...]) -> Node:
    """a_0 + r*(a_1 + r*(... + r*a_N)): N multiplications and N additions."""
    p = const(coeffs[-1]) * r + coeffs[-2]
    for a in reversed(coeffs[:-2]):
        p = p * r + a
    return p


def horner_exp(a: Node) -> Node:
    lo, hi = interval(a)
    if lo < CLAMP_LO or hi > CLAMP_HI:
        a = clip(a, CLAMP_LO if lo < CLAMP_LO else -math.inf, CLAMP_HI if hi > CLAMP_HI else math.inf)
    k = Node(Op.ROUND, F32, (const(LOG2E) * a,))
    r = (a - const(LN2_HI) * k) - const(LN2_LO) * k
    p = horner(r, COEFFS)
    ki = Node(Op.CAST, I32, (k,))
    bits = Node(Op.SHL, I32, (ki + const(126, I32),), 23)
    scale = Node(Op.BITCAST, F32, (bits,))
    return (p * scale) * 2.0


RULES = RuleTable([
    ("exp(a) -> horner_exp(a)", P(Op.EXP, P.var("a")), lambda a: horner_exp(a)),
])


@dataclass(frozen=True)
class LowerExp:
    name: str = "lower-exp"

    def run(self, root: Node, ctx) -> Node:
        return rewrite(root, RULES, ctx.trace)
