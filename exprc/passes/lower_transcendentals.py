"""Lowering of tanh, sigmoid, exp and integer powers by precision mode: the table `LOWERINGS`, one entry per mode
and op, turned into one rule table per mode. What each mode computes, and its error, is stated once, in
`MODE_DESCRIPTIONS` below (`exprc --help` and the README quote it).

- precise: sigmoid(a) -> 1/(1 + exp(-a)), exact in its limits (exp overflow gives 1/inf = 0, never NaN).
- horner: tanh(a) -> 1 - 2/(exp(2a) + 1), sigmoid(a) -> 1/(1 + exp(-a)); both NaN-free when exp overflows
  (2/inf = 0), so the textbook (e^2a - 1)/(e^2a + 1) overflow (NaN past a = 44) cannot happen. The exps are then
  shared (`share_exp`), the divisions become a software reciprocal (`lower_reciprocal`) and the exps plain
  arithmetic (`lower_exp`).
Integer powers become multiplications by repeated squaring in every mode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..ir import Node, Op, const, unary
from .pattern import P
from .rewrite import Rule, RuleTable, rewrite


# The one statement of what each mode computes and its error. Sources: tanh.approx.f32's bound is NVIDIA's (PTX
# ISA, "tanh" instruction); horner's error was measured against float64 (`python bench/accuracy.py`: 3.5e-6 on
# the paper's layers under the interpreter), its reciprocal's over every f32 mantissa (`lower_reciprocal.py`).
MODE_DESCRIPTIONS = {
    "auto": "the default: for each expression and storage dtype, the cheapest lowering whose stated error bound "
            "is proven within the dtype's budget |f_computed - f| <= a*(1 + |f|), a = 2^-9 (bf16), 2^-12 (f16), "
            "2^-25 (f32), at every 16-bit input; precise where none is (always for f32); `exprc explain` shows "
            "the choice, the bounds and why",
    "precise": "accurate library math (libdevice tanh/exp), overflow-safe for every finite input",
    "fast": "hardware approximations: tanh.approx.f32 (maximum relative error about 2^-11, per NVIDIA's PTX ISA), "
            "sigmoid as 0.5 + 0.5*tanh(x/2), exp through ex2.approx.f32; the error is absolute near tanh's zero, "
            "so dividing by a tanh or sigmoid needs precise",
    "horner": "the paper's Appendix F: exp by range reduction and a degree-7 Horner polynomial, tanh and sigmoid "
              "on it with a software reciprocal (bit-trick seed and three Newton steps, 0.5 ulp), all plain "
              "arithmetic for accelerators without special-function units (no MUFU in the compiled code; a "
              "division whose divisor's range is unknown keeps IEEE division); absolute error about 4e-6 (tanh "
              "cancels near 0)",
}


def pow_muls(a: Node, n: int) -> Node:
    """a**n as multiplications: the squares a, a^2, a^4, ... multiplied where n has a 1 bit (a**0 is 1)."""
    result: Node | None = None
    base = a
    while n:
        if n & 1:
            result = base if result is None else result * base
        n >>= 1
        if n:
            base = base * base
    return result if result is not None else const(1.0)


def exp(a: Node) -> Node:
    return unary(Op.EXP, a)


def tanh_approx(a: Node) -> Node:
    return unary(Op.TANH_APPROX, a)


KEEP = None  # the op stays as it is: code generation writes it as a library call (or, for exp in horner, see below)
Lowering = tuple[str, Callable[..., Node]]  # (rule name, a -> lowered node; pow's gets the node as `n` too)
POW: Lowering = ("a**n -> multiplications by repeated squaring", lambda a, n: pow_muls(a, n.arg))

# mode -> op -> its lowering; errors are absolute, for f32 inputs
LOWERINGS: dict[str, dict[Op, Lowering | None]] = {
    "precise": {
        Op.TANH: KEEP,  # libdevice.tanh: accurate, overflow-safe
        Op.SIGMOID: ("sigmoid(a) -> 1/(1 + exp(-a))", lambda a: 1.0 / (1.0 + exp(-a))),  # exact limits: 1/inf = 0
        Op.EXP: KEEP,  # libdevice.exp
        Op.POW: POW,
    },
    "fast": {
        Op.TANH: ("tanh(a) -> tanh_approx(a)", lambda a: tanh_approx(a)),  # tanh.approx.f32: about 2^-11
        Op.SIGMOID: ("sigmoid(a) -> 0.5 + 0.5*tanh_approx(a/2)",
                     lambda a: 0.5 + 0.5 * tanh_approx(0.5 * a)),  # half of tanh.approx's: about 2^-12
        Op.EXP: ("exp(a) -> exp_approx(a)", lambda a: unary(Op.EXP_APPROX, a)),  # ex2.approx.f32 of a*log2(e)
        Op.POW: POW,
    },
    "horner": {
        Op.TANH: ("tanh(a) -> 1 - 2/(exp(2a) + 1)",
                  lambda a: 1.0 - 2.0 / (exp(2.0 * a) + 1.0)),  # about 1e-7 (cancels near 0); NaN-free: 2/inf = 0
        Op.SIGMOID: ("sigmoid(a) -> 1/(1 + exp(-a))", lambda a: 1.0 / (1.0 + exp(-a))),  # tail below ~1e-7 exact
        Op.EXP: KEEP,  # shared by share-exp, then expanded into plain arithmetic by lower-exp
        Op.POW: POW,
    },
}

A = P.var("a")


def _rule(op: Op, lowering: Lowering) -> Rule:
    name, fn = lowering
    return Rule.of(name, P(op, A, name="n") if op is Op.POW else P(op, A), fn)


LOWERING_RULES: dict[str, RuleTable] = {
    mode: RuleTable(_rule(op, low) for op, low in table.items() if low is not KEEP) for mode, table in LOWERINGS.items()
}


def lowering_rules(mode: str) -> RuleTable:
    return LOWERING_RULES[mode]


@dataclass(frozen=True)
class LowerTranscendentals:
    mode: str
    name: str = "lower-transcendentals"

    def run(self, root: Node, ctx) -> Node:
        return rewrite(root, lowering_rules(self.mode), ctx.trace)
