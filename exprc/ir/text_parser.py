"""Parse the IR text form written by `printer.print_ir` back into nodes (for golden tests and debugging)."""

from __future__ import annotations

import re

from ..errors import ExprcError, Span
from .dtypes import DType
from .node import Node
from .ops import GroupOp, Op, arity

_LINE = re.compile(r"^\s*(%\d+):(\w+)\s*=\s*(\w+)\s*(.*?)\s*$")
_RET = re.compile(r"^\s*return\s+(%\d+)\s*$")


def _float(tok: str, span: Span, text: str) -> float:
    try:
        return float(tok)
    except ValueError:
        raise ExprcError(f"expected a number, found {tok!r}", span, text) from None


def parse_ir(text: str) -> Node:
    values: dict[str, Node] = {}
    root: Node | None = None
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip() or line.strip().startswith("#"):
            continue
        whole = Span(lineno, 0, len(line))
        if m := _RET.match(line):
            if m.group(1) not in values:
                raise ExprcError(f"return of undefined value {m.group(1)}", whole, text)
            root = values[m.group(1)]
            continue
        m = _LINE.match(line)
        if not m:
            raise ExprcError("expected '%N:type = op operands' or 'return %N'", whole, text)
        name, dtype_s, op_s, rest = m.groups()
        try:
            dtype = DType(dtype_s)
        except ValueError:
            raise ExprcError(f"unknown type {dtype_s!r}", whole, text) from None
        try:
            op = Op[op_s.upper()]
        except KeyError:
            raise ExprcError(f"unknown op {op_s!r}", whole, text) from None
        toks = [t.strip() for t in rest.split(",")] if rest else []
        n = arity(op)
        srcs, args = toks[:n], toks[n:]
        if len(srcs) < n or any(s not in values for s in srcs):
            raise ExprcError(f"{op_s} needs {n} defined operand(s), found {rest!r}", whole, text)
        src = tuple(values[s] for s in srcs)
        arg = None
        if op in GroupOp.WithArg:
            if op in GroupOp.Bounded:
                if len(args) != 2:
                    raise ExprcError(f"{op_s} needs two bounds", whole, text)
                arg = (_float(args[0], whole, text), _float(args[1], whole, text))
            elif len(args) != 1:
                raise ExprcError(f"{op_s} needs one argument", whole, text)
            elif op is Op.INPUT:
                arg = args[0]
            elif op is Op.CONST:
                arg = _float(args[0], whole, text) if dtype is DType.F32 else (
                    args[0] == "true" if dtype is DType.BOOL else int(args[0]))
            else:
                arg = int(args[0])
        elif args:
            raise ExprcError(f"{op_s} takes no argument, found {', '.join(args)!r}", whole, text)
        values[name] = Node(op, dtype, src, arg)
    if root is None:
        raise ExprcError("IR text has no 'return' line")
    return root
