"""How each IR op is written in eager PyTorch: one entry per `Op` (a test checks that the table is complete).

Same shape as `triton_ops.TRITON_OPS` (see `op_table.py`) and the same semantics as `exprc.ir.interpret`:
computed on float32 tensors, NaN propagating through every op (`torch.clamp` propagates NaN). Fast-mode ops
(`tanh_approx`, `exp_approx`) are the accurate torch functions.
The text assumes the module imports `math` and `torch`.
"""

from __future__ import annotations

import math

from ..ir import BOOL, F32, I32, Node, Op
from .op_table import Inline, Stmt, expr, expr_node, pow_by_squaring


def float_text(v: float) -> str:
    """A Python float literal (torch rounds it to f32 where it meets an f32 tensor); infinities via `math`."""
    if math.isinf(v):
        return "math.inf" if v > 0 else "-math.inf"
    return repr(float(v))


def const_text(node: Node, x: str) -> str:
    if node.dtype is BOOL:
        return repr(bool(node.arg))
    if node.dtype is I32:
        return repr(int(node.arg))
    return float_text(node.arg)


def tensor_const(node: Node, x: str) -> str:
    """A constant as a tensor shaped like `x`, of the node's dtype."""
    dtype = {F32: "torch.float32", I32: "torch.int32", BOOL: "torch.bool"}[node.dtype]
    return f"torch.full_like({x}, {const_text(node, x)}, dtype={dtype})"


def _clip(out: str, args: tuple[str, ...], node: Node) -> list[str]:
    (a,) = args
    lo, hi = node.arg
    bounds = []
    if lo != -math.inf:  # a side at +-inf is no bound
        bounds.append(f"min={float_text(lo)}")
    if hi != math.inf:
        bounds.append(f"max={float_text(hi)}")
    if not bounds:
        return [f"{out} = {a}"]
    return [f"{out} = torch.clamp({a}, {', '.join(bounds)})"]


def _inside(out: str, args: tuple[str, ...], node: Node) -> list[str]:
    """1.0 where lo < a < hi, else 0.0 (NaN too), in a's dtype: torch.clamp's gradient with scalar bounds."""
    (a,) = args
    lo, hi = node.arg
    tests = ([f"({a} > {float_text(lo)})"] if lo != -math.inf else []) + (
        [f"({a} < {float_text(hi)})"] if hi != math.inf else [])
    if not tests:
        return [f"{out} = torch.ones_like({a})"]
    return [f"{out} = ({' & '.join(tests)}).to({a}.dtype)"]


TORCH_OPS: dict[Op, Inline | Stmt] = {
    Op.CONST: Inline(const_text),
    Op.INPUT: Inline(lambda node, x: x),
    Op.ADD: expr(lambda a, b: f"{a} + {b}"),
    Op.SUB: expr(lambda a, b: f"{a} - {b}"),
    Op.MUL: expr(lambda a, b: f"{a} * {b}"),
    Op.DIV: expr(lambda a, b: f"{a} / {b}"),
    Op.NEG: expr(lambda a: f"-{a}"),
    Op.ABS: expr(lambda a: f"torch.abs({a})"),
    Op.POW: pow_by_squaring(lambda a: f"torch.ones_like({a})"),
    Op.CLIP: Stmt(_clip),
    Op.INSIDE: Stmt(_inside),
    Op.SIGN: expr(lambda a: f"({a} > 0).to({a}.dtype) - ({a} < 0).to({a}.dtype)"),  # NaN -> 0 on every device
    Op.TANH: expr(lambda a: f"torch.tanh({a})"),
    Op.SIGMOID: expr(lambda a: f"torch.sigmoid({a})"),
    Op.EXP: expr(lambda a: f"torch.exp({a})"),
    Op.TANH_APPROX: expr(lambda a: f"torch.tanh({a})"),
    Op.EXP_APPROX: expr(lambda a: f"torch.exp({a})"),
    Op.ROUND: expr(lambda a: f"torch.round({a})"),  # round half to even
    Op.CAST: expr_node(lambda a, node: f"{a}.to({'torch.int32' if node.dtype is I32 else 'torch.float32'})"),
    Op.BITCAST: expr_node(lambda a, node: f"{a}.view({'torch.int32' if node.dtype is I32 else 'torch.float32'})"),
    Op.SHL: expr_node(lambda a, node: f"torch.bitwise_left_shift({a}, {int(node.arg)})"),
}
