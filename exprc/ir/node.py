"""Hash-consed IR nodes.

``Node(op, dtype, src, arg)`` returns the existing object when an identical node already exists, so structural
equality is identity, common subexpressions are shared for free and a rewrite loop can stop when ``new is old``.
Nodes are immutable. Source positions are not part of a node (the frontend keeps them in a side table).
"""

from __future__ import annotations

import math
import struct
import weakref
from typing import Any, Callable

from .dtypes import BOOL, F32, I32, DType
from .ops import Op


def _arg_key(arg: Any) -> Any:
    """A hashable key that tells 0.0 from -0.0 and treats every NaN alike."""
    if isinstance(arg, bool):
        return ("b", arg)
    if isinstance(arg, float):
        return ("f", struct.pack("<d", arg if not math.isnan(arg) else math.nan))
    if isinstance(arg, tuple):
        return ("t",) + tuple(_arg_key(a) for a in arg)
    return ("o", type(arg).__name__, arg)


class Node:
    __slots__ = ("op", "dtype", "src", "arg", "__weakref__")
    _cache: "weakref.WeakValueDictionary[tuple, Node]" = weakref.WeakValueDictionary()

    op: Op
    dtype: DType
    src: tuple["Node", ...]
    arg: Any

    def __new__(cls, op: Op, dtype: DType = F32, src: tuple["Node", ...] = (), arg: Any = None) -> "Node":
        src = tuple(src)
        key = (op, dtype, tuple(id(s) for s in src), _arg_key(arg))
        hit = cls._cache.get(key)
        if hit is not None and hit.src == src:
            return hit
        self = object.__new__(cls)
        object.__setattr__(self, "op", op)
        object.__setattr__(self, "dtype", dtype)
        object.__setattr__(self, "src", src)
        object.__setattr__(self, "arg", arg)
        cls._cache[key] = self
        return self

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("IR nodes are immutable")

    def __reduce__(self):  # pickling rebuilds through the cache
        return (Node, (self.op, self.dtype, self.src, self.arg))

    def __repr__(self) -> str:
        from .printer import print_ir

        return f"<Node {self.op.name}>\n" + print_ir(self)

    # -- graph helpers -------------------------------------------------------------------------
    def toposort(self, skip: "Callable[[Node], bool] | None" = None) -> list["Node"]:
        """All nodes reachable from self, each after its sources (iterative: deep graphs are fine).

        Nodes for which `skip` is true are left out, and so is everything reachable only through them."""
        order: list[Node] = []
        seen: set[int] = set()
        stack: list[tuple[Node, bool]] = [(self, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in seen or (skip is not None and skip(node)):
                continue
            seen.add(id(node))
            stack.append((node, True))
            for s in reversed(node.src):
                if id(s) not in seen:
                    stack.append((s, False))
        return order

    @property
    def is_const(self) -> bool:
        return self.op is Op.CONST

    @property
    def value(self) -> float:
        assert self.op is Op.CONST, self.op
        return self.arg

    def replace(self, **kw: Any) -> "Node":
        fields = {"op": self.op, "dtype": self.dtype, "src": self.src, "arg": self.arg}
        fields.update(kw)
        return Node(fields["op"], fields["dtype"], fields["src"], fields["arg"])

    # -- builders: arithmetic on nodes builds nodes (f32 unless stated) ------------------------
    def __add__(self, o: "Node | float") -> "Node":
        return Node(Op.ADD, self.dtype, (self, as_node(o, self.dtype)))

    def __radd__(self, o: float) -> "Node":
        return Node(Op.ADD, self.dtype, (as_node(o, self.dtype), self))

    def __sub__(self, o: "Node | float") -> "Node":
        return Node(Op.SUB, self.dtype, (self, as_node(o, self.dtype)))

    def __rsub__(self, o: float) -> "Node":
        return Node(Op.SUB, self.dtype, (as_node(o, self.dtype), self))

    def __mul__(self, o: "Node | float") -> "Node":
        return Node(Op.MUL, self.dtype, (self, as_node(o, self.dtype)))

    def __rmul__(self, o: float) -> "Node":
        return Node(Op.MUL, self.dtype, (as_node(o, self.dtype), self))

    def __truediv__(self, o: "Node | float") -> "Node":
        return Node(Op.DIV, self.dtype, (self, as_node(o, self.dtype)))

    def __rtruediv__(self, o: float) -> "Node":
        return Node(Op.DIV, self.dtype, (as_node(o, self.dtype), self))

    def __neg__(self) -> "Node":
        return Node(Op.NEG, self.dtype, (self,))

    # identity semantics, explicitly (hash-consing makes it structural equality)
    __eq__ = object.__eq__
    __hash__ = object.__hash__


def as_node(v: "Node | float | int", dtype: DType = F32) -> Node:
    if isinstance(v, Node):
        return v
    return const(v, dtype)


def const(v: float | int, dtype: DType = F32) -> Node:
    if dtype is F32:
        return Node(Op.CONST, F32, (), float(v))
    if dtype is I32:
        return Node(Op.CONST, I32, (), int(v))
    if dtype is BOOL:
        return Node(Op.CONST, BOOL, (), bool(v))
    raise ValueError(dtype)


def var(name: str = "x") -> Node:
    return Node(Op.INPUT, F32, (), name)


def unary(op: Op, a: Node, arg: Any = None) -> Node:
    return Node(op, a.dtype, (a,), arg)


def clip(a: Node, lo: float, hi: float) -> Node:
    return Node(Op.CLIP, F32, (a,), (float(lo), float(hi)))


def inside(a: Node, lo: float, hi: float) -> Node:
    """The f32 indicator of lo < a < hi (clip's derivative): 1.0 or 0.0; a side at +-inf is no bound."""
    return Node(Op.INSIDE, F32, (a,), (float(lo), float(hi)))


def count_nodes(root: Node) -> int:
    return len(root.toposort())

