"""Structural and type checks of an IR graph; run after every pass.

Two tables: the type signatures each op accepts (`SIGNATURES`: result dtype <- operand dtypes) and a check of each
op's `arg` (`ARG_CHECKS`: the reason it is wrong, or None). Every source must be a `Node`, and as many as the op's
arity; an op with no entry in `ARG_CHECKS` takes no `arg`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..errors import ExprcError
from .dtypes import BOOL, F32, I32, DType
from .node import Node
from .ops import GroupOp, Op, arity

MAX_POW = 16  # largest integer exponent `x**n` accepted

_F32_OPS = (GroupOp.Unary | {Op.DIV}) - {Op.CAST, Op.BITCAST, Op.SHL}

# op -> the accepted (result dtype, operand dtypes)
SIGNATURES: dict[Op, frozenset[tuple[DType, tuple[DType, ...]]]] = {
    Op.CONST: frozenset({(F32, ()), (I32, ()), (BOOL, ())}),
    Op.INPUT: frozenset({(F32, ())}),
    **{op: frozenset({(F32, (F32, F32)), (I32, (I32, I32))}) for op in (Op.ADD, Op.SUB, Op.MUL)},
    **{op: frozenset({(F32, (F32,) * arity(op))}) for op in _F32_OPS},
    Op.CAST: frozenset({(I32, (F32,)), (F32, (I32,))}),  # value conversion between f32 and i32
    Op.BITCAST: frozenset({(F32, (I32,)), (I32, (F32,))}),  # reinterprets i32 bits as f32 and back
    Op.SHL: frozenset({(I32, (I32,))}),
}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)


def _const(n: Node) -> str | None:
    ok = {F32: lambda v: isinstance(v, float) and not math.isnan(v), I32: _is_int, BOOL: lambda v: isinstance(v, bool)}
    return None if ok[n.dtype](n.arg) else f"constant {n.arg!r} does not fit {n.dtype.value}"


def _bounds(n: Node) -> str | None:
    arg = n.arg
    if isinstance(arg, tuple) and len(arg) == 2 and all(map(_is_number, arg)) and arg[0] <= arg[1]:
        return None
    return f"{n.op.name.lower()} bounds {arg!r} must be two numbers with lo <= hi"


# op -> check of its arg: None when fine, else what is wrong
ARG_CHECKS: dict[Op, Callable[[Node], str | None]] = {
    Op.CONST: _const,
    Op.INPUT: lambda n: None if n.arg == "x" else "the only input is x:f32",
    Op.POW: lambda n: None if _is_int(n.arg) and 0 <= n.arg <= MAX_POW else
    f"pow exponent must be an integer in 0..{MAX_POW}, got {n.arg!r}",
    Op.CLIP: _bounds,
    Op.INSIDE: _bounds,
    Op.SHL: lambda n: None if _is_int(n.arg) and 0 <= n.arg < 32 else "shl shifts an i32 by 0..31",
}


def _fail(node: Node, why: str, show: bool = True) -> None:
    from .printer import print_ir

    op = node.op.name.lower() if isinstance(node.op, Op) else repr(node.op)
    where = f"\n{print_ir(node)}" if show else ""
    raise ExprcError(f"invalid IR at {op}: {why}{where}")


def _check_node(n: Node) -> None:
    """What must hold before the walk follows the node's sources."""
    if not isinstance(n.op, Op) or not isinstance(n.dtype, DType):
        _fail(n, f"unknown op or type {n.op!r}:{n.dtype!r}", show=False)
    for i, s in enumerate(n.src):
        if not isinstance(s, Node):
            _fail(n, f"operand {i} is {s!r}, not an IR node", show=False)
    if len(n.src) != arity(n.op):
        _fail(n, f"expected {arity(n.op)} operands, got {len(n.src)}")


def _walk(root: Node) -> list[Node]:
    """Every node reachable from root, each after its sources, each checked by `_check_node` before its sources
    are followed (so a source that is not a node is reported, not tripped over)."""
    order: list[Node] = []
    seen: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        n, expanded = stack.pop()
        if expanded:
            order.append(n)
        elif id(n) not in seen:
            seen.add(id(n))
            _check_node(n)
            stack.append((n, True))
            stack.extend((s, False) for s in reversed(n.src))
    return order


def verify(root: Node) -> Node:
    if not isinstance(root, Node):
        raise ExprcError(f"invalid IR: the root is {root!r}, not an IR node")
    for n in _walk(root):
        sig = (n.dtype, tuple(s.dtype for s in n.src))
        if sig not in SIGNATURES[n.op]:
            want = " or ".join(f"{', '.join(d.value for d in ds) or 'nothing'} -> {r.value}"
                               for r, ds in sorted(SIGNATURES[n.op], key=str))
            got = f"{', '.join(d.value for d in sig[1]) or 'nothing'} -> {sig[0].value}"
            _fail(n, f"types {got}; {n.op.name.lower()} takes {want}")
        check = ARG_CHECKS.get(n.op)
        why = check(n) if check else None if n.arg is None else f"takes no argument, got {n.arg!r}"
        if why:
            _fail(n, why)
    return root
