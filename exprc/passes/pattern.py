"""Patterns over IR nodes, the left-hand sides of rewrite rules (tinygrad's `UPat`, smaller).

    P(Op.MUL, C("c"), P.var("a"))        c*a: a mul whose first source is an f32 constant
    P((Op.NEG, Op.ABS), A, name="n")     neg(a) or abs(a), the node itself bound to `n`
    P(Op.POW, A, arg=1)                  a**1
    C(1.0), C("c", math.isfinite)        the constant 1.0; any finite constant, its value bound to `c`

A pattern names the op(s) its root may have (none: any op), patterns for the sources (none: any sources), the
dtype and `arg` the node must have, a predicate on the node, and the name it binds. `C` binds a constant's value
(a float); every other pattern binds the node. A name bound twice must bind the same node. Matching is structural
and in source order: `a*c` and `c*a` are different patterns (canonical order is a rule of its own).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..ir import F32, DType, Node, Op

_ANY = object()  # "no requirement" for `arg`


class P:
    __slots__ = ("ops", "src", "name", "dtype", "arg", "pred", "binds_value")

    def __init__(self, op: Op | Iterable[Op] | None = None, *src: "P", name: str | None = None,
                 dtype: DType | None = None, arg: Any = _ANY, pred: Callable[[Node], bool] | None = None) -> None:
        self.ops = None if op is None else frozenset((op,) if isinstance(op, Op) else op)
        self.src = src or None
        self.name = name
        self.dtype = dtype
        self.arg = arg
        self.pred = pred
        self.binds_value = False

    @staticmethod
    def var(name: str, pred: Callable[[Node], bool] | None = None) -> "P":
        """Any node, bound to `name` (that passes `pred`, when given)."""
        return P(name=name, pred=pred)

    def match(self, node: Node, binds: dict[str, Any]) -> bool:
        """Does `node` match? Names are bound into `binds` as it goes (partly filled when the answer is no)."""
        if self.ops is not None and node.op not in self.ops:
            return False
        if self.dtype is not None and node.dtype is not self.dtype:
            return False
        if self.arg is not _ANY and node.arg != self.arg:
            return False
        if self.src is not None:
            if len(node.src) != len(self.src):
                return False
            for p, s in zip(self.src, node.src, strict=True):
                if not p.match(s, binds):
                    return False
        if self.pred is not None and not self.pred(node.arg if self.binds_value else node):
            return False
        if self.name is not None:
            value = node.arg if self.binds_value else node
            if binds.setdefault(self.name, value) is not value:
                return False
        return True

    def __repr__(self) -> str:
        ops = "|".join(sorted(o.name.lower() for o in self.ops)) if self.ops else "*"
        src = f"({', '.join(map(repr, self.src))})" if self.src else ""
        return f"{ops}{src}{':' + self.name if self.name else ''}"


def C(name_or_value: str | float | None = None, pred: Callable[[float], bool] | None = None) -> P:
    """An f32 constant: `C("c")` binds its value to `c`; `C(1.0)` requires the value 1.0 (by `==`, so `C(0.0)`
    matches -0.0 too); `pred`, when given, must hold for the value."""
    is_name = isinstance(name_or_value, str) or name_or_value is None
    p = P(Op.CONST, dtype=F32, name=name_or_value if is_name else None,
          arg=_ANY if is_name else float(name_or_value), pred=pred)
    p.binds_value = True
    return p


def is_const(n: Node) -> bool:
    """An f32 constant (what `C` matches)."""
    return n.op is Op.CONST and n.dtype is F32


def not_const(n: Node) -> bool:
    return not is_const(n)
