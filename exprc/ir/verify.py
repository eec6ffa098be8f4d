"""Structural and type checks of an IR graph; run after every pass."""

from __future__ import annotations

import math

from ..errors import ExprcError
from .dtypes import BOOL, F32, I32
from .node import Node
from .ops import GroupOp, Op, arity

MAX_POW = 16  # largest integer exponent `x**n` accepted


def _fail(node: Node, why: str) -> None:
    from .printer import print_ir

    raise ExprcError(f"invalid IR at {node.op.name.lower()}: {why}\n{print_ir(node)}")


def verify(root: Node) -> Node:
    for n in root.toposort():
        if len(n.src) != arity(n.op):
            _fail(n, f"expected {arity(n.op)} operands, got {len(n.src)}")
        ds = [s.dtype for s in n.src]
        op = n.op
        if op is Op.CONST:
            ok = (n.dtype is F32 and isinstance(n.arg, float) and not math.isnan(n.arg)) or (
                n.dtype is I32 and isinstance(n.arg, int) and not isinstance(n.arg, bool)) or (
                n.dtype is BOOL and isinstance(n.arg, bool))
            if not ok:
                _fail(n, f"constant {n.arg!r} does not fit {n.dtype.value}")
        elif op is Op.INPUT:
            if n.dtype is not F32 or n.arg != "x":
                _fail(n, "the only input is x:f32")
        elif op in GroupOp.Compare:
            if n.dtype is not BOOL or ds[0] is not ds[1] or ds[0] is BOOL:
                _fail(n, "comparisons take two f32 or two i32 operands and give bool")
        elif op is Op.WHERE:
            if ds[0] is not BOOL or ds[1] is not ds[2] or n.dtype is not ds[1]:
                _fail(n, "where(bool, a, b) needs a and b of the result type")
        elif op is Op.CAST:
            if {n.dtype, ds[0]} != {F32, I32}:
                _fail(n, "cast converts between f32 and i32")
        elif op is Op.BITCAST:
            if n.dtype is not F32 or ds[0] is not I32:
                _fail(n, "bitcast reinterprets i32 as f32")
        elif op is Op.SHL:
            if n.dtype is not I32 or ds[0] is not I32 or not isinstance(n.arg, int) or not 0 <= n.arg < 32:
                _fail(n, "shl shifts an i32 by 0..31")
        elif op in (Op.ADD, Op.SUB, Op.MUL):
            if ds[0] is not ds[1] or n.dtype is not ds[0] or n.dtype is BOOL:
                _fail(n, "arithmetic needs operands and result of one numeric type")
        else:  # f32-only ops
            if n.dtype is not F32 or any(d is not F32 for d in ds):
                _fail(n, "operands and result must be f32")
            if op is Op.CLIP:
                lo, hi = n.arg if isinstance(n.arg, tuple) and len(n.arg) == 2 else (math.nan, math.nan)
                if math.isnan(lo) or math.isnan(hi) or lo > hi:
                    _fail(n, f"clip bounds {n.arg!r} must be numbers with lo <= hi")
            if op is Op.POW and (not isinstance(n.arg, int) or not 0 <= n.arg <= MAX_POW):
                _fail(n, f"pow exponent must be an integer in 0..{MAX_POW}")
    return root
