"""Software reciprocal for `horner` mode: divisions become plain arithmetic, so the per-element code needs no
special-function unit (IEEE division's `div.rn.f32` is MUFU.RCP plus a called slow path).

    y0 = bitcast_f32(0x7EF311C7 - bitcast_i32(d))      seed: the exponent negated by the integer subtraction,
                                                        the mantissa linearly approximated (relative error <= 0.051)
    e = 1 - d*y;  y = y + y*e                           Newton's step, three times: 0.051 -> 2.6e-3 -> 6.6e-6 -> 2^-24

Measured over every f32 in [1, 2) (the seed and the steps scale exactly with the exponent): at most 0.501 ulp with
fused multiply-adds (the GPU contracts `1 - d*y` and `y + y*e` into FFMA), at most 1.5 ulp rounding each
operation. Valid for d in [2^-125, 2^125], where seed and result are normal f32; the rule fires only where range
analysis proves the divisor there (or, one-signed, its negation), or for divisors >= 1, clamped at 2^125 and the
result multiplied by inside(d, -inf, 2^125): tanh's 2/(e^2a + 1) and sigmoid's 1/(1 + e^-a), whose true values past
the clamp are below 2^-125 and become exactly 0 (sigmoid(-inf) = 0 and s*(1 - s) = 0 where sigmoid saturates, as
with IEEE division's 1/inf). Any other division keeps IEEE division. NaN propagates (d*y is NaN, NaN*0 too).

The pass is one rule (`a/b -> a * reciprocal(b)`); it runs before `lower-exp`, while a divisor such as
`exp(2a) + 1` still has a known range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..ir import F32, I32, Node, Op, clip, const
from .pattern import P
from .ranges import interval
from .rewrite import RuleTable, rewrite

MAGIC = 0x7EF311C7
STEPS = 3
LO, HI = 2.0**-125, 2.0**125
MAX_RELATIVE_ERROR = 2.0**-24 * 1.01  # with FMA; the rule's stated bound (see the docstring)


def reciprocal_positive(d: Node) -> Node:
    """1/d for d in [LO, HI] (callers guarantee it, by range or by a clamp): seed and Newton steps as IR."""
    y = Node(Op.BITCAST, F32, (const(MAGIC, I32) - Node(Op.BITCAST, I32, (d,)),))
    for _ in range(STEPS):
        y = y + y * (1.0 - d * y)
    return y


def reciprocal(d: Node) -> Node | None:
    """1/d as plain arithmetic, or None when the range of d does not allow it (see the module docstring)."""
    lo, hi = interval(d)
    if LO <= lo and hi <= HI:
        return reciprocal_positive(d)
    if -HI <= lo and hi <= -LO:
        return -reciprocal_positive(-d)
    if lo >= 1.0:  # 1/d < 2^-125 above HI: flushed to 0
        return reciprocal_positive(clip(d, -math.inf, HI)) * Node(Op.INSIDE, F32, (d,), (-math.inf, HI))
    return None


def lower_div(a: Node, b: Node) -> Node | None:
    r = reciprocal(b)
    if r is None:
        return None
    return r if a.op is Op.CONST and a.arg == 1.0 else a * r


RULES = RuleTable([
    ("a/b -> a * reciprocal(b) (b proven in [2^-125, 2^125], or >= 1 clamped there)",
     P(Op.DIV, P.var("a"), P.var("b")), lambda a, b: lower_div(a, b)),
])


@dataclass(frozen=True)
class LowerReciprocal:
    name: str = "lower-reciprocal"

    def run(self, root: Node, ctx) -> Node:
        return rewrite(root, RULES, ctx.trace)
