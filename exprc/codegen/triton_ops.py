"""How each IR op is written in Triton: one entry per `Op` (a test checks that the table is complete).

Leaves (`const`, `input`) are `Inline` entries, written in place of an operand; every other op is a `Stmt`
entry writing the statement(s) that assign the node's value to its temporary (see `op_table.py`). Semantics match
`exprc.ir.interpret` (the numpy reference): NaN propagates through every op, clip included.

Only builtins of `triton.language` are used (no `tl.zeros_like`, `tl.sigmoid`, ... which are jit functions of
its standard library): the interpreter cannot call those when Triton was imported without TRITON_INTERPRET=1.
The text assumes the module imports `triton`, `triton.language as tl` and `libdevice` (see `emit_triton.PRELUDE`),
and that the enclosing function has a constexpr `FAST_ASM` (inline PTX allowed: False under the interpreter).
"""

from __future__ import annotations

import math
import struct

import numpy as np

from ..ir import BOOL, F32, I32, Node, Op
from .op_table import Inline, Stmt, expr, expr_node, pow_by_squaring

F32_MAX = float(np.finfo(np.float32).max)
F32_MIN_NORMAL = float(np.finfo(np.float32).tiny)


def f32_literal(v: float) -> str | None:
    """Source text of a float constant as a Triton f32 literal, or None when no plain literal is exact.

    Triton turns a Python float into f32 only when it is 0 or of normal f32 magnitude; a constant that rounds
    to an f32 subnormal or overflows f32 must be built from its bits (`f32_from_bits`); so must -0.0, which
    Triton's frontend reads as +0.0.
    """
    if v == 0.0 and math.copysign(1.0, v) < 0:
        return None
    if v == 0.0 or F32_MIN_NORMAL <= abs(v) <= F32_MAX:
        return repr(float(v))
    with np.errstate(over="ignore"):
        f = float(np.float32(v))
    if F32_MIN_NORMAL <= abs(f) <= F32_MAX:
        return repr(f)
    return None


def f32_bits(v: float) -> int:
    """The int32 bit pattern of `v` rounded to f32 (overflow gives +-inf)."""
    with np.errstate(over="ignore"):
        return struct.unpack("<i", np.float32(v).tobytes())[0]


def f32_from_bits(v: float, like: str) -> str:
    """An f32 tensor shaped like `like` holding `v` exactly as f32 (for subnormal and overflowing constants)."""
    return f"tl.full({like}.shape, {f32_bits(v)}, tl.int32).to(tl.float32, bitcast=True)"


def const_text(node: Node, x: str) -> str:
    if node.dtype is BOOL:
        return repr(bool(node.arg))
    if node.dtype is I32:
        return repr(int(node.arg))
    return f32_literal(node.arg) or f32_from_bits(node.arg, x)


def scalar_text(v: float, x: str) -> str:
    """A float operand written into an op (clip bounds)."""
    return f32_literal(v) or f32_from_bits(v, x)


def _clip(out: str, args: tuple[str, ...], node: Node) -> list[str]:
    """Selects against the bounds (a side at +-inf is no bound): NaN and the argument's own zero at a bound of +-0
    pass through, as in np.clip. ptxas makes them FSETP + FMNMX.NAN + FSEL. (`tl.clamp` with NaN propagation is
    one FMNMX.NAN.XORSIGN for symmetric bounds on sm_86+, two FMNMX.NAN otherwise, but it took the 128-wide fused
    epilogue of horner's longest expression from 160 registers to 255 and spills, and the f32 prologue of the
    clip-only layers from 244 registers to 168 and 8-16 bytes of spills: sm_90, Triton 3.6 and 3.8.)"""
    (a,) = args
    lo, hi = node.arg
    text = a
    if hi != math.inf:
        text = f"tl.where({a} > {scalar_text(hi, a)}, {scalar_text(hi, a)}, {text})"
    if lo != -math.inf:
        text = f"tl.where({a} < {scalar_text(lo, a)}, {scalar_text(lo, a)}, {text})"
    return [f"{out} = {text}"]


def _inside(out: str, args: tuple[str, ...], node: Node) -> list[str]:
    """1.0 where lo < a < hi, else 0.0 (NaN too); a side at +-inf is no bound, as in `_clip`."""
    (a,) = args
    lo, hi = node.arg
    tests = ([f"({a} > {scalar_text(lo, a)})"] if lo != -math.inf else []) + (
        [f"({a} < {scalar_text(hi, a)})"] if hi != math.inf else [])
    if not tests:
        return [f"{out} = tl.full({a}.shape, 1.0, tl.float32)"]
    return [f"{out} = ({' & '.join(tests)}).to(tl.float32)"]


def _tanh_approx(out: str, args: tuple[str, ...], node: Node) -> list[str]:
    (a,) = args
    asm = f'tl.inline_asm_elementwise("tanh.approx.f32 $0, $1;", "=r,r", [{a}], dtype=tl.float32, is_pure=True, pack=1)'
    return [
        "if FAST_ASM:",
        f"    {out} = {asm}",
        "else:  # the interpreter cannot run inline PTX",
        f"    {out} = libdevice.tanh({a})",
    ]


def _cast(out: str, args: tuple[str, ...], node: Node) -> list[str]:
    target = {I32: "tl.int32", F32: "tl.float32"}[node.dtype]
    return [f"{out} = {args[0]}.to({target})"]


TRITON_OPS: dict[Op, Inline | Stmt] = {
    Op.CONST: Inline(const_text),
    Op.INPUT: Inline(lambda node, x: x),
    Op.ADD: expr(lambda a, b: f"{a} + {b}"),
    Op.SUB: expr(lambda a, b: f"{a} - {b}"),
    Op.MUL: expr(lambda a, b: f"{a} * {b}"),
    Op.DIV: expr(lambda a, b: f"tl.div_rn({a}, {b})"),  # IEEE division (`/` is div.full.f32: 2 ulp)
    Op.NEG: expr(lambda a: f"-{a}"),
    Op.ABS: expr(lambda a: f"tl.abs({a})"),
    Op.POW: pow_by_squaring(lambda a: f"tl.full({a}.shape, 1.0, tl.float32)"),
    Op.CLIP: Stmt(_clip),
    Op.INSIDE: Stmt(_inside),
    Op.SIGN: expr(lambda a: f"({a} > 0.0).to(tl.float32) - ({a} < 0.0).to(tl.float32)"),  # NaN, +-0 -> 0
    Op.TANH: expr(lambda a: f"libdevice.tanh({a})"),
    Op.SIGMOID: expr(lambda a: f"1.0 / (1.0 + libdevice.exp(-{a}))"),
    Op.EXP: expr(lambda a: f"libdevice.exp({a})"),
    Op.TANH_APPROX: Stmt(_tanh_approx),
    Op.EXP_APPROX: expr(lambda a: f"tl.exp({a})"),  # ex2.approx.f32 of a*log2(e) on NVIDIA
    Op.ROUND: expr(lambda a: f"libdevice.rint({a})"),  # round half to even
    Op.CAST: Stmt(_cast),
    Op.BITCAST: expr_node(lambda a, node: f"{a}.to({'tl.int32' if node.dtype is I32 else 'tl.float32'}, bitcast=True)"),
    Op.SHL: expr_node(lambda a, node: f"{a} << {int(node.arg)}"),
}
