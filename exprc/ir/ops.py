"""The op set of the IR and the families rules speak about.

Every op a pass can produce is listed here; tables keyed by ``Op`` (codegen, cost, interpreter)
are tested for completeness against this enum.
"""

from __future__ import annotations

from enum import Enum, auto


class Op(Enum):
    # leaves
    CONST = auto()  # arg: float (f32 compute value) or int (i32)
    INPUT = auto()  # arg: variable name, always "x"
    # arithmetic
    ADD = auto()
    SUB = auto()
    MUL = auto()
    DIV = auto()
    NEG = auto()
    ABS = auto()
    POW = auto()  # arg: small non-negative int exponent; src: (base,)
    CLIP = auto()  # arg: (lo, hi) floats, either may be +-inf; NaN-propagating
    # produced by the derivative pass (piecewise constant: their own derivative is 0)
    INSIDE = auto()  # arg: (lo, hi) as clip's; 1.0 where lo < a < hi (a side at +-inf is no bound), else 0.0 (NaN too)
    SIGN = auto()  # 1.0 for a > 0, -1.0 for a < 0, 0.0 for +-0 and NaN (torch.sign's convention)
    # transcendentals (before lowering)
    TANH = auto()
    SIGMOID = auto()
    EXP = auto()
    # produced by lowering
    TANH_APPROX = auto()  # hardware tanh (tanh.approx.f32), `fast` mode
    EXP_APPROX = auto()  # hardware exp (ex2.approx.f32 after *log2e), `fast` mode
    ROUND = auto()  # round half to even, f32 -> f32 (plain arithmetic in codegen)
    CAST = auto()  # value conversion; dtype says the target (f32 <-> i32)
    BITCAST = auto()  # reinterpret bits; dtype says the target (i32 <-> f32)
    SHL = auto()  # i32 << arg (int)


class GroupOp:
    Leaf = frozenset({Op.CONST, Op.INPUT})
    Unary = frozenset(
        {Op.NEG, Op.ABS, Op.POW, Op.CLIP, Op.INSIDE, Op.SIGN, Op.TANH, Op.SIGMOID, Op.EXP, Op.TANH_APPROX,
         Op.EXP_APPROX, Op.ROUND, Op.CAST, Op.BITCAST, Op.SHL}
    )
    Binary = frozenset({Op.ADD, Op.SUB, Op.MUL, Op.DIV})
    Commutative = frozenset({Op.ADD, Op.MUL})
    Transcendental = frozenset({Op.TANH, Op.SIGMOID, Op.EXP, Op.TANH_APPROX, Op.EXP_APPROX})
    # ops whose `arg` is part of their meaning (printed after the operands)
    WithArg = frozenset({Op.CONST, Op.INPUT, Op.POW, Op.CLIP, Op.INSIDE, Op.SHL})
    # ops whose `arg` is a pair of bounds (lo, hi)
    Bounded = frozenset({Op.CLIP, Op.INSIDE})


ARITY: dict[Op, int] = {
    **{op: 0 for op in GroupOp.Leaf}, **{op: 1 for op in GroupOp.Unary}, **{op: 2 for op in GroupOp.Binary}}


def arity(op: Op) -> int:
    return ARITY[op]
