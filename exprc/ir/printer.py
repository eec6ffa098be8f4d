"""The IR text form, one op a line, names assigned at print time; `text_parser.parse_ir` reads it back.

    %0:f32 = input x
    %1:f32 = const 2.11
    %2:f32 = clip %0, -5.0, 5.0
    %3:f32 = mul %1, %2
    return %3
"""

from __future__ import annotations

from .dtypes import F32
from .node import Node
from .ops import GroupOp, Op


def format_float(v: float) -> str:
    """Shortest text that reads back to the same double (``repr``), with inf spelled ``inf``."""
    return repr(float(v))


def format_arg(node: Node) -> str:
    op, arg = node.op, node.arg
    if op is Op.CONST:
        if node.dtype is F32:
            return format_float(arg)
        return str(arg).lower() if isinstance(arg, bool) else str(int(arg))
    if op is Op.INPUT:
        return str(arg)
    if op in GroupOp.Bounded and isinstance(arg, tuple) and len(arg) == 2:
        return f"{format_float(arg[0])}, {format_float(arg[1])}"
    if op in (Op.POW, Op.SHL) and isinstance(arg, int):
        return str(int(arg))
    return "" if arg is None else repr(arg)  # invalid IR (what the verifier reports) prints too


def print_ir(root: Node) -> str:
    names: dict[int, str] = {}
    lines = []
    for node in root.toposort():
        name = f"%{len(names)}"
        names[id(node)] = name
        parts = [names[id(s)] for s in node.src]
        arg = format_arg(node)
        if arg:
            parts.append(arg)
        operands = ", ".join(parts)
        lines.append(f"{name}:{node.dtype.value} = {node.op.name.lower()}{' ' + operands if operands else ''}")
    lines.append(f"return {names[id(root)]}")
    return "\n".join(lines)
