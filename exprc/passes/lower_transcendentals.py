"""Lowering of tanh, sigmoid and integer powers, by precision mode.

- precise: tanh stays a library call (accurate, overflow-safe); sigmoid(a) -> 1/(1 + exp(-a)), which is exact in
  its limits (exp overflow gives 1/inf = 0, never NaN); exp stays a library call.
- fast: tanh -> tanh_approx (the `tanh.approx.f32` instruction); sigmoid(a) -> 0.5 + 0.5*tanh_approx(a/2);
  exp -> exp_approx (`ex2.approx`).
- horner: tanh(a) -> 1 - 2/(exp(2a) + 1) and sigmoid(a) -> 1/(1 + exp(-a)); both forms are NaN-free when exp
  overflows (2/inf = 0), so the textbook (e^2a - 1)/(e^2a + 1) overflow (NaN past a = 44) cannot happen. The exps
  are then shared (`share_exp`) and expanded into plain arithmetic (`lower_exp`). The error of these forms is
  absolute (about 1e-7 for tanh, which cancels near 0; sigmoid's tail below ~1e-7 is exact), as is fast mode's
  (tanh.approx.f32: about 2^-11): fine for the GP operator set (+ * tanh sigmoid neg clip), not for dividing by a
  tanh or sigmoid near zero, which needs `precise`.
Integer powers become multiplications by repeated squaring in every mode.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ir import Node, Op, const, unary
from .rewrite import Rule, rewrite


def _pow_muls(a: Node, n: int) -> Node:
    result: Node | None = None
    base = a
    while n:
        if n & 1:
            result = base if result is None else result * base
        n >>= 1
        if n:
            base = base * base
    return result if result is not None else const(1.0)


def lowering_rules(mode: str) -> list[Rule]:
    def lower(n: Node) -> Node | None:
        if n.op is Op.POW:
            return _pow_muls(n.src[0], n.arg)
        a = n.src[0] if n.src else None
        if mode == "precise":
            if n.op is Op.SIGMOID:
                return 1.0 / (1.0 + unary(Op.EXP, -a))
        elif mode == "fast":
            if n.op is Op.TANH:
                return unary(Op.TANH_APPROX, a)
            if n.op is Op.SIGMOID:
                return 0.5 + 0.5 * unary(Op.TANH_APPROX, 0.5 * a)
            if n.op is Op.EXP:
                return unary(Op.EXP_APPROX, a)
        elif mode == "horner":
            if n.op is Op.TANH:
                return 1.0 - 2.0 / (unary(Op.EXP, 2.0 * a) + 1.0)
            if n.op is Op.SIGMOID:
                return 1.0 / (1.0 + unary(Op.EXP, -a))
        return None

    return [Rule(f"lower transcendentals ({mode})", lower, "lower_transcendentals.py")]


@dataclass(frozen=True)
class LowerTranscendentals:
    mode: str
    name: str = "lower-transcendentals"

    def run(self, root: Node, ctx) -> Node:
        return rewrite(root, lowering_rules(self.mode), ctx.trace)
